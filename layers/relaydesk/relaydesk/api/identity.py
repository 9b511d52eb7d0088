"""Who is calling the tenant API: the Cognito ID token's claims, as API Gateway's JWT authorizer hands them to the
function (`requestContext.authorizer.jwt.claims`, every value a string, arrays written `[a b]`), read into a Caller.

A user belongs to exactly one account (`custom:account_id`, an immutable attribute of the user pool) and has a role
from its user pool group: `admin` (support addresses, credentials, DKIM, settings) or `agent` (works tickets, reads
delivery records, held and suspended mail). An admin may do everything an agent may.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from relaydesk.errors import Unauthenticated
from relaydesk.tickets.model import agent_name

ACCOUNT_CLAIM = "custom:account_id"
GROUPS_CLAIM = "cognito:groups"
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # ids.new_id gives 19 characters; 64 is the documented max
NAME_CLAIM = "name"  # the user's display name (the pool's standard attribute), shown in an agent's reply's From
EMAIL_CLAIM = "email"
EMAIL_MAX_LENGTH = 254  # RFC 5321 4.5.3.1.3
_PLAIN_EMAIL = re.compile(r"^[^\s@<>,;:\"()\\\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,189}$")


class Role(IntEnum):
    """Ranked: a route that needs `agent` admits `admin` too."""

    AGENT = 1
    ADMIN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Caller:
    account_id: str
    role: Role | None  # None: a user in no group (signed in, allowed nothing)
    subject: str  # the user's `sub`, for the logs
    client_id: str  # the app client the token was issued to (`aud` of an ID token)
    # Who the user is, from the same verified token: the author of what it writes on a ticket (never the body's).
    email: str = ""  # lower-cased; empty when the token carries no plain address
    name: str = ""  # one line, bounded; the address's local part when the user has no name


    def may(self, needed: Role) -> bool:
        return self.role is not None and self.role >= needed


def claims_of(event: Any) -> dict[str, Any] | None:
    """The verified claims API Gateway attached, or None (no authorizer ran, or not a JWT one)."""
    if not isinstance(event, dict):
        return None
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    jwt = authorizer.get("jwt") if isinstance(authorizer, dict) else None
    claims = jwt.get("claims") if isinstance(jwt, dict) else None
    return claims if isinstance(claims, dict) else None


def groups_of(value: Any) -> set[str]:
    """`cognito:groups` as a list (the token itself) or as API Gateway writes it: "[admin agent]"."""
    if isinstance(value, list):
        return {str(item) for item in value}
    if isinstance(value, str):
        return set(value.strip().removeprefix("[").removesuffix("]").replace(",", " ").split())
    return set()


def role_of(groups: set[str]) -> Role | None:
    ranked = [role for role in Role if role.label in groups]
    return max(ranked) if ranked else None


def caller_from_claims(claims: dict[str, Any] | None, *, now: float | None = None) -> Caller:
    """The caller, or Unauthenticated when the claims are not those of a Relaydesk user's ID token."""
    if not claims:
        raise Unauthenticated("no token: send the ID token from `relaydesk login` as `Authorization: Bearer ...`")
    if claims.get("token_use") != "id":
        raise Unauthenticated("not an ID token: send the ID token (the access token carries no account)")
    account_id = claims.get(ACCOUNT_CLAIM)
    if not isinstance(account_id, str) or not ACCOUNT_ID_PATTERN.match(account_id):
        raise Unauthenticated("the token names no Relaydesk account")
    try:
        expires = float(claims.get("exp", "nan"))
    except (TypeError, ValueError):
        raise Unauthenticated("the token has no valid expiry") from None
    if not expires > (time.time() if now is None else now):  # also false for NaN
        raise Unauthenticated("the token has expired: sign in again (`relaydesk login`)")
    email = email_of(claims.get(EMAIL_CLAIM))
    return Caller(account_id=account_id, role=role_of(groups_of(claims.get(GROUPS_CLAIM))),
                  subject=str(claims.get("sub", "")), client_id=str(claims.get("aud", "")), email=email,
                  name=agent_name(claims.get(NAME_CLAIM)) or email.partition("@")[0])


def email_of(value: Any) -> str:
    """The token's address when it is one plain address, lower-cased; else empty (never trusted half-way)."""
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if len(text) <= EMAIL_MAX_LENGTH and _PLAIN_EMAIL.match(text) else ""
