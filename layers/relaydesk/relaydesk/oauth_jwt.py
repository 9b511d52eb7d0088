"""Signed JWTs that stand in for a client secret at a token endpoint: Google's JWT bearer grant for a service account
(RFC 7523 2.1, RS256) and Entra ID's client assertion for an app's certificate (RFC 7523 2.2, PS256, `x5t#S256`).

Hand-written on `cryptography` (already in the layer for DKIM) rather than google-auth: the flow is one signed JSON
document, and google-auth's import costs 22 ms more than `cryptography`'s (docs/DECISIONS.md). `cryptography` is
imported by the first signature only: most relays never take this path (cold start). A key that cannot be used is
an OAuthTokenError that names the problem, never the key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from functools import lru_cache
from typing import Any

from relaydesk.credentials import OAuthGrant, SmtpCredentials
from relaydesk.errors import OAuthTokenError

# Google: "the maximum is one hour after the issued time" (exp - iat), and Google's client libraries ask for that.
SERVICE_ACCOUNT_ASSERTION_SECONDS = 3600
# Entra ID: the assertion should expire "5-10 minutes after nbf"; it is used once, right away.
CLIENT_ASSERTION_SECONDS = 600
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 2.1
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 2.2
MIN_RSA_BITS = 2048  # Google issues 2048-bit keys; Entra ID refuses shorter certificate keys


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@lru_cache(maxsize=64)
def certificate_thumbprint(certificate_pem: str) -> str:
    """The `x5t#S256` of a PEM certificate: base64url of the SHA-256 of its DER encoding (RFC 7515 4.1.8)."""
    return b64url(hashlib.sha256(_certificate_der(certificate_pem)).digest())


def service_account_assertion(creds: SmtpCredentials, now: float) -> str:
    """The JWT for Google's JWT bearer grant: issued by the service account, for the mailbox (`sub`), with the scope,
    addressed to the token endpoint, valid for an hour from `now` (wall-clock seconds)."""
    issued = int(now)
    header = {"alg": "RS256", "typ": "JWT"}
    if creds.oauth_key_id:
        header["kid"] = creds.oauth_key_id
    claims = {"iss": creds.oauth_service_account, "scope": creds.oauth_scope, "aud": creds.token_url,
              "sub": creds.username, "iat": issued, "exp": issued + SERVICE_ACCOUNT_ASSERTION_SECONDS}
    return _sign(header, claims, creds.oauth_signing_key, "RS256")


def client_assertion(creds: SmtpCredentials, now: float) -> str:
    """The JWT that authenticates an Entra ID app with its certificate: issued by and about the app (`iss` = `sub` =
    client id), for the token endpoint, unique (`jti`), valid from `now` for ten minutes; PS256, as Entra ID asks."""
    issued = int(now)
    header = {"alg": "PS256", "typ": "JWT", "x5t#S256": certificate_thumbprint(creds.oauth_certificate_pem or "")}
    claims = {"aud": creds.token_url, "iss": creds.oauth_client_id, "sub": creds.oauth_client_id,
              "jti": str(uuid.uuid4()), "nbf": issued, "iat": issued, "exp": issued + CLIENT_ASSERTION_SECONDS}
    return _sign(header, claims, creds.oauth_signing_key, "PS256")


def assertion_form(creds: SmtpCredentials, now: float) -> dict[str, str]:
    """The token request's form fields for a grant that signs (client_certificate, service_account)."""
    if creds.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        return {"grant_type": JWT_BEARER_GRANT, "assertion": service_account_assertion(creds, now)}
    return {"grant_type": "client_credentials", "client_id": creds.oauth_client_id or "",
            "client_assertion_type": CLIENT_ASSERTION_TYPE, "client_assertion": client_assertion(creds, now),
            "scope": creds.oauth_scope}


def _sign(header: dict[str, Any], claims: dict[str, Any], key_pem: str, alg: str) -> str:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{_segment(header)}.{_segment(claims)}".encode("ascii")
    key = _load_private_key(key_pem)
    if alg == "PS256":  # RFC 7518 3.5: MGF1 with SHA-256, salt as long as the hash
        pad: Any = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
    else:
        pad = padding.PKCS1v15()
    signature = key.sign(signing_input, pad, hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


def _segment(data: dict[str, Any]) -> str:
    return b64url(json.dumps(data, separators=(",", ":")).encode("utf-8"))


@lru_cache(maxsize=64)
def _load_private_key(key_pem: str) -> Any:
    """An RSA private key from PEM (PKCS#8 or PKCS#1), parsed once per warm container."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(key_pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError):
        # cryptography's message may quote part of the input: only say what is wrong.
        raise unusable_key("the private key is not an unencrypted PEM key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise unusable_key("the private key is not an RSA key (RS256 and PS256 need RSA)")
    if key.key_size < MIN_RSA_BITS:
        raise unusable_key(f"the private key has {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    return key


def unusable_key(problem: str) -> OAuthTokenError:
    return OAuthTokenError(f"{problem}; no token was requested", oauth_error="invalid_private_key",
                           action="Store the key again (the service account's JSON key file, or the certificate's "
                                  "PEM with its private key) with `relaydesk addresses rotate`.")


def _certificate_der(certificate_pem: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return x509.load_pem_x509_certificate(certificate_pem.encode("ascii")).public_bytes(Encoding.DER)
    except (ValueError, TypeError, UnicodeError):
        raise unusable_key("the app's certificate is not a PEM X.509 certificate") from None
