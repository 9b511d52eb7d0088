"""The content of one connector secret in Secrets Manager: where to submit and how to authenticate."""

from __future__ import annotations

import json
from enum import StrEnum

from pydantic import BaseModel, Field, SecretStr, field_validator

SUBMISSION_PORT = 587  # RFC 6409 message submission, STARTTLS
SUBMISSIONS_PORT = 465  # RFC 8314 3.3, implicit TLS


class TlsMode(StrEnum):
    STARTTLS = "starttls"
    IMPLICIT = "implicit"


class AuthKind(StrEnum):
    PASSWORD = "password"  # AUTH PLAIN/LOGIN
    OAUTH2 = "oauth2"  # XOAUTH2, reserved for later


class SmtpCredentials(BaseModel):
    """Never logged: `password` is a SecretStr and `__repr__` hides it."""

    host: str
    port: int = Field(default=SUBMISSION_PORT, ge=1, le=65535)
    tls_mode: TlsMode = TlsMode.STARTTLS
    auth_kind: AuthKind = AuthKind.PASSWORD
    username: str
    password: SecretStr = SecretStr("")
    oauth_client_id: str | None = None
    oauth_tenant_id: str | None = None
    oauth_refresh_token: SecretStr | None = None
    ca_bundle_pem: str | None = Field(default=None, description="PEM CA bundle for a private smarthost")

    @field_validator("host")
    @classmethod
    def _host_is_lowercase(cls, value: str) -> str:
        return value.strip().lower().rstrip(".")

    def to_secret_string(self) -> str:
        """The JSON stored as the secret's value, password included: only for Secrets Manager."""
        data = self.model_dump(mode="json")
        data["password"] = self.password.get_secret_value()
        if self.oauth_refresh_token is not None:
            data["oauth_refresh_token"] = self.oauth_refresh_token.get_secret_value()
        return json.dumps(data)

    @property
    def fingerprint(self) -> tuple[str, int, str]:
        """What one SMTP connection can be reused for: smarthost and login."""
        return (self.host, self.port, self.username)
