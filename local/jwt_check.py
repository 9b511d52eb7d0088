"""Checks a compact JWS (a signed JWT) the way a token endpoint does: the shape, the algorithm it allows, and the
signature against a registered public key. Written for the local token endpoint (`local.oauth_server`), independent
of `relaydesk.oauth_jwt` so that a test of one against the other proves something.

    header, claims = decode(assertion)           # JwtRefused("malformed") if it is not a JWS of JSON objects
    verify(assertion, public_key, header["alg"])  # JwtRefused("signature") if it does not verify
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

MAX_ASSERTION = 16 * 1024  # an RS256 JWT with a 4096-bit key is under 2 KB


class JwtRefused(Exception):
    """Why a token endpoint refuses an assertion: `reason` is malformed, alg or signature."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _b64url_decode(segment: str) -> bytes:
    if not segment or any(ch in segment for ch in "=+/ \n"):
        raise JwtRefused("malformed", "not base64url")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise JwtRefused("malformed", "not base64url") from None


def decode(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The header and claims of a compact JWS, unverified."""
    if len(assertion) > MAX_ASSERTION:
        raise JwtRefused("malformed", "too long")
    parts = assertion.split(".")
    if len(parts) != 3:
        raise JwtRefused("malformed", "not three segments")
    try:
        header = json.loads(_b64url_decode(parts[0]))
        claims = json.loads(_b64url_decode(parts[1]))
    except (UnicodeDecodeError, ValueError):
        raise JwtRefused("malformed", "a segment is not JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise JwtRefused("malformed", "a segment is not a JSON object")
    return header, claims


def verify(assertion: str, public_key: rsa.RSAPublicKey, allowed: tuple[str, ...]) -> None:
    """Raise JwtRefused unless `assertion` is signed by `public_key` with one of the `allowed` algorithms (RS256:
    PKCS#1 v1.5, PS256: PSS with MGF1 SHA-256 and a 32-byte salt, RFC 7518 3.3 and 3.5)."""
    header, _ = decode(assertion)
    alg = header.get("alg")
    if alg not in allowed:
        raise JwtRefused("alg", f"{alg!r} is not one of {', '.join(allowed)}")
    signing_input, _, signature = assertion.rpartition(".")
    if alg == "PS256":
        pad: Any = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    else:
        pad = padding.PKCS1v15()
    try:
        public_key.verify(_b64url_decode(signature), signing_input.encode("ascii"), pad, hashes.SHA256())
    except InvalidSignature:
        raise JwtRefused("signature") from None
