"""The content of one connector secret in Secrets Manager: where to submit and how to authenticate."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from relaydesk.errors import ConfigurationError

SUBMISSION_PORT = 587  # RFC 6409 message submission, STARTTLS
SUBMISSIONS_PORT = 465  # RFC 8314 3.3, implicit TLS
# Microsoft Entra ID's v2.0 token endpoint and the scope Exchange Online's SMTP AUTH accepts for an app-only token
# (learn.microsoft.com: "Authenticate an IMAP, POP or SMTP connection using OAuth", client credentials grant).
ENTRA_TOKEN_URL = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"
EXCHANGE_ONLINE_SCOPE = "https://outlook.office365.com/.default"
# Google's OAuth 2.0 token endpoint for a service account's signed JWT (RFC 7523), and the scope Gmail's SMTP
# XOAUTH2 takes (developers.google.com: "Using OAuth 2.0 for Server to Server Applications", "OAuth 2.0 Scopes").
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
GMAIL_SCOPE = "https://mail.google.com/"
PEM_PRIVATE_KEY = "PRIVATE KEY-----"  # the end of "-----BEGIN [RSA ]PRIVATE KEY-----"


class TlsMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class AuthKind(StrEnum):
    PASSWORD = "password"  # AUTH PLAIN/LOGIN
    OAUTH2 = "oauth2"  # AUTH XOAUTH2 with an OAuth 2.0 access token (how the token is got: `OAuthGrant`)


class OAuthGrant(StrEnum):
    """How an oauth2 address gets its access token."""

    CLIENT_SECRET = "client_secret"  # Entra ID app, client-credentials grant with the client secret
    CLIENT_CERTIFICATE = "client_certificate"  # Entra ID app, client-credentials grant with a signed client assertion
    SERVICE_ACCOUNT = "service_account"  # Google service account, JWT bearer grant (domain-wide delegation)


class SmtpCredentials(BaseModel):
    """Never logged: `password`, `oauth_client_secret` and `oauth_private_key` are SecretStr and `__repr__` hides
    them; a validation error never echoes the input (it may hold them).

    `auth_kind` password: `username` and `password` for AUTH PLAIN/LOGIN. `auth_kind` oauth2: `username` is the
    mailbox (XOAUTH2 `user=`) and the access token comes from `token_url` by `oauth_grant`:
    - client_secret: Entra ID's client-credentials grant of `oauth_client_id` with `oauth_client_secret`;
    - client_certificate: the same grant with a client assertion signed by `oauth_private_key`, the key of the
      app's certificate `oauth_certificate_pem` (its `x5t#S256` thumbprint names it to Entra ID);
    - service_account: Google's JWT bearer grant of the service account `oauth_service_account` (its client_email),
      signed by `oauth_private_key` (key id `oauth_key_id`), with `sub` the mailbox; `oauth_client_id` is the
      service account's numeric client ID, the one the Workspace admin gave domain-wide delegation.
    `token_url` is Entra ID's for `oauth_tenant_id`, or Google's, unless `oauth_token_url` is set.
    """

    model_config = ConfigDict(hide_input_in_errors=True)

    host: str
    port: int = Field(default=SUBMISSION_PORT, ge=1, le=65535)
    tls_mode: TlsMode = TlsMode.STARTTLS
    auth_kind: AuthKind = AuthKind.PASSWORD
    username: str
    password: SecretStr = SecretStr("")
    oauth_client_id: str | None = None
    oauth_tenant_id: str | None = None
    oauth_refresh_token: SecretStr | None = None  # unused: the client-credentials grant has no refresh token
    oauth_client_secret: SecretStr | None = None
    oauth_token_url: str | None = None
    oauth_scope: str = EXCHANGE_ONLINE_SCOPE  # a service account's default is GMAIL_SCOPE (_default_scope)
    oauth_grant: OAuthGrant = OAuthGrant.CLIENT_SECRET
    oauth_private_key: SecretStr | None = None  # PEM: the certificate's key, or the service account's private_key
    oauth_certificate_pem: str | None = None  # client_certificate: the app's X.509 certificate (public)
    # Its SHA-1 thumbprint in hex, as Entra ID's Certificates & secrets page lists it, and its notAfter: read once from
    # the certificate when it is given (addresses/sign_in.py), so `show` and the hold need no X.509 parsing.
    oauth_certificate_thumbprint: str | None = None
    oauth_certificate_expires_at: datetime | None = None
    oauth_service_account: str | None = None  # service_account: its client_email (the JWT's `iss`)
    oauth_key_id: str | None = None  # service_account: its private_key_id (the JWT header's `kid`)
    ca_bundle_pem: str | None = Field(default=None, description="PEM CA bundle for a private smarthost")

    @field_validator("host")
    @classmethod
    def _host_is_lowercase(cls, value: str) -> str:
        return value.strip().lower().rstrip(".")

    @field_validator("oauth_client_id", "oauth_tenant_id", "oauth_token_url", "oauth_service_account",
                     "oauth_key_id")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _can_authenticate(self) -> SmtpCredentials:
        # Names only, never values: this message reaches the CLI and the relay's logs.
        if self.auth_kind is AuthKind.OAUTH2:
            missing = [name for name, present in self._oauth_requirements() if not present]
            if missing:
                grant = "" if self.oauth_grant is OAuthGrant.CLIENT_SECRET else f" ({self.oauth_grant.value})"
                raise ValueError(f"auth_kind oauth2{grant} needs {', '.join(missing)}")
            if self.oauth_private_key is not None and PEM_PRIVATE_KEY not in self.oauth_private_key.get_secret_value():
                raise ValueError("oauth_private_key is not a PEM private key")
        elif not self.password.get_secret_value():
            raise ValueError("auth_kind password needs a password")
        return self

    def _oauth_requirements(self) -> list[tuple[str, bool]]:
        has_key = bool(self.oauth_private_key and self.oauth_private_key.get_secret_value())
        if self.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
            return [("oauth_service_account", bool(self.oauth_service_account)), ("oauth_private_key", has_key),
                    ("a mailbox address as username", "@" in self.username)]
        required = [("oauth_client_id", bool(self.oauth_client_id)),
                    ("oauth_tenant_id or oauth_token_url", bool(self.oauth_tenant_id or self.oauth_token_url))]
        if self.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE:
            return [*required, ("oauth_private_key", has_key),
                    ("oauth_certificate_pem", "BEGIN CERTIFICATE" in (self.oauth_certificate_pem or ""))]
        secret = bool(self.oauth_client_secret and self.oauth_client_secret.get_secret_value())
        return [required[0], ("oauth_client_secret", secret), required[1]]

    @model_validator(mode="after")
    def _default_scope(self) -> SmtpCredentials:
        # Exchange Online's scope is the field's default; a service account's token is for Gmail unless set.
        if self.oauth_grant is OAuthGrant.SERVICE_ACCOUNT and "oauth_scope" not in self.model_fields_set:
            self.oauth_scope = GMAIL_SCOPE
        return self

    @property
    def token_url(self) -> str:
        """Where the OAuth 2.0 token comes from: `oauth_token_url`, else Google's endpoint for a service account,
        else Entra ID's endpoint for the tenant. The one place a token URL is decided."""
        if self.oauth_token_url:
            return self.oauth_token_url
        if self.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
            return GOOGLE_TOKEN_URL
        return ENTRA_TOKEN_URL.format(tenant=quote(self.oauth_tenant_id or "", safe=""))

    @property
    def oauth_signing_key(self) -> str:
        """The PEM private key that signs the assertion (client_certificate, service_account), else ""."""
        return self.oauth_private_key.get_secret_value() if self.oauth_private_key else ""

    def to_secret_string(self) -> str:
        """The JSON stored as the secret's value, password included: only for Secrets Manager."""
        data = self.model_dump(mode="json")
        data["password"] = self.password.get_secret_value()
        if self.oauth_refresh_token is not None:
            data["oauth_refresh_token"] = self.oauth_refresh_token.get_secret_value()
        if self.oauth_client_secret is not None:
            data["oauth_client_secret"] = self.oauth_client_secret.get_secret_value()
        if self.oauth_private_key is not None:
            data["oauth_private_key"] = self.oauth_private_key.get_secret_value()
        return json.dumps(data)

    @property
    def fingerprint(self) -> tuple[str, int, str]:
        """What one SMTP connection can be reused for: smarthost and login."""
        return (self.host, self.port, self.username)


def checked_credentials(fields: dict) -> SmtpCredentials:
    """Credentials from a form or the command line; a ConfigurationError names each invalid field with pydantic's
    message and never quotes the input (it may be a password)."""
    try:
        return SmtpCredentials.model_validate(fields)
    except ValidationError as error:
        problems = "; ".join(": ".join(part for part in (".".join(str(p) for p in e["loc"]), e["msg"]) if part)
                             for e in error.errors(include_input=False))
        raise ConfigurationError(f"invalid connector settings: {problems}",
                                 action="Correct the fields named and try again.") from None
