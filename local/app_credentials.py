"""Sign-in material as the providers hand it to an admin, made locally: a Google service account's JSON key file
(what Google Cloud console > Keys > Create new key > JSON downloads) and a Microsoft Entra ID app's self-signed
certificate with its private key (what `openssl req -x509` or New-SelfSignedCertificate makes).

    key = ServiceAccountKey.create("relay", project="acme-mail", token_uri=tokens.google_token_url)
    key.json              # the key file's text: type, project_id, private_key_id, private_key, client_email, ...
    key.public_key_pem    # what Google keeps (the local token endpoint registers it)
    key.with_token_uri(tokens.google_token_url)   # the same key, its file pointing at a local endpoint
    cert = AppCertificate.create("Relaydesk SMTP")
    cert.bundle_pem       # certificate + private key, as `relaydesk addresses connect --certificate-file` takes it
    cert.certificate_pem  # what the admin uploads to the app (public)
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"


def _rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def _private_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


@dataclass(frozen=True)
class ServiceAccountKey:
    client_email: str
    client_id: str  # the numeric "Unique ID" the Admin console's domain-wide delegation asks for
    private_key_id: str
    private_key_pem: str
    public_key_pem: str
    json: str

    @classmethod
    def create(cls, name: str = "relaydesk-smtp", *, project: str = "acme-mail", client_id: str | None = None,
               token_uri: str = GOOGLE_TOKEN_URI, bits: int = 2048) -> ServiceAccountKey:
        """A new key (a new private_key_id) for the service account NAME@PROJECT.iam.gserviceaccount.com."""
        key = _rsa_key(bits)
        email = f"{name}@{project}.iam.gserviceaccount.com"
        number = client_id or str(100000000000000000000 + secrets.randbelow(10**20))
        key_id = secrets.token_hex(20)
        private_pem = _private_pem(key)
        public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
        document = {
            "type": "service_account", "project_id": project, "private_key_id": key_id, "private_key": private_pem,
            "client_email": email, "client_id": number, "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": token_uri, "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email.replace('@', '%40')}",
            "universe_domain": "googleapis.com",
        }
        return cls(email, number, key_id, private_pem, public_pem, json.dumps(document, indent=2) + "\n")

    def with_token_uri(self, token_uri: str) -> ServiceAccountKey:
        """The same key with another token_uri in its file (a local token endpoint's)."""
        document = json.loads(self.json)
        document["token_uri"] = token_uri
        return replace(self, json=json.dumps(document, indent=2) + "\n")

    def new_key(self, *, token_uri: str | None = None) -> ServiceAccountKey:
        """Another key of the same service account (Keys > Add key), e.g. for a rotation."""
        name, _, domain = self.client_email.partition("@")
        document = json.loads(self.json)
        return ServiceAccountKey.create(name, project=domain.split(".")[0], client_id=self.client_id,
                                        token_uri=token_uri or document["token_uri"])


@dataclass(frozen=True)
class AppCertificate:
    certificate_pem: str
    private_key_pem: str

    @property
    def bundle_pem(self) -> str:
        return self.certificate_pem + self.private_key_pem

    @classmethod
    def create(cls, common_name: str = "Relaydesk SMTP", *, days: int = 365, bits: int = 2048,
               not_before: dt.datetime | None = None) -> AppCertificate:
        key = _rsa_key(bits)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                       .serial_number(x509.random_serial_number()).not_valid_before(start)
                       .not_valid_after(start + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
        return cls(certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"), _private_pem(key))
