"""Fixtures: local SMTP servers with STARTTLS, AUTH and a local CA.

- ``local_ca`` (session): a `local.ca.LocalCA` in a temporary directory; ``local_ca.pem`` is the CA PEM text.
- ``smarthost`` (function): a started `local.smarthost.SmtpServer` in STARTTLS mode (STARTTLS required before
  AUTH and MAIL, AUTH required), user ``relay@acme.test`` with a random password, certificate for 127.0.0.1 and
  localhost. Use ``host``, ``port``, ``ca_pem``, ``username``, ``password``, ``received``, ``stats``,
  ``faults``, ``set_password(user, pw)``, ``wait_for(n)``. Stopped at teardown.
- ``make_smarthost(**options)`` (function): a factory for special modes, e.g.
  ``make_smarthost(mode="implicit")``, ``make_smarthost(mode="none")``,
  ``make_smarthost(cert_names=["wrong.example.net"])``, ``make_smarthost(cram_md5=True)``; same defaults as
  ``smarthost``; all stopped at teardown. Every server logs each AUTH in ``auth_log`` (``failed_logins(password)``
  counts the refusals of one password) and can be broken while it runs: ``offer_starttls(False)``,
  ``use_certificate(names)``, ``drop_connections()``.
  With ``make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {"support@acme.test"}})``
  the server also offers AUTH XOAUTH2 (after TLS) and accepts that endpoint's tokens for those mailboxes
  (``535 5.7.3 Authentication unsuccessful`` otherwise, as Exchange Online answers).
- ``token_server`` (function): a started `local.oauth_server.TokenServer`, Entra ID's client-credentials token
  endpoint over HTTPS on 127.0.0.1 (certificate from ``local_ca``), tenant ``acme-tenant``, one client
  (``client_id``, ``client_secret``, random). Use ``token_url``, ``ca_pem``, ``tokens_issued``, ``requests``,
  ``set_secret(client_id, secret)``, ``expire_all()``, ``validate(token)``. Stopped at teardown. It also answers as
  Entra ID for certificates (``add_certificate(client_id, pem)``) and as Google at ``google_token_url``
  (``token_server.google``: service accounts, delegation, users; `local.google_oauth`).
- ``service_account_keys`` (session): two `local.app_credentials.ServiceAccountKey` of one Google service account.
- ``app_certificates`` (session): two `local.app_credentials.AppCertificate` (certificate + key) for an Entra ID app.
"""

from __future__ import annotations

import secrets

import pytest
from relaydesk.outbound.pipelined import forget_held_back

from local.app_credentials import AppCertificate, ServiceAccountKey
from local.ca import LocalCA
from local.oauth_server import TokenServer
from local.smarthost import SmtpServer

SMARTHOST_USER = "relay@acme.test"


class Smarthost(SmtpServer):
    """A `SmtpServer` that knows the one user the fixture created."""

    username: str
    password: str


def _build(ca: LocalCA, **options) -> Smarthost:
    password = options.pop("password", None) or secrets.token_urlsafe(16)
    username = options.pop("username", SMARTHOST_USER)
    users = options.pop("users", None) or {username: password}
    server = Smarthost(ca, users=users, **options)
    server.username = username
    server.password = password
    server.start()
    # A new server: what the client learnt about one that had this port before (it held BDAT replies back) goes.
    forget_held_back(f"connector:{server.host}:{server.port}")
    return server


@pytest.fixture(scope="session")
def local_ca(tmp_path_factory) -> LocalCA:
    """A CA generated for this test session (per xdist worker), its files in a private temporary directory."""
    return LocalCA(tmp_path_factory.mktemp("local-ca"))


@pytest.fixture
def smarthost(local_ca):
    """A started STARTTLS + AUTH submission server on 127.0.0.1 (ephemeral port); stopped at teardown."""
    server = _build(local_ca)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_smarthost(local_ca):
    """Factory: ``make_smarthost(mode=..., cert_names=..., users=..., auth_required=..., on_message=...)``."""
    started: list[SmtpServer] = []

    def make(**options) -> Smarthost:
        server = _build(local_ca, **options)
        started.append(server)
        return server

    try:
        yield make
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def token_server(local_ca):
    """A started OAuth 2.0 token endpoint (client credentials, Entra ID's answers) on 127.0.0.1; stopped at teardown."""
    server = TokenServer(local_ca).start()
    try:
        yield server
    finally:
        server.stop()


# --- sign-in material (RSA keys take tens of milliseconds to make: one set per test worker) --------------------------

@pytest.fixture(scope="session")
def service_account_keys() -> tuple[ServiceAccountKey, ServiceAccountKey]:
    """Two keys of one Google service account (relaydesk-smtp@acme-mail.iam.gserviceaccount.com), key files whose
    token_uri is Google's; `key.with_token_uri(token_server.google_token_url)` points one at the local endpoint."""
    first = ServiceAccountKey.create("relaydesk-smtp", project="acme-mail")
    return first, first.new_key()


@pytest.fixture(scope="session")
def app_certificates() -> tuple[AppCertificate, AppCertificate]:
    """Two self-signed certificates with their keys, for an Entra ID app (the second one for a rotation)."""
    return AppCertificate.create("Relaydesk SMTP"), AppCertificate.create("Relaydesk SMTP 2")
