"""An address's sending limits in the admin console: the provider's figures beside the ones in force, lowered by an
admin (a provider's published figure is a ceiling) or reset to the provider's. The same domain calls as `relaydesk
addresses limits`; the relay reads the limits with each batch, so a change applies to the next one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from relaydesk.addresses import lifecycle
from relaydesk.addresses.limits import limits_of, profile_of, set_limits
from relaydesk.addresses.model import SupportAddress
from relaydesk.addresses.providers import (
    MAX_CONNECTIONS,
    MAX_MESSAGES_PER_MINUTE,
    MAX_PER_DAY,
    MAX_RECIPIENTS_PER_MESSAGE,
    SANITY,
    LimitOverrides,
    Profile,
)
from relaydesk.api.identity import Caller, Role
from relaydesk.api.responses import documented
from relaydesk.api.routing import RouteTable
from relaydesk.store.ports import Stores

TAG = "support addresses"
AUTH_ERRORS = (401, 403, 404)
AccountId = Annotated[str, Path(max_length=64, description="your account's id (the token's)")]
AddressId = Annotated[str, Path(max_length=3 * 254, description="the support address, URL-encoded")]
LimitName = Literal["messages_per_minute", "messages_per_day", "recipients_per_day", "recipients_per_message",
                    "connections"]
LIMIT_NAMES: tuple[LimitName, ...] = ("messages_per_minute", "messages_per_day", "recipients_per_day",
                                      "recipients_per_message", "connections")


def _limit(maximum: int, what: str):  # a whole number (never "30", 30.5 or true), bounded; None: the provider's
    return Field(default=None, ge=1, le=maximum, description=f"{what}; left out: the provider's")


class LimitOut(BaseModel):
    name: LimitName
    provider_value: int | None = Field(description="the provider profile's figure; null: it publishes none (no limit)")
    value: int | None = Field(description="in force for the address; null: no limit")
    lowered: bool = Field(description="true when an admin set this limit for the address")
    maximum: int = Field(description="the highest value accepted: the provider's published figure, or Relaydesk's "
                                     "bound for a server without published limits")


class AddressLimits(BaseModel):
    email: str
    provider: str = Field(description="the profile: microsoft365, google, amazon-ses, exchange, postfix or other")
    provider_label: str
    published: bool = Field(description="true: the figures are the provider's published limits and can only be "
                                        "lowered; false: safe defaults, any value up to `maximum`")
    source: str = Field(description="where the provider's figures come from")
    limits: list[LimitOut]


class LimitsChange(BaseModel):
    """The limits of the address, all at once: each one given replaces the provider's for this address, each one
    left out (or null) follows the provider's. A provider's published figure is never exceeded (400)."""

    model_config = ConfigDict(extra="forbid")

    messages_per_minute: StrictInt | None = _limit(MAX_MESSAGES_PER_MINUTE, "messages a minute")
    messages_per_day: StrictInt | None = _limit(MAX_PER_DAY, "messages a day")
    recipients_per_day: StrictInt | None = _limit(MAX_PER_DAY, "recipients a day")
    recipients_per_message: StrictInt | None = _limit(MAX_RECIPIENTS_PER_MESSAGE, "recipients in one message")
    connections: StrictInt | None = _limit(MAX_CONNECTIONS, "concurrent connections")


def maximum(profile: Profile, name: str) -> int:
    published = getattr(profile.limits, name) if profile.published else None
    return published if published is not None else getattr(SANITY, name)


def limits_out(address: SupportAddress) -> AddressLimits:
    profile = profile_of(address)
    in_force = limits_of(address)
    lowered = address.connector.limits.given() if address.connector and address.connector.limits else {}
    return AddressLimits(
        email=address.email, provider=profile.name, provider_label=profile.label, published=profile.published,
        source=profile.source,
        limits=[LimitOut(name=name, provider_value=getattr(profile.limits, name), value=getattr(in_force, name),
                         lowered=name in lowered, maximum=maximum(profile, name)) for name in LIMIT_NAMES])


def connector_address(stores: Stores, account_id: str, email: str) -> SupportAddress:
    return lifecycle.connector_address(stores, account_id, email,
                                       action="Sending limits apply to an address connected to its own mail server.")


def register(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    @routes.get("/support_addresses/<id>/limits", role=Role.ADMIN, tags=[TAG],
                summary="An address's sending limits: the provider's, the ones in force, which were lowered",
                responses=documented(200, AddressLimits, "the limits", *AUTH_ERRORS, 409))
    def show_limits(account_id: AccountId, id: AddressId) -> AddressLimits:
        return limits_out(connector_address(get_stores(), caller().account_id, unquote(id)))

    @routes.put("/support_addresses/<id>/limits", role=Role.ADMIN, tags=[TAG],
                summary="Lower an address's sending limits (never above a provider's published figure)",
                description="The body replaces the limits set for the address: each limit given applies, each one "
                            "left out follows the provider's. A provider's published limit can only be lowered "
                            "(400 names it). The relay applies the limits from its next batch.",
                responses=documented(200, AddressLimits, "the limits now in force", 400, *AUTH_ERRORS, 409))
    def lower_limits(account_id: AccountId, id: AddressId, body: LimitsChange) -> AddressLimits:
        stores = get_stores()
        address = connector_address(stores, caller().account_id, unquote(id))
        changed = set_limits(stores.directory, address.account_id, address.email,
                             overrides=LimitOverrides(**body.model_dump(exclude_none=True)), reset=True)
        return limits_out(changed)

    @routes.delete("/support_addresses/<id>/limits", role=Role.ADMIN, tags=[TAG],
                   summary="Reset an address's sending limits to the provider's",
                   responses=documented(200, AddressLimits, "the provider's limits, now in force", *AUTH_ERRORS,
                                        409))
    def reset_limits(account_id: AccountId, id: AddressId) -> AddressLimits:
        stores = get_stores()
        address = connector_address(stores, caller().account_id, unquote(id))
        return limits_out(set_limits(stores.directory, address.account_id, address.email, reset=True))
