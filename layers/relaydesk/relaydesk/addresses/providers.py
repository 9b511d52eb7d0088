"""Provider profiles: the sending limits of each mailbox provider, as published, as one table.

A profile's figures are what the shaper enforces for a mailbox. An admin may set lower ones for an address (kept on
its connector); a provider's published figures are ceilings, and other smarthosts (the customer's own Exchange or
Postfix, any other server) take any value up to the sanity bounds below. `docs/DELIVERY.md` cites each figure.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict, Field

from relaydesk.errors import ConfigurationError

# Bounds on what an admin may type for a smarthost without published limits: enough for any real server, small
# enough that a typo cannot make the shaper's state item large (it keeps one entry per send of the last minute).
MAX_MESSAGES_PER_MINUTE = 6000
MAX_PER_DAY = 10_000_000
MAX_RECIPIENTS_PER_MESSAGE = 1000
MAX_CONNECTIONS = 20
SAFE_RCPTS = 100  # RFC 5321 4.5.3.1.8: every server must take at least 100 recipients


class Limits(BaseModel):
    """What one mailbox may send. `messages_per_day` is None where the provider publishes no such limit."""

    model_config = ConfigDict(frozen=True)

    messages_per_minute: int = Field(ge=1, le=MAX_MESSAGES_PER_MINUTE)
    messages_per_day: int | None = Field(default=None, ge=1, le=MAX_PER_DAY)
    recipients_per_day: int = Field(ge=1, le=MAX_PER_DAY)
    recipients_per_message: int = Field(ge=1, le=MAX_RECIPIENTS_PER_MESSAGE)
    connections: int = Field(ge=1, le=MAX_CONNECTIONS)


class LimitOverrides(BaseModel):
    """An admin's lower limits for one address, kept with its connector settings; None keeps the profile's."""

    messages_per_minute: int | None = Field(default=None, ge=1, le=MAX_MESSAGES_PER_MINUTE)
    messages_per_day: int | None = Field(default=None, ge=1, le=MAX_PER_DAY)
    recipients_per_day: int | None = Field(default=None, ge=1, le=MAX_PER_DAY)
    recipients_per_message: int | None = Field(default=None, ge=1, le=MAX_RECIPIENTS_PER_MESSAGE)
    connections: int | None = Field(default=None, ge=1, le=MAX_CONNECTIONS)

    def given(self) -> dict[str, int]:
        return {name: value for name, value in self.model_dump().items() if value is not None}


SANITY = Limits(messages_per_minute=MAX_MESSAGES_PER_MINUTE, messages_per_day=MAX_PER_DAY,
                recipients_per_day=MAX_PER_DAY, recipients_per_message=MAX_RECIPIENTS_PER_MESSAGE,
                connections=MAX_CONNECTIONS)


class Profile(NamedTuple):
    name: str
    label: str
    limits: Limits  # the defaults
    published: bool  # True: the figures are the provider's and can only be lowered; False: safe, configurable
    hosts: str  # a regular expression of the provider's smarthosts, to recognise an address connected without one
    source: str  # where the figures come from


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("microsoft365", "Microsoft 365",
            Limits(messages_per_minute=30, recipients_per_day=10_000, recipients_per_message=500, connections=3),
            True, r"(^|\.)(office365|outlook)\.com$",
            "Exchange Online SMTP AUTH: 30 messages a minute, 10,000 recipients a day (a sliding 24 hours), three "
            "concurrent connections per mailbox, 500 recipients per message by default"),
    Profile("google", "Google Workspace",
            Limits(messages_per_minute=30, messages_per_day=2000, recipients_per_day=2000, recipients_per_message=100,
                   connections=3),
            True, r"^smtp\.gmail\.com$",
            "Gmail sending limits: 2,000 messages a day per user, 100 recipients per message over SMTP, 2,000 "
            "unique external recipients a day (a rolling 24 hours); Google publishes no per-minute or connection "
            "limit, so 30 a minute over 3 connections is Relaydesk's"),
    Profile("amazon-ses", "Amazon SES (SMTP interface)",
            Limits(messages_per_minute=60, messages_per_day=200, recipients_per_day=200, recipients_per_message=50,
                   connections=3),
            False, r"^email-smtp\.[a-z0-9-]+\.amazonaws\.com$",
            "SES quotas: 50 recipients per message; the sending rate and the 24-hour quota are the AWS account's "
            "own (1 message a second and 200 a day in the sandbox, the defaults here): raise them to your "
            "account's quota"),
    Profile("exchange", "Exchange Server (on-premises)",
            Limits(messages_per_minute=30, recipients_per_day=10_000, recipients_per_message=SAFE_RCPTS,
                   connections=3),
            False, r"(?!)",
            "your organisation's receive connector (MessageRateLimit, MaxRecipientsPerMessage) and throttling policy "
            "(RecipientRateLimit); safe defaults, set them to your server's"),
    Profile("postfix", "Postfix",
            Limits(messages_per_minute=60, recipients_per_day=10_000, recipients_per_message=SAFE_RCPTS,
                   connections=3),
            False, r"(?!)",
            "your server's smtpd_client_message_rate_limit, smtpd_recipient_limit and "
            "smtpd_client_connection_count_limit; safe defaults, set them to your server's"),
    Profile("other", "another smarthost",
            Limits(messages_per_minute=30, recipients_per_day=10_000, recipients_per_message=SAFE_RCPTS,
                   connections=2),
            False, r"(?!)",
            "safe defaults for an unknown server; set them to your server's"),
)}
DEFAULT_PROFILE = "other"


def profile_named(name: str) -> Profile:
    found = PROFILES.get(name)
    if found is None:
        raise ConfigurationError(f"unknown provider {name!r}", action=f"Use one of: {', '.join(sorted(PROFILES))}.")
    return found


def profile_for(provider: str | None, host: str) -> Profile:
    """The connector's provider when it names one; else recognised from the smarthost; else `other`."""
    if provider and provider in PROFILES:
        return PROFILES[provider]
    host = (host or "").strip().lower().rstrip(".")
    return next((p for p in PROFILES.values() if re.search(p.hosts, host)), PROFILES[DEFAULT_PROFILE])


def effective_limits(profile: Profile, overrides: LimitOverrides | None) -> Limits:
    """The profile's limits with the admin's lower ones applied (never above a published figure)."""
    values = profile.limits.model_dump()
    if overrides is not None:
        for name, value in overrides.given().items():
            values[name] = min(value, _ceiling(profile, name)) if profile.published else value
    return Limits(**values)


def check_overrides(profile: Profile, overrides: LimitOverrides) -> None:
    """Refuse raising a published figure, naming the provider's limit; other smarthosts take any bounded value."""
    if not profile.published:
        return
    for name, value in overrides.given().items():
        ceiling = _ceiling(profile, name)
        if value > ceiling:
            raise ConfigurationError(
                f"{profile.label} allows at most {ceiling} for {name.replace('_', ' ')}; {value} is above it",
                action=f"A provider's published limits can only be lowered (--{name.replace('_', '-')} "
                       f"{ceiling} or less).")


def _ceiling(profile: Profile, name: str) -> int:
    value = getattr(profile.limits, name)
    return value if value is not None else getattr(SANITY, name)
