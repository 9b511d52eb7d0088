"""What the API accepts and returns. Responses are built field by field from the address: no credential, secret
ARN, credentials version or verification token can reach them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from relaydesk.accounts import Account, AccountKind, system_address
from relaydesk.addresses.model import (
    EMAIL_MAX_LENGTH,
    AddressKind,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.credentials import AuthKind, TlsMode

NAME_MAX_LENGTH = 255  # a display name in a From header; longer ones are folded awkwardly by mail clients
ACCOUNT_ID_MAX_LENGTH = 64  # ids are 19 characters (relaydesk.ids); the documented bound leaves room
ACCOUNT_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"


def _no_control_characters(value: str | None) -> str | None:
    """A name goes into a From header: CR and LF would start a new header, other controls garble it."""
    if value is not None and any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in value):
        raise ValueError("control characters are not allowed")
    return value


class ErrorBody(BaseModel):
    """Every error: a stable `code` for programs, a `message` for people, and what to do about it."""

    code: str = Field(description="stable, machine-readable: not_found, validation_error, address_in_use, ...")
    message: str
    action: str | None = Field(default=None, description="what to do about it")
    errors: list[FieldError] | None = Field(default=None, description="the invalid fields (validation errors)")


class FieldError(BaseModel):
    field: str = Field(description="where: query.account_id, body.email, ...")
    message: str


class VerificationOut(BaseModel):
    status: VerificationStatus
    started_at: datetime | None = None
    verified_at: datetime | None = None
    error: str | None = None

    @classmethod
    def of(cls, verification: Verification) -> VerificationOut:
        return cls(status=verification.status, started_at=verification.started_at,
                   verified_at=verification.verified_at, error=verification.error)


class ConnectorOut(BaseModel):
    """Where notifications are submitted. The credentials stay in Secrets Manager and are never returned."""

    host: str
    port: int
    tls_mode: TlsMode
    auth_kind: AuthKind
    state: ConnectorState
    held_since: datetime | None = None


class DkimOut(BaseModel):
    enabled: bool
    domain: str | None = None
    selectors: list[str] = Field(default_factory=list)


class AddressOut(BaseModel):
    id: str = Field(description="the address itself; URL-encode it in paths (support%40acme.com)")
    email: str
    account_id: str
    name: str
    kind: AddressKind
    is_default: bool
    forwarding: VerificationOut
    outbound: VerificationOut
    connector: ConnectorOut | None = None
    dkim: DkimOut
    last_error: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, address: SupportAddress) -> AddressOut:
        connector = address.connector
        return cls(
            id=address.email, email=address.email, account_id=address.account_id, name=address.name,
            kind=address.kind, is_default=address.is_default,
            forwarding=VerificationOut.of(address.forwarding), outbound=VerificationOut.of(address.outbound),
            connector=None if connector is None else ConnectorOut(
                host=connector.host, port=connector.port, tls_mode=connector.tls_mode,
                auth_kind=connector.auth_kind, state=connector.state, held_since=connector.held_since),
            dkim=DkimOut(enabled=address.dkim.enabled, domain=address.dkim.domain,
                         selectors=list(address.dkim.selectors)),
            last_error=address.last_error, created_at=address.created_at, updated_at=address.updated_at)


class AddressList(BaseModel):
    support_addresses: list[AddressOut]


class NewAddress(BaseModel):
    """Only forwarding addresses: a connector address needs credentials, which only the admin CLI carries."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=EMAIL_MAX_LENGTH,
                       description="RFC 5321 4.5.3.1.3: at most 254 characters; no control characters")
    name: str = Field(default="", max_length=NAME_MAX_LENGTH, description="the display name; no control characters")
    kind: Literal["forwarding", "smtp_connector"] = Field(
        default="forwarding", description="smtp_connector is refused here: use `relaydesk addresses connect`")

    @field_validator("email")
    @classmethod
    def _is_an_address(cls, value: str) -> str:
        try:
            return SupportAddress.model_validate({"email": value, "account_id": "-"}).email
        except ValidationError:
            raise ValueError("not a valid email address") from None

    _name_has_no_controls = field_validator("name")(_no_control_characters)


class CreateAddress(NewAddress):
    """The operator API's body: the account is named in it (the tenant API takes it from the path)."""

    account_id: str = Field(min_length=1, max_length=ACCOUNT_ID_MAX_LENGTH, pattern=ACCOUNT_ID_PATTERN)


class UpdateAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=NAME_MAX_LENGTH,
                             description="the display name; no control characters")
    default: bool | None = Field(
        default=None, description="true makes it the account's default: only when forwarding and outbound are "
                                  "verified; false on the default address is refused (an account always has one)")

    _name_has_no_controls = field_validator("name")(_no_control_characters)


class AccountSettingsOut(BaseModel):
    ccs_and_followers_enabled: bool
    include_attachments_in_email: bool


class AccountOut(BaseModel):
    """The caller's own account; no other account is ever shown."""

    account_id: str
    subdomain: str
    name: str
    kind: AccountKind
    system_address: str = Field(description="support@<subdomain>.<mail domain>: where the server-level forward goes")
    settings: AccountSettingsOut

    @classmethod
    def of(cls, account: Account, mail_domain: str) -> AccountOut:
        return cls(account_id=account.account_id, subdomain=account.subdomain, name=account.display_name,
                   kind=account.kind, system_address=system_address(account.subdomain, mail_domain),
                   settings=AccountSettingsOut(**account.settings.model_dump()))


class DeletedAddress(BaseModel):
    id: str
    email: str
    deleted: Literal[True] = True
    secret_deletion_scheduled: bool = Field(description="a connector's secret is deleted after the recovery window")
    recovery_window_days: int | None = None


ErrorBody.model_rebuild()
