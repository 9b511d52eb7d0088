"""Which support address a change record of the directory table is about (None: an item of another kind)."""

from __future__ import annotations

from typing import Any

ADDRESS_KEY_PREFIX = "ADDRESS#"  # an account's record of an address: pk ADDRESS#<email>, sk ACCOUNT#<account id>
ACCOUNT_KEY_PREFIX = "ACCOUNT#"  # (the address's owner marker, sk OWNER, is not an address)


def address_of(keys: dict[str, Any] | None) -> str | None:
    """The email of an address item's keys, as a stream record carries them (typed `{"S": ...}` or plain)."""
    keys = keys or {}
    pk, sk = (value.get("S") if isinstance(value, dict) else value for value in (keys.get("pk"), keys.get("sk")))
    if not isinstance(pk, str) or not isinstance(sk, str) or not sk.startswith(ACCOUNT_KEY_PREFIX) or \
            not pk.startswith(ADDRESS_KEY_PREFIX):
        return None
    return pk.removeprefix(ADDRESS_KEY_PREFIX) or None
