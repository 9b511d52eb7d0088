"""What the admin console's routes accept and return. Credentials are accepted by the console-only routes and never
returned: no response model has a field that could hold one (a secret ARN neither)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from relaydesk.addresses.model import EMAIL_MAX_LENGTH
from relaydesk.api.schemas import NAME_MAX_LENGTH, AddressOut, _no_control_characters
from relaydesk.credentials import AuthKind, TlsMode
from relaydesk.jobs.model import Job, JobKind, JobStatus
from relaydesk.tickets.model import DeliveryStatus, SuspensionReason, TicketStatus
from relaydesk.users import UserRole

HOST_MAX_LENGTH = 253  # RFC 1035 2.3.4: a domain name's text form
SECRET_MAX_LENGTH = 1024  # a password or client secret; Entra ID's are 40 characters
ID_MAX_LENGTH = 200  # a tenant or client id (a GUID or a domain)
CA_BUNDLE_MAX_LENGTH = 64 * 1024  # a few PEM certificates
SIGN_IN_FILE_MAX_LENGTH = 64 * 1024  # a key file is ~2.3 KB, a certificate with its key and chain a few KB
HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
                      re.IGNORECASE)
DOMAIN_PATTERN = r"^[A-Za-z0-9.-]{1,253}$"
PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


def _hostname(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    value = value.strip().rstrip(".").lower()
    if not HOSTNAME.match(value):
        raise ValueError("not a host name")
    return value


def _pem(value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if PEM_CERTIFICATE not in value:
        raise ValueError("not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    return value


class Explanation(BaseModel):
    summary: str
    fix: str | None = None


# --- jobs -------------------------------------------------------------------------------------------------------

class JobStepOut(BaseModel):
    name: str
    ok: bool
    detail: str
    elapsed_ms: float


class JobOut(BaseModel):
    """A long operation: poll `GET /jobs/{job_id}` until `status` is no longer running."""

    job_id: str
    kind: JobKind
    email: str
    status: JobStatus
    lost: bool = Field(description="true when the job stopped without finishing (its runner was killed); retry")
    planned_steps: list[str]
    steps: list[JobStepOut]
    progress: list[str]
    summary: str | None = None
    fix: str | None = None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, job: Job, now: datetime) -> JobOut:
        lost = job.lost(now)
        return cls(job_id=job.job_id, kind=job.kind, email=job.email,
                   status=JobStatus.FAILED if lost else job.status, lost=lost, planned_steps=job.planned_steps,
                   steps=[JobStepOut(**step.model_dump()) for step in job.steps], progress=job.progress,
                   summary="the job stopped without finishing" if lost else job.summary,
                   fix="Start it again." if lost else job.fix, created_at=job.created_at, updated_at=job.updated_at)


# --- connecting and changing a connector -------------------------------------------------------------------------

class NewConnection(BaseModel):
    """The wizard's form: written once to the address's secret, never returned."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: str = Field(min_length=3, max_length=EMAIL_MAX_LENGTH)
    name: str = Field(default="", max_length=NAME_MAX_LENGTH)
    preset: Literal["microsoft365", "google", "amazon-ses", "exchange", "postfix", "generic"] = "generic"
    host: str | None = Field(default=None, max_length=HOST_MAX_LENGTH)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls_mode: TlsMode | None = None
    auth_kind: AuthKind = AuthKind.PASSWORD
    username: str | None = Field(default=None, max_length=EMAIL_MAX_LENGTH)
    password: SecretStr | None = Field(default=None, max_length=SECRET_MAX_LENGTH)
    oauth_tenant_id: str | None = Field(default=None, max_length=ID_MAX_LENGTH)
    oauth_client_id: str | None = Field(default=None, max_length=ID_MAX_LENGTH)
    oauth_client_secret: SecretStr | None = Field(default=None, max_length=SECRET_MAX_LENGTH)
    oauth_grant: Literal["client_secret", "client_certificate", "service_account"] = Field(
        default="client_secret", description="how an OAuth 2.0 app signs in: an Entra ID app's client secret or "
                                             "certificate, or a Google service account's key")
    oauth_certificate_pem: SecretStr | None = Field(
        default=None, max_length=SIGN_IN_FILE_MAX_LENGTH,
        description="the Entra ID app's certificate and its unencrypted private key, one PEM text")
    service_account_key: SecretStr | None = Field(
        default=None, max_length=SIGN_IN_FILE_MAX_LENGTH,
        description="a Google service account's JSON key file, as downloaded")
    ca_bundle_pem: str | None = Field(default=None, max_length=CA_BUNDLE_MAX_LENGTH)

    _name_has_no_controls = field_validator("name")(_no_control_characters)
    _host_is_a_host = field_validator("host")(_hostname)
    _ca_is_pem = field_validator("ca_bundle_pem")(_pem)

    @field_validator("email", "username", "oauth_tenant_id", "oauth_client_id")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        return _no_control_characters(value.strip() if value else value)


class ConnectorChange(BaseModel):
    """New credentials or connector settings of a connected address: every field left out keeps its value (a new
    host keeps the password). Tested by a real sign-in before it is used (the rotation's test)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str | None = Field(default=None, max_length=HOST_MAX_LENGTH)
    port: int | None = Field(default=None, ge=1, le=65535)
    tls_mode: TlsMode | None = None
    auth_kind: AuthKind | None = None
    username: str | None = Field(default=None, max_length=EMAIL_MAX_LENGTH)
    password: SecretStr | None = Field(default=None, max_length=SECRET_MAX_LENGTH)
    oauth_tenant_id: str | None = Field(default=None, max_length=ID_MAX_LENGTH)
    oauth_client_id: str | None = Field(default=None, max_length=ID_MAX_LENGTH)
    oauth_client_secret: SecretStr | None = Field(default=None, max_length=SECRET_MAX_LENGTH)
    oauth_certificate_pem: SecretStr | None = Field(
        default=None, max_length=SIGN_IN_FILE_MAX_LENGTH,
        description="a new certificate of the Entra ID app with its unencrypted private key, one PEM text")
    service_account_key: SecretStr | None = Field(
        default=None, max_length=SIGN_IN_FILE_MAX_LENGTH,
        description="a new JSON key file of the Google service account, as downloaded")
    ca_bundle_pem: str | None = Field(default=None, max_length=CA_BUNDLE_MAX_LENGTH)

    _host_is_a_host = field_validator("host")(_hostname)
    _ca_is_pem = field_validator("ca_bundle_pem")(_pem)

    @field_validator("username", "oauth_tenant_id", "oauth_client_id")
    @classmethod
    def _no_controls(cls, value: str | None) -> str | None:
        return _no_control_characters(value.strip() if value else value)

    def changes(self) -> dict:
        """The plain fields given (host, port, username, ids, a password): the sign-in material (client secret,
        certificate, key file) is turned into credential fields by the route, with its checks."""
        fields = self.model_dump(exclude_none=True, exclude={"password", *SIGN_IN_MATERIAL})
        if self.password is not None and self.password.get_secret_value():
            fields["password"] = self.password.get_secret_value()
        return fields


SIGN_IN_MATERIAL = ("oauth_client_secret", "oauth_certificate_pem", "service_account_key")


# --- an address in the console -----------------------------------------------------------------------------------

class ProviderOut(BaseModel):
    key: str
    label: str
    preset: str
    host: str | None
    port: int
    tls_mode: TlsMode
    auth_kinds: list[str]
    grants: list[str] = Field(description="for oauth2: the sign-ins offered (client_secret, client_certificate, "
                                          "service_account)")
    sign_in: str
    forwarding: list[str]


class ProviderList(BaseModel):
    providers: list[ProviderOut] = Field(description="forwarding steps name the support address {support}")


class AddressDetails(BaseModel):
    address: AddressOut
    held_notifications: int = Field(description="notifications waiting behind the hold (auth_failed, tls_failed)")
    explanation: Explanation | None = Field(default=None, description="the last error: what happened, what to do")
    forwarding_target: str = Field(description="the account's system address: where the server-level forward goes")
    provider: ProviderOut | None = Field(default=None, description="the provider guide matching the smarthost")


class Released(BaseModel):
    email: str
    released: int


# --- DKIM ---------------------------------------------------------------------------------------------------------

class DnsRecordOut(BaseModel):
    name: str
    type: str
    value: str
    strings: list[str] = Field(description="the value split into strings of at most 255 bytes, as DNS stores it")


class DkimGenerationOut(BaseModel):
    state: str
    selectors: list[str]
    created_at: datetime
    signs_from: datetime
    retires_at: datetime | None = None


class DkimDomainOut(BaseModel):
    domain: str
    set_up: bool
    signing: bool
    addresses: list[str] = Field(description="your support addresses at the domain")
    generations: list[DkimGenerationOut] = Field(default_factory=list)
    records: list[DnsRecordOut] = Field(default_factory=list, description="the TXT records to publish now")


class DkimChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signing: bool
    skip_dns_check: bool = Field(default=False, description="turn signing on without checking the records")


class FindingOut(BaseModel):
    check: str
    status: str
    message: str
    fix: str = ""


class DnsCheckOut(BaseModel):
    domain: str
    result: str = Field(description="ok, info, warn or fail: the worst finding")
    findings: list[FindingOut]


# --- the delivery log ---------------------------------------------------------------------------------------------

class AttemptOut(BaseModel):
    status: DeliveryStatus
    route: str
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str
    at: datetime


class DeliveryOut(BaseModel):
    ticket_id: str
    subject: str
    support_address: str
    notification_id: str
    recipients: list[str]
    status: DeliveryStatus
    attempts: list[AttemptOut]
    at: datetime | None = None


class DeliveryLog(BaseModel):
    deliveries: list[DeliveryOut]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for older notifications; null: none")
    truncated: bool = Field(description="older notifications may match: the next page (next_cursor) has them")


class HeldOut(BaseModel):
    notification_id: str
    ticket_id: str | None
    support_address: str
    recipients: list[str]
    subject: str
    created_at: datetime


class HeldList(BaseModel):
    held: list[HeldOut]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page; null: none")


class DeadLetterOut(BaseModel):
    notification_id: str
    ticket_id: str | None
    support_address: str | None
    recipients: list[str]
    receives: int
    last_error: str


class DeadLetterList(BaseModel):
    dead_letters: list[DeadLetterOut]


class Redrive(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notification_ids: list[str] = Field(default_factory=list, max_length=100)
    all: bool = False

    @field_validator("notification_ids")
    @classmethod
    def _ids_are_short(cls, value: list[str]) -> list[str]:
        if any(len(item) > 64 or not item.isalnum() for item in value):
            raise ValueError("a notification id is letters and digits, at most 64")
        return value


class Redriven(BaseModel):
    redriven: list[str]
    not_found: list[str]


class SuspendedOut(BaseModel):
    ticket_id: str
    subject: str
    requester: str
    support_address: str
    status: TicketStatus
    reason: SuspensionReason | None = None
    explanation: str | None = None
    created_at: datetime


class SuspendedList(BaseModel):
    tickets: list[SuspendedOut]


class DeletedTicket(BaseModel):
    ticket_id: str
    deleted: Literal[True] = True


# --- settings and users -------------------------------------------------------------------------------------------

class SettingsChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ccs_and_followers_enabled: bool | None = None
    include_attachments_in_email: bool | None = None


class UserOut(BaseModel):
    email: str
    role: UserRole | None
    status: str
    enabled: bool
    created_at: datetime | None = None


class UserList(BaseModel):
    users: list[UserOut]


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=EMAIL_MAX_LENGTH)
    role: UserRole = UserRole.ADMIN
