"""The sign-in material an admin hands over, checked and turned into connector credential fields: a Google service
account's JSON key file, and a Microsoft Entra ID app's certificate with its private key (PEM). The CLI and the admin
console both call these, then `lifecycle.connect_address` or `rotation.stage_rotation` with the credentials.

Every error names what is wrong, never the material (it holds a private key).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from relaydesk.credentials import (
    EXCHANGE_ONLINE_SCOPE,
    GMAIL_SCOPE,
    GOOGLE_TOKEN_URL,
    AuthKind,
    OAuthGrant,
)
from relaydesk.errors import ConfigurationError

MAX_KEY_FILE_BYTES = 64 * 1024  # a service account key file is ~2.3 KB; a PEM bundle with a chain a few KB
SERVICE_ACCOUNT_EMAIL = re.compile(r"^[a-z0-9-]{6,30}@[a-z0-9.-]+\.gserviceaccount\.com$")
NUMERIC_CLIENT_ID = re.compile(r"^\d{1,32}$")  # Google's "Unique ID": 21 digits today
KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")  # 40 hex digits today; it goes into the JWT header as `kid`
PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----\r?\n.*?-----END \1-----\r?\n?", re.DOTALL)
PRIVATE_KEY_BLOCKS = ("PRIVATE KEY", "RSA PRIVATE KEY")
MIN_RSA_BITS = 2048

# Fields of another grant that a switch must not carry over (rotation merges the new fields into the current ones).
_CLEARED_FOR_SERVICE_ACCOUNT = {"oauth_client_secret": None, "oauth_tenant_id": None, "oauth_certificate_pem": None,
                                "oauth_certificate_thumbprint": None, "oauth_certificate_expires_at": None,
                                "password": ""}
_CLEARED_FOR_CERTIFICATE = {"oauth_client_secret": None, "oauth_service_account": None, "oauth_key_id": None,
                            "oauth_scope": EXCHANGE_ONLINE_SCOPE, "password": ""}
# What `--client-secret-stdin` clears when an address goes back to (or stays on) a client secret.
CLEARED_FOR_CLIENT_SECRET = {"oauth_grant": OAuthGrant.CLIENT_SECRET, "oauth_private_key": None,
                             "oauth_certificate_pem": None, "oauth_certificate_thumbprint": None,
                             "oauth_certificate_expires_at": None, "oauth_service_account": None,
                             "oauth_key_id": None, "oauth_scope": EXCHANGE_ONLINE_SCOPE, "password": ""}
# What a switch back to a password clears of any OAuth grant.
PASSWORD_CLEARS = {"oauth_grant": OAuthGrant.CLIENT_SECRET, "oauth_private_key": None, "oauth_certificate_pem": None,
                   "oauth_certificate_thumbprint": None, "oauth_certificate_expires_at": None,
                   "oauth_service_account": None, "oauth_key_id": None, "oauth_scope": EXCHANGE_ONLINE_SCOPE}

_KEY_FILE_HELP = ("Create a JSON key for the service account (Google Cloud console > IAM & Admin > Service accounts > "
                  "the account > Keys > Add key > Create new key > JSON) and give that file as it was downloaded.")
_PEM_HELP = ("Give one PEM file with the app's certificate and its unencrypted private key, e.g. `cat app.crt app.key "
             "> app.pem` (a .pfx converts with `openssl pkcs12 -in app.pfx -nodes -out app.pem`).")


def service_account_fields(key_file: str | bytes) -> dict[str, Any]:
    """The SmtpCredentials fields of a Google service account's JSON key file (its `client_email`, numeric
    `client_id`, `private_key_id`, `private_key` and `token_uri`). Raises ConfigurationError naming the problem."""
    text = _text(key_file, "service account key file")
    try:
        data = json.loads(text)
    except ValueError:
        raise ConfigurationError("the service account key file is not JSON", action=_KEY_FILE_HELP) from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise ConfigurationError('the file is not a service account key (its "type" is not "service_account")',
                                 action=_KEY_FILE_HELP)
    missing = [name for name in ("client_email", "private_key", "private_key_id", "client_id")
               if not isinstance(data.get(name), str) or not data[name].strip()]
    if missing:
        raise ConfigurationError(f"the service account key file has no {', '.join(missing)}", action=_KEY_FILE_HELP)
    email = data["client_email"].strip().lower()
    if not SERVICE_ACCOUNT_EMAIL.match(email):
        raise ConfigurationError(f"{email[:120]!r} is not a service account's address (NAME@PROJECT.iam."
                                 "gserviceaccount.com)", action=_KEY_FILE_HELP)
    if not NUMERIC_CLIENT_ID.match(data["client_id"].strip()):
        raise ConfigurationError("the service account key file's client_id is not the numeric client ID",
                                 action=_KEY_FILE_HELP)
    if not KEY_ID.match(data["private_key_id"].strip()):
        raise ConfigurationError("the service account key file's private_key_id is not a key id", action=_KEY_FILE_HELP)
    key = _rsa_private_key(data["private_key"], "the service account's private_key")
    token_uri = data.get("token_uri") if isinstance(data.get("token_uri"), str) else ""
    return {"auth_kind": AuthKind.OAUTH2, "oauth_grant": OAuthGrant.SERVICE_ACCOUNT, "oauth_service_account": email,
            "oauth_client_id": data["client_id"].strip(), "oauth_key_id": data["private_key_id"].strip(),
            "oauth_private_key": key, "oauth_token_url": token_uri.strip() or GOOGLE_TOKEN_URL,
            "oauth_scope": GMAIL_SCOPE, **_CLEARED_FOR_SERVICE_ACCOUNT}


def certificate_fields(pem: str | bytes, *, now: dt.datetime | None = None) -> dict[str, Any]:
    """The SmtpCredentials fields of an Entra ID app's certificate: the PEM text holds the certificate and its
    private key (in any order; a chain may follow). Checks that the key is RSA of 2048 bits or more, that it belongs
    to the certificate and that the certificate is valid now. Raises ConfigurationError naming the problem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    text = _text(pem, "certificate file")
    blocks = [(match.group(1), match.group(0)) for match in PEM_BLOCK.finditer(text)]
    keys = [block for kind, block in blocks if kind in PRIVATE_KEY_BLOCKS]
    certificates = [block for kind, block in blocks if kind == "CERTIFICATE"]
    if "ENCRYPTED PRIVATE KEY" in {kind for kind, _ in blocks}:
        raise ConfigurationError("the private key is encrypted", action="Remove its passphrase (`openssl pkey -in "
                                 "app.key -out plain.key`); the key is stored encrypted in Secrets Manager.")
    if len(keys) != 1 or not certificates:
        raise ConfigurationError(f"the PEM holds {len(keys)} private keys and {len(certificates)} certificates; "
                                 "one private key and the app's certificate are needed", action=_PEM_HELP)
    key_pem = _rsa_private_key(keys[0], "the certificate's private key")
    private_key = _load_key(key_pem)
    public = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    matching = []
    for block in certificates:
        try:
            certificate = x509.load_pem_x509_certificate(block.encode("ascii"))
        except ValueError:
            raise ConfigurationError("a certificate in the PEM does not parse", action=_PEM_HELP) from None
        if certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo) == public:
            matching.append((block, certificate))
    if not matching:
        raise ConfigurationError("the private key does not belong to the certificate in the PEM",
                                 action="Give the certificate uploaded to the app together with its own key.")
    block, certificate = matching[0]
    moment = now or dt.datetime.now(dt.UTC)
    if not certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc:
        raise ConfigurationError(
            f"the certificate is not valid now (valid {certificate.not_valid_before_utc:%Y-%m-%d} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%d})",
            action="Create a new certificate, upload it to the app's Certificates & secrets, and give it here.")
    return {"auth_kind": AuthKind.OAUTH2, "oauth_grant": OAuthGrant.CLIENT_CERTIFICATE, "oauth_private_key": key_pem,
            "oauth_certificate_pem": block.strip() + "\n",
            "oauth_certificate_thumbprint": certificate.fingerprint(hashes.SHA1()).hex().upper(),  # noqa: S303
            "oauth_certificate_expires_at": certificate.not_valid_after_utc, **_CLEARED_FOR_CERTIFICATE}


def _text(material: str | bytes, what: str) -> str:
    if isinstance(material, bytes):
        if len(material) > MAX_KEY_FILE_BYTES:
            raise ConfigurationError(f"the {what} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB")
        try:
            material = material.decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigurationError(f"the {what} is not text (UTF-8)") from None
    if len(material) > MAX_KEY_FILE_BYTES:
        raise ConfigurationError(f"the {what} is larger than {MAX_KEY_FILE_BYTES // 1024} KiB")
    if not material.strip():
        raise ConfigurationError(f"the {what} is empty")
    return material


def _rsa_private_key(pem: str, what: str) -> str:
    key = _load_key(pem, what)
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not isinstance(key, rsa.RSAPrivateKey):
        raise ConfigurationError(f"{what} is not an RSA key", action="RS256 and PS256 signatures need an RSA key.")
    if key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(f"{what} has {key.key_size} bits; at least {MIN_RSA_BITS} are needed")
    return pem.strip() + "\n"


def _load_key(pem: str, what: str = "the private key") -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(pem.encode("ascii"), password=None)
    except (ValueError, TypeError, UnicodeError):
        # cryptography's message can quote the input: say only what is wrong.
        raise ConfigurationError(f"{what} is not an unencrypted PEM private key", action=_PEM_HELP) from None
