"""DKIM signing: dkimpy builds the exact data to sign, `cryptography` (OpenSSL) makes the signature.

dkimpy's own signing does RSA in pure Python (about 5 ms); here its parser, relaxed canonicalization and header
hashing produce the same digest, and the private-key operation is one OpenSSL call. The message is parsed,
canonicalized and body-hashed once for both signatures (RSA on top, Ed25519 below it: RFC 8463).
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from relaydesk.dkim.canonical import (
    relaxed_body,
    relaxed_header,
    relaxed_headers,
    select_signed,
    split_message,
)
from relaydesk.dkim.keys import Algorithm
from relaydesk.errors import DkimSigningError, MalformedMessageError

if TYPE_CHECKING:  # cryptography is imported with the first key loaded (relaydesk.dkim.keys), not at cold start
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

SIGNATURE_HEADER = b"DKIM-Signature"
B64_LINE = 72  # the b= value is folded onto lines of this many characters; relaxed canonicalization ignores it
LINE_LIMIT = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters

# Signed once more than present, so that an added copy breaks the signature (RFC 6376 §8.15 "oversigning").
OVERSIGNED = (b"from", b"to", b"cc", b"subject", b"date", b"reply-to", b"message-id", b"in-reply-to",
              b"references", b"mime-version", b"content-type")
# Signed as present (RFC 6376 §5.4.1's list, plus the notification contract's own headers).
SIGNED = frozenset((
    *OVERSIGNED, b"sender", b"content-transfer-encoding", b"content-id", b"content-description", b"resent-date",
    b"resent-from", b"resent-sender", b"resent-to", b"resent-cc", b"resent-message-id", b"list-id", b"list-help",
    b"list-unsubscribe", b"list-subscribe", b"list-post", b"list-owner", b"list-archive", b"auto-submitted",
    b"x-auto-response-suppress", b"x-relaydesk-email-id", b"x-relaydesk-from-account-id"))


@dataclass(frozen=True)
class SigningKey:
    selector: str
    algorithm: Algorithm
    # Parsed once per container: parsing an RSA key costs as much as a signature.
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    def __repr__(self) -> str:  # the dataclass default would print the key object; keep it to the public part
        return f"SigningKey(selector={self.selector!r}, algorithm={self.algorithm.value!r})"

    def sign_digest(self, digest: bytes) -> bytes:
        rsa_key_type, rsa_arguments = _rsa_signing()
        if isinstance(self.key, rsa_key_type):
            return self.key.sign(digest, *rsa_arguments)
        return self.key.sign(digest)  # RFC 8463 §3: PureEdDSA over the SHA-256 hash of the header data


@lru_cache(maxsize=1)
def _rsa_signing() -> tuple[type, tuple[Any, ...]]:
    """cryptography's RSA key type and the arguments of an RSA-SHA256 signature over a digest (PKCS#1 v1.5),
    imported by the first signature rather than at cold start."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

    return rsa.RSAPrivateKey, (padding.PKCS1v15(), Prehashed(hashes.SHA256()))


def signed_header_names(names: Sequence[bytes]) -> list[bytes]:
    """The h= list from the message's lower-case header names: each signed header once per copy present, then
    each oversigned name once more."""
    return [name for name in names if name in SIGNED] + list(OVERSIGNED)


@lru_cache(maxsize=64)  # notifications share a handful of header layouts
def fold_header_list(include: tuple[bytes, ...], linesep: bytes) -> bytes:
    """`h=a:b:c` folded only after a colon: FWS is allowed there and nowhere inside a header name (RFC 6376 §3.5),
    which some verifiers would otherwise misread."""
    lines, line = [], b"h="
    for index, name in enumerate(include):
        piece = name + (b":" if index < len(include) - 1 else b";")
        if len(line) + len(piece) > LINE_LIMIT - 1:
            lines.append(line)
            line = b""
        line += piece
    lines.append(line)
    return (linesep + b" ").join(lines)


class DkimSigner:
    """Signs for one domain with its current keys; `sign` returns the message with the signatures on top."""

    def __init__(self, domain: str, keys: Sequence[SigningKey], *, clock: Callable[[], float] = time.time) -> None:
        if not keys:
            raise ValueError("a signer needs at least one key")
        self.domain = domain.lower()
        self.keys = tuple(keys)
        self._clock = clock

    @property
    def selectors(self) -> list[str]:
        return [k.selector for k in self.keys]

    def sign(self, message: bytes) -> bytes:
        try:
            headers, body = split_message(message)
        except MalformedMessageError as error:
            raise DkimSigningError(f"the message cannot be signed: {error}") from error
        canonical = relaxed_headers(headers)
        names = [name for name, _ in canonical]
        if b"from" not in names:
            raise DkimSigningError("the message has no From header; DKIM signs From (RFC 6376 §5.4)")
        include = signed_header_names(names)
        # dkimpy's selection (bottom-up, one instance per listed name), hashed once for every signature.
        signed = b"".join(name + b":" + value for name, value in select_signed(canonical, include))
        body_hash = base64.b64encode(hashlib.sha256(relaxed_body(body)).digest())
        timestamp = str(int(self._clock())).encode("ascii")
        linesep = b"\r\n" if b"\r\n" in message[:2048] or b"\n" not in message[:2048] else b"\n"
        fields = [self._header(key, include, body_hash, timestamp, signed, linesep) for key in self.keys]
        return b"".join(fields) + message

    def _header(self, key: SigningKey, include: list[bytes], body_hash: bytes, timestamp: bytes,
                signed: bytes, linesep: bytes) -> bytes:
        fold = linesep + b" "
        # One tag group a line, h= folded after colons; no l= (the whole body is signed), no i= (it defaults to @d).
        unsigned = b"".join((
            b"v=1; a=", key.algorithm.value.encode(), b"; c=relaxed/relaxed; d=", self.domain.encode("ascii"), b";",
            fold, b"s=", key.selector.encode("ascii"), b"; t=", timestamp, b";",
            fold, fold_header_list(tuple(include), linesep),
            fold, b"bh=", body_hash, b";", fold, b"b="))
        # The signature header itself, b= empty, ends the hashed data without its CRLF (RFC 6376 §3.7).
        name, value = relaxed_header(SIGNATURE_HEADER, b" " + unsigned)
        digest = hashlib.sha256(signed + name + b":" + value.rstrip()).digest()
        signature = base64.b64encode(key.sign_digest(digest))
        folded = (linesep + b" ").join(signature[i:i + B64_LINE] for i in range(0, len(signature), B64_LINE))
        return SIGNATURE_HEADER + b": " + unsigned + linesep + b" " + folded + linesep
