"""The content of one connector secret in Secrets Manager: where to submit and how to authenticate."""

from __future__ import annotations

import json
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


class TlsMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class AuthKind(StrEnum):
    PASSWORD = "password"  # AUTH PLAIN/LOGIN
    OAUTH2 = "oauth2"  # AUTH XOAUTH2 with an OAuth 2.0 client-credentials token (Microsoft Entra ID)


class SmtpCredentials(BaseModel):
    """Never logged: `password` and `oauth_client_secret` are SecretStr and `__repr__` hides them; a validation
    error never echoes the input (it may hold them).

    `auth_kind` password: `username` and `password` for AUTH PLAIN/LOGIN. `auth_kind` oauth2: `username` is the
    mailbox (XOAUTH2 `user=`), the token comes from the client-credentials grant of `oauth_client_id` and
    `oauth_client_secret` at `token_url` (Entra ID's, from `oauth_tenant_id`, unless `oauth_token_url` is set).
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
    oauth_scope: str = EXCHANGE_ONLINE_SCOPE
    ca_bundle_pem: str | None = Field(default=None, description="PEM CA bundle for a private smarthost")

    @field_validator("host")
    @classmethod
    def _host_is_lowercase(cls, value: str) -> str:
        return value.strip().lower().rstrip(".")

    @field_validator("oauth_client_id", "oauth_tenant_id", "oauth_token_url")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _can_authenticate(self) -> SmtpCredentials:
        # Names only, never values: this message reaches the CLI and the relay's logs.
        if self.auth_kind is AuthKind.OAUTH2:
            missing = [name for name, present in (
                ("oauth_client_id", bool(self.oauth_client_id)),
                ("oauth_client_secret", bool(self.oauth_client_secret and self.oauth_client_secret.get_secret_value())),
                ("oauth_tenant_id or oauth_token_url", bool(self.oauth_tenant_id or self.oauth_token_url)),
            ) if not present]
            if missing:
                raise ValueError(f"auth_kind oauth2 needs {', '.join(missing)}")
        elif not self.password.get_secret_value():
            raise ValueError("auth_kind password needs a password")
        return self

    @property
    def token_url(self) -> str:
        """Where the OAuth 2.0 token comes from: `oauth_token_url`, else Entra ID's endpoint for the tenant."""
        if self.oauth_token_url:
            return self.oauth_token_url
        return ENTRA_TOKEN_URL.format(tenant=quote(self.oauth_tenant_id or "", safe=""))

    def to_secret_string(self) -> str:
        """The JSON stored as the secret's value, password included: only for Secrets Manager."""
        data = self.model_dump(mode="json")
        data["password"] = self.password.get_secret_value()
        if self.oauth_refresh_token is not None:
            data["oauth_refresh_token"] = self.oauth_refresh_token.get_secret_value()
        if self.oauth_client_secret is not None:
            data["oauth_client_secret"] = self.oauth_client_secret.get_secret_value()
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
