"""A certificate authority generated at start, issuing server certificates for the local SMTP servers.

Clients trust it the way a customer trusts a private smarthost: by passing `ca.pem` to
`relaydesk.outbound.tls.client_tls_context(ca_bundle_pem)`. Verification is never switched off.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Short lived on purpose: the CA and its certificates exist for one test session or one `make up`.
VALIDITY = dt.timedelta(days=2)
CLOCK_SKEW = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class ServerCertificate:
    """A server certificate and its key on disk, plus the names it was issued for."""

    cert_path: Path
    key_path: Path
    names: tuple[str, ...]

    def server_context(self) -> ssl.SSLContext:
        """A server-side TLS context (TLS 1.2+) presenting this certificate."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


class LocalCA:
    """An EC P-256 CA whose key lives only in memory; certificates and `ca.pem` are written to `directory`.

    >>> ca = LocalCA(tmp_dir)
    >>> cert = ca.issue(["127.0.0.1", "localhost"])   # SANs: IPs and DNS names
    >>> ca.pem                                        # the CA certificate, PEM text, for the client's bundle
    """

    def __init__(self, directory: str | Path, *, common_name: str = "Relaydesk Local CA") -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self._name = subject
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.pem: str = self._cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self.pem_path = self.directory / "ca.pem"
        self.pem_path.write_text(self.pem)
        self._issued = 0

    def issue(self, names: list[str] | tuple[str, ...], *, label: str | None = None) -> ServerCertificate:
        """Issue a server certificate whose SANs are `names` (IP literals become IP SANs); write cert and key."""
        if not names:
            raise ValueError("a server certificate needs at least one name")
        self._issued += 1
        label = label or f"server{self._issued}"
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW)
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        cert_path = self.directory / f"{label}.crt"
        key_path = self.directory / f"{label}.key"
        # Chain = leaf + CA, as a real server sends it.
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.pem.encode("ascii"))
        key_path.touch(mode=0o600)
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return ServerCertificate(cert_path=cert_path, key_path=key_path, names=tuple(names))
