"""The users of an account: who may sign in to the console and the API, and with which role. A user belongs to one
account (the pool's immutable `custom:account_id`); an admin invites others by email (the pool sends the invitation)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import ConfigurationError

if TYPE_CHECKING:  # the ports name the model; the functions take the stores
    from relaydesk.store.ports import Stores, UserDirectory


class UserRole(StrEnum):
    ADMIN = "admin"  # support addresses, credentials, DKIM, settings, users
    AGENT = "agent"  # works tickets, reads delivery records, held and suspended mail


class AccountUser(BaseModel):
    email: str
    role: UserRole | None  # None: in no group, signed in but allowed nothing
    status: str  # the pool's: FORCE_CHANGE_PASSWORD (invited, not signed in yet), CONFIRMED, ...
    enabled: bool = True
    created_at: datetime | None = None
    name: str | None = None  # the pool's `name`: how the user's ticket replies are signed


def _directory(stores: Stores) -> UserDirectory:
    if stores.users is None:
        raise ConfigurationError("no user pool is configured for this stack (RELAYDESK_USER_POOL_ID)")
    return stores.users


def list_users(stores: Stores, account_id: str) -> list[AccountUser]:
    return sorted(_directory(stores).list_users(account_id), key=lambda user: user.email)


def invite(stores: Stores, account_id: str, email: str, role: UserRole | str) -> AccountUser:
    """A new user of the account, invited by email; the address is checked as a support address is."""
    try:
        email = SupportAddress.model_validate({"email": email, "account_id": "-"}).email
    except ValidationError:
        raise ConfigurationError("not a valid email address", action="Give the person's address as name@domain.") \
            from None
    return _directory(stores).invite(account_id, email, UserRole(role))
