"""DKIM key pairs (RSA 2048, and Ed25519 per RFC 8463) made with `cryptography`, in the formats DNS and dkimpy use.

`cryptography` is imported by the functions that use a key, not by this module: the relay imports it at cold start
through `Algorithm` and pays the ~12 ms import only when it loads a DKIM key (bench/bench_coldstart.py).
"""

from __future__ import annotations

import base64
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

RSA_KEY_BITS = 2048  # RFC 8301 §3.2: at least 1024, 2048 recommended
RSA_PUBLIC_EXPONENT = 65537


class Algorithm(StrEnum):
    """The DKIM `a=` tag of the signature this key makes; the key type (`k=`) is its prefix."""

    RSA_SHA256 = "rsa-sha256"
    ED25519_SHA256 = "ed25519-sha256"  # RFC 8463

    @property
    def key_type(self) -> str:
        return self.value.split("-")[0]


def generate_private_key(algorithm: Algorithm) -> str:
    """A new private key as text: PKCS#1 PEM for RSA, base64 of the 32-byte seed for Ed25519 (dkimpy's formats)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm is Algorithm.RSA_SHA256:
        key = rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=RSA_KEY_BITS)
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption()).decode("ascii")
    seed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    return base64.b64encode(seed).decode("ascii")


def load_private_key(algorithm: Algorithm, text: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """The parsed key; parsing an RSA key costs about a millisecond, so callers keep the result."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

    if algorithm is Algorithm.RSA_SHA256:
        key = serialization.load_pem_private_key(text.encode("ascii"), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the stored DKIM key is not an RSA key")
        return key
    return ed25519.Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))


def public_key_value(algorithm: Algorithm, private_text: str) -> str:
    """The `p=` value: base64 of the SubjectPublicKeyInfo DER (RSA), or of the raw 32-byte key (RFC 8463 §4.2)."""
    from cryptography.hazmat.primitives import serialization

    public = load_private_key(algorithm, private_text).public_key()
    if algorithm is Algorithm.RSA_SHA256:
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        der = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(der).decode("ascii")
