"""Tenants and their users in the local stack: an account (the same lifecycle as `relaydesk accounts create`) and
Cognito users of the stack's user pool (in moto) with the account in `custom:account_id` and a role as their group,
exactly as the operator creates them in AWS (`docs/API.md`). Passwords are random, returned, never printed."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from relaydesk.accounts import Account
from relaydesk.addresses import lifecycle
from relaydesk.store.cognito import CognitoUsers

ACCOUNT_ATTRIBUTE = CognitoUsers.ACCOUNT_ATTRIBUTE


@dataclass(frozen=True)
class User:
    username: str
    password: str
    account_id: str
    role: str | None


def new_password() -> str:
    """Meets the pool's policy (12+ characters, upper, lower, digits)."""
    return f"{secrets.token_urlsafe(18)}Aa1"


def add_user(cognito: Any, pool_id: str, account_id: str, email: str, role: str | None, *,
             name: str | None = None) -> User:
    """A confirmed user with a permanent password (`relaydesk users add --password-stdin`), in the group named by
    `role`; with no role, a user in no group (signed in, allowed nothing)."""
    password = new_password()
    if role:
        CognitoUsers(cognito, pool_id).add(email, account_id, role, password=password, name=name)
    else:
        cognito.admin_create_user(UserPoolId=pool_id, Username=email, MessageAction="SUPPRESS", UserAttributes=[
            {"Name": "email", "Value": email}, {"Name": ACCOUNT_ATTRIBUTE, "Value": account_id}])
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    return User(email, password, account_id, role)


def add_tenant(stores: Any, cognito: Any, pool_id: str, subdomain: str, name: str, *,
               domain: str) -> tuple[Account, User]:
    """An account and its first admin, admin@<domain>."""
    account, _ = lifecycle.create_account(stores, subdomain, name, "production")
    return account, add_user(cognito, pool_id, account.account_id, f"admin@{domain}", "admin")
