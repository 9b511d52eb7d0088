"""Settings read once from the environment into a validated model; a missing variable fails at cold start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "RELAYDESK_"


class Settings(BaseModel):
    """Names of every resource come from template.yaml through the functions' environment: field `x` is
    RELAYDESK_X. Read with `Settings.from_environment()`; keyword arguments build one directly (tests)."""

    # A plain model with a ten-line reader instead of pydantic-settings' BaseSettings: importing pydantic-settings
    # costs every cold start about 25 ms (it imports asyncio, argparse, python-dotenv and all its sources) to read
    # a flat set of variables (bench/bench_coldstart.py).
    model_config = ConfigDict(extra="ignore", frozen=True)

    environment: Literal["sandbox", "production"] = "sandbox"
    mail_domain: str = Field(description="Inbound mail domain; system addresses are support@<sub>.<domain>")
    tickets_table: str
    directory_table: str
    idempotency_table: str
    counters_table: str
    raw_mail_bucket: str
    notifications_queue_url: str
    notifications_dlq_url: str = ""
    inbound_dlq_url: str = ""
    secret_prefix: str = "relaydesk/connector/"
    dkim_secret_prefix: str = "relaydesk/dkim/"  # one secret per customer domain: its DKIM keyring
    connector_kms_key_id: str = ""  # the template's KMS key for connector secrets; empty: the account default
    rotation_function_arn: str = ""  # stack output RotationFunctionArn; empty: rotate in process (local stack)
    default_from_domain: str = ""
    ses_configuration_set: str = ""
    credentials_cache_seconds: int = Field(default=300, ge=0)
    max_delivery_attempts: int = Field(default=5, ge=1)
    # The relay's once guard (store/ports.py's OnceGuard): how long a claim holds a notification (longer than the
    # queue's visibility timeout) and how long a stored outcome is kept (as long as a copy can still reach the relay).
    relay_in_progress_seconds: float = Field(default=430.0, gt=0)
    idempotency_expiry_seconds: int = Field(default=18 * 24 * 3600, gt=0)
    retry_first_seconds: float = Field(default=120.0, gt=0)  # a deferral's first delay; each next one is 3x
    # The relay's event source mapping's MaximumBatchingWindowInSeconds: a notification waiting for its mailbox's turn
    # is queued again that much earlier, as the mapping may hold it that long before the relay gets it.
    relay_batching_window_seconds: float = Field(default=0.0, ge=0, le=300)
    smtp_connect_timeout: float = Field(default=10.0, gt=0)  # the relay's SMTP timeouts, seconds
    smtp_command_timeout: float = Field(default=15.0, gt=0)
    smtp_data_timeout: float = Field(default=20.0, gt=0)
    sender_flood_threshold_per_hour: int = Field(default=20, ge=1)
    # Attachment links (relaydesk/attachments): the attachments function's URL; empty: S3 pre-signed URLs instead.
    attachments_base_url: str = ""
    attachment_link_days: int = Field(default=30, ge=1, le=365)
    link_signing_secret_id: str = ""  # the stack's LinkSigningSecret (HMAC key of the attachment links)
    # The other environment's (sandbox <-> production) directory table, name or ARN: the API reads it so that an
    # address is never in both. Empty: not checked by the API (docs/ADMIN.md).
    other_environment_directory_table: str = ""
    # Hold alerts to an account's admins: the admin console's address (a link in each alert; empty: the alert names
    # the CLI command instead), and the hours between reminders while a hold lasts.
    console_url: str = Field(default="", pattern=r"^$|^https://[^\s]+$|^http://(127\.0\.0\.1|localhost)[:/][^\s]*$")
    hold_reminder_hours: float = Field(default=24.0, gt=0)
    # Where connections on a customer's behalf may go beyond public addresses (relaydesk.destinations reads them):
    # comma-separated addresses or networks, and token hosts beyond the providers' own.
    allowed_destinations: str = ""
    allowed_token_hosts: str = ""
    # The tenant API: the role it assumes, tagged with the caller's account, to touch that account's connector
    # secrets (empty: its own credentials), and the admin console's app client, the only one allowed on
    # console-only routes (empty: none is).
    tenant_secrets_role_arn: str = ""
    console_client_id: str = ""
    # The role the tenant API signs upload forms with, tagged with the caller's account (empty: its own credentials).
    tenant_uploads_role_arn: str = ""
    # The admin console: the function that runs its jobs (connect, verify, rotate; invoked asynchronously by the
    # tenant API). The user pool: the users the account's admins list and invite, and the agents and admins a
    # ticket may be assigned to (empty: neither through the tenant API).
    console_jobs_function: str = ""
    user_pool_id: str = ""

    @property
    def outbound_default_domain(self) -> str:
        return self.default_from_domain or self.mail_domain

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Each field from RELAYDESK_<FIELD>, the name matched in any case (as pydantic-settings did), the text
        validated and converted by the model; a missing required variable raises ValidationError naming the field."""
        environ = os.environ if environ is None else environ
        present = {key.upper(): value for key, value in environ.items() if key.upper().startswith(ENV_PREFIX)}
        return cls.model_validate({name: present[ENV_PREFIX + name.upper()] for name in cls.model_fields
                                   if ENV_PREFIX + name.upper() in present})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_environment()
