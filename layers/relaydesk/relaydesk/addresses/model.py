"""A support address and the connector that sends for it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from relaydesk.addresses.providers import LimitOverrides
from relaydesk.clock import utcnow
from relaydesk.credentials import SUBMISSION_PORT, AuthKind, OAuthGrant, SmtpCredentials, TlsMode

EMAIL_MAX_LENGTH = 254  # RFC 5321 4.5.3.1.3: a path of 256 octets, less the angle brackets
LOCAL_PART_MAX_LENGTH = 64  # RFC 5321 4.5.3.1.1


class AddressKind(StrEnum):
    SYSTEM = "system"
    FORWARDING = "forwarding"
    SMTP_CONNECTOR = "smtp_connector"


class VerificationStatus(StrEnum):
    UNVERIFIED = "unverified"
    PENDING = "pending"
    VERIFIED = "verified"
    FAILED = "failed"


class ConnectorState(StrEnum):
    """Pending until outbound is verified, active, disabled, or held (auth_failed, tls_failed) until a fix."""

    PENDING = "pending"  # connected, outbound not verified yet
    ACTIVE = "active"  # notifications leave through the smarthost
    DISABLED = "disabled"  # notifications fall back to the default outbound
    AUTH_FAILED = "auth_failed"  # held: the smarthost refused the credentials; notifications wait for the fix
    TLS_FAILED = "tls_failed"  # held: no STARTTLS, or a certificate that does not verify; notifications wait

    @property
    def held(self) -> bool:
        return self in (ConnectorState.AUTH_FAILED, ConnectorState.TLS_FAILED)


class ErrorTopic(StrEnum):
    """What an address's last error is about, so the fix of that thing clears it and nothing else does."""

    FORWARDING = "forwarding"  # the forwarding verification
    SENDING = "sending"  # the connector: connection, TLS, credentials, DKIM, the outbound verification
    ROTATION = "rotation"  # a credential rotation whose new credentials were refused


class Connector(BaseModel):
    """Where and how to submit; the credentials themselves live only in Secrets Manager."""

    host: str
    port: int = SUBMISSION_PORT
    tls_mode: TlsMode = TlsMode.STARTTLS
    auth_kind: AuthKind = AuthKind.PASSWORD
    # oauth2 only: who signs in (identifiers, not secrets; the client secret or private key is in the secret): the
    # Entra ID tenant and app, or the Google service account and its numeric client ID (domain-wide delegation)
    oauth_grant: OAuthGrant | None = None
    oauth_tenant_id: str | None = None
    oauth_client_id: str | None = None
    oauth_service_account: str | None = None
    oauth_certificate_thumbprint: str | None = None  # client_certificate: SHA-1 hex, as Entra ID lists it
    oauth_certificate_expires_at: datetime | None = None
    secret_arn: str
    state: ConnectorState = ConnectorState.PENDING
    credentials_version: str | None = None  # Secrets Manager VersionId last seen working
    held_since: datetime | None = None
    held_version: str | None = None  # the secret VersionId the smarthost refused (auth_failed); a new one releases
    # Sending limits (addresses/providers.py): the provider's profile (None: recognised from the host) and the
    # admin's lower limits for this address.
    provider: str | None = None
    limits: LimitOverrides | None = None

    def take_sign_in(self, credentials: SmtpCredentials) -> None:
        """Copy how `credentials` sign in (never a secret) onto the connector, for `show` and the hold's words."""
        oauth = credentials.auth_kind is AuthKind.OAUTH2
        self.auth_kind = credentials.auth_kind
        self.oauth_grant = credentials.oauth_grant if oauth else None
        self.oauth_tenant_id = credentials.oauth_tenant_id if oauth else None
        self.oauth_client_id = credentials.oauth_client_id if oauth else None
        self.oauth_service_account = credentials.oauth_service_account if oauth else None
        self.oauth_certificate_thumbprint = credentials.oauth_certificate_thumbprint if oauth else None
        self.oauth_certificate_expires_at = credentials.oauth_certificate_expires_at if oauth else None


class AddressEvent(BaseModel):
    """One transition of the address, with its time (the latest `MAX_EVENTS` are kept on the address)."""

    at: datetime
    transition: str
    detail: str = ""


class DkimSettings(BaseModel):
    enabled: bool = False
    domain: str | None = None
    selectors: list[str] = Field(default_factory=list)
    secret_arn: str | None = None


class Verification(BaseModel):
    status: VerificationStatus = VerificationStatus.UNVERIFIED
    token: str | None = None
    started_at: datetime | None = None
    verified_at: datetime | None = None
    error: str | None = None


class SupportAddress(BaseModel):
    email: str
    account_id: str
    name: str = ""
    brand_id: str | None = None
    kind: AddressKind = AddressKind.FORWARDING
    forwarding: Verification = Field(default_factory=Verification)
    outbound: Verification = Field(default_factory=Verification)
    connector: Connector | None = None
    dkim: DkimSettings = Field(default_factory=DkimSettings)
    is_default: bool = False
    last_error: str | None = None
    last_error_about: ErrorTopic | None = None
    events: list[AddressEvent] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @field_validator("email")
    @classmethod
    def _email_is_lowercase(cls, value: str) -> str:
        if any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):  # NUL, CR, LF, ESC, DEL, C1 ...
            raise ValueError("an email address cannot contain control characters")
        value = value.strip().lower()
        if value.count("@") != 1 or not all(value.split("@")):
            raise ValueError("not an email address")
        if any(ch in value for ch in " <>,;\"'\\"):
            raise ValueError("an email address cannot contain white space, quotes or separators")
        if len(value) > EMAIL_MAX_LENGTH or len(value.partition("@")[0]) > LOCAL_PART_MAX_LENGTH:
            raise ValueError(f"an email address has at most {EMAIL_MAX_LENGTH} characters, "
                             f"{LOCAL_PART_MAX_LENGTH} before the @")
        return value

    @property
    def domain(self) -> str:
        return self.email.rpartition("@")[2]

    @property
    def sends_through_connector(self) -> bool:
        return (
            self.kind is AddressKind.SMTP_CONNECTOR
            and self.connector is not None
            and (self.connector.state is ConnectorState.ACTIVE or self.connector.state.held)
        )
