"""An address's sending limits: which provider profile applies, and the admin's lower limits (`relaydesk addresses
limits`). The relay reads them through `limits_of`; they are settings of the connector, not its state."""

from __future__ import annotations

from typing import Any

from relaydesk.addresses.model import SupportAddress
from relaydesk.addresses.providers import (
    LimitOverrides,
    Limits,
    Profile,
    check_overrides,
    effective_limits,
    profile_for,
    profile_named,
)
from relaydesk.clock import utcnow
from relaydesk.errors import ConfigurationError, NotFoundError
from relaydesk.store.ports import DirectoryStore


def profile_of(address: SupportAddress) -> Profile:
    connector = address.connector
    if connector is None:
        raise ConfigurationError(f"{address.email} has no connector", action="Limits apply to a connected address.")
    return profile_for(connector.provider, connector.host)


def limits_of(address: SupportAddress) -> Limits:
    """What the shaper enforces for the address's mailbox."""
    assert address.connector is not None
    return effective_limits(profile_of(address), address.connector.limits)


def set_limits(directory: DirectoryStore, account_id: str, email: str, *, provider: str | None = None,
               overrides: LimitOverrides | None = None, reset: bool = False) -> SupportAddress:
    """Name the provider and/or lower the limits of the account's address. Given limits join the ones already set;
    `reset` drops them all first. A published limit is never raised (ConfigurationError names the provider's
    figure)."""
    address = directory.get_account_address(account_id, email)
    if address is None:
        raise NotFoundError(f"no support address {email} in account {account_id}")
    connector = address.connector
    if connector is None:
        raise ConfigurationError(f"{email} has no connector", action="Limits apply to a connected address "
                                                                     "(`relaydesk addresses connect`).")
    if provider is not None:
        connector.provider = profile_named(provider).name
    current = {} if reset or connector.limits is None else connector.limits.given()
    merged = LimitOverrides(**{**current, **(overrides.given() if overrides else {})})
    check_overrides(profile_of(address), merged)
    connector.limits = merged if merged.given() else None
    address.updated_at = utcnow()
    directory.put_address(address)
    return address


def limits_view(address: SupportAddress) -> dict[str, Any]:
    """For `addresses show` and `addresses limits`: the profile, the limits in force and which the admin set."""
    profile = profile_of(address)
    limits = limits_of(address)
    lowered = address.connector.limits.given() if address.connector and address.connector.limits else {}

    def shown(name: str) -> str:
        value = getattr(limits, name)
        text = "-" if value is None else f"{value:,}"
        return f"{text} (set for this address)" if name in lowered else text

    return {"provider": f"{profile.label} ({profile.name})",
            "messages_per_minute": shown("messages_per_minute"), "messages_per_day": shown("messages_per_day"),
            "recipients_per_day": shown("recipients_per_day"),
            "recipients_per_message": shown("recipients_per_message"), "connections": shown("connections"),
            "limits_source": profile.source}
