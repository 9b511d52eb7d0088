"""Ids of what one agent request writes, derived from its request id: a retried request (the same id, after a
crash or a timeout) writes the same comment and the same notifications again, never a second set."""

from __future__ import annotations

import hashlib
import re

from relaydesk.errors import RuleViolation
from relaydesk.ids import new_id

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # as relaydesk.ids: ids stay the shape markers.py recognises
REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


def new_request_id() -> str:
    return new_id("R")


def checked(request_id: str | None) -> str:
    if request_id is None:
        return new_request_id()
    if not REQUEST_ID.match(request_id):
        raise RuleViolation("a request id is 8 to 64 letters, digits, '-' or '_'", rule="request_id",
                            action="Send a new random id per request, and the same id only to retry it.")
    return request_id


def derived_id(prefix: str, account_id: str, ticket_id: str, request_id: str, role: str) -> str:
    """`prefix` and 18 characters of a hash of the request and the role of the id in it."""
    digest = int.from_bytes(hashlib.sha256(f"{account_id}|{ticket_id}|{request_id}|{role}".encode()).digest()[:12])
    return prefix + "".join(_ALPHABET[(digest >> (5 * i)) & 31] for i in range(18))
