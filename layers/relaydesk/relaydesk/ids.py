"""Identifiers: short, sortable by creation time, safe in a Message-ID, a subject token and a DynamoDB key."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


def _base32(value: int, width: int) -> str:
    chars = []
    for _ in range(width):
        value, digit = divmod(value, 32)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def new_id(prefix: str = "") -> str:
    """A ULID-shaped id: 48 bits of milliseconds then 40 random bits, 18 characters."""
    millis = time.time_ns() // 1_000_000
    return prefix + _base32(millis, 10) + _base32(secrets.randbits(40), 8)
