"""Signed, expiring attachment link tokens (HMAC-SHA256): they name an S3 key under attachments/ and its account.

A token is `<payload>.<signature>`, both base64url without padding; the payload is compact JSON
`{"v":1,"k":key,"a":account_id,"e":expires_at}` (epoch seconds). The signature covers the payload's text as sent, so
changing any part of the token makes it invalid; only a valid signature lets expiry be judged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import posixpath
from datetime import datetime

from relaydesk.errors import ConfigurationError, LinkExpiredError, LinkInvalidError

PREFIX = "attachments/"  # the inbound function stores every attachment under it (inbound/attachments.py)
VERSION = 1
MIN_SIGNING_KEY_BYTES = 32  # RFC 2104 section 3: a key shorter than the hash output (32 bytes) weakens HMAC
MAX_TOKEN_LENGTH = 2048  # S3 keys are at most 1024 bytes; anything longer is not ours and is refused unparsed


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise LinkInvalidError("the link is malformed") from None


def _signature(payload: str, signing_key: bytes) -> bytes:
    return hmac.new(signing_key, payload.encode("ascii"), hashlib.sha256).digest()


def _check_signing_key(signing_key: bytes) -> None:
    if len(signing_key) < MIN_SIGNING_KEY_BYTES:
        raise ConfigurationError(f"the link signing key is shorter than {MIN_SIGNING_KEY_BYTES} bytes",
                                 action="Rotate the link signing secret (template.yaml LinkSigningSecret).")


def is_attachment_key(key: str) -> bool:
    """Only objects under attachments/, without a path trick that would leave it (raw mail is under inbound/)."""
    if not key.startswith(PREFIX) or len(key) <= len(PREFIX) or "\\" in key:
        return False
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in key):
        return False
    return posixpath.normpath(key) == key and ".." not in key.split("/")


def account_prefix(account_id: str) -> str:
    """Every attachment of an account lives under attachments/<account id>/."""
    return f"{PREFIX}{account_id}/"


def owned_by(account_id: str, key: str) -> bool:
    return is_attachment_key(key) and key.startswith(account_prefix(account_id)) and "/" not in account_id


def sign_link(key: str, account_id: str, expires_at: datetime | int, signing_key: bytes) -> str:
    """A URL-safe token naming `key` (under attachments/) of `account_id`, valid until `expires_at`."""
    _check_signing_key(signing_key)
    if not is_attachment_key(key):
        raise LinkInvalidError("only attachments can be linked")
    expiry = int(expires_at.timestamp()) if isinstance(expires_at, datetime) else int(expires_at)
    payload = _b64encode(json.dumps({"v": VERSION, "k": key, "a": account_id, "e": expiry},
                                    separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    return f"{payload}.{_b64encode(_signature(payload, signing_key))}"


def verify_link(token: str, signing_key: bytes, now: datetime | int) -> tuple[str, str]:
    """(key, account_id) of a token this key signed; LinkInvalidError if not, LinkExpiredError if it is too late."""
    _check_signing_key(signing_key)
    if not token or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise LinkInvalidError("the link is malformed")
    payload, signature = token.split(".")
    try:
        expected = _signature(payload, signing_key)
    except UnicodeEncodeError:
        raise LinkInvalidError("the link is malformed") from None
    if not hmac.compare_digest(expected, _b64decode(signature)):
        raise LinkInvalidError("the link's signature does not match")
    try:
        claims = json.loads(_b64decode(payload).decode("utf-8"))
        key, account_id, expiry = claims["k"], claims["a"], claims["e"]
        valid_shape = claims.get("v") == VERSION and isinstance(key, str) and isinstance(account_id, str) \
            and isinstance(expiry, int)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LinkInvalidError("the link is malformed") from None
    if not valid_shape or not is_attachment_key(key):
        raise LinkInvalidError("the link does not name an attachment")
    moment = int(now.timestamp()) if isinstance(now, datetime) else int(now)
    if moment >= expiry:
        raise LinkExpiredError("the link has expired")
    return key, account_id
