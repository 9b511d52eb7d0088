"""Page cursors of the listing routes: a position (a few named strings) as base64url JSON, opaque to the caller.

A cursor never holds an account: the caller's own is used, so a forged or another account's cursor can only move
the position within the caller's own data. Each field must have the shape the service writes, or it is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from relaydesk.errors import InvalidCursorError

MAX_CURSOR = 200  # characters; every position the service writes fits


def encode(position: dict[str, str]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str, shape: dict[str, re.Pattern[str]]) -> dict[str, str]:
    """The position in `cursor`: exactly the fields of `shape`, each matching its pattern; else InvalidCursorError."""
    bad = InvalidCursorError("the page cursor is not valid", action="Start again from the first page.")
    if len(cursor) > MAX_CURSOR:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, dict) or set(data) != set(shape):
        raise bad
    if not all(isinstance(data[name], str) and pattern.fullmatch(data[name]) for name, pattern in shape.items()):
        raise bad
    return data
