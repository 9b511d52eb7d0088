"""Google's side of a service account's sign-in, for the local token endpoint (`local.oauth_server.TokenServer`
serves it at `/token`, like https://oauth2.googleapis.com/token): the Cloud project's service accounts and their
keys, and the Workspace domain's users, domain-wide delegation and app access policy.

    google = tokens.google
    google.add_service_account(key)                  # a `local.app_credentials.ServiceAccountKey`
    google.delegate(key.client_id)                   # Admin console > Domain Wide Delegation: scope mail.google.com
    google.add_user("support@acme.test")             # a Workspace user the service account may act as
    google.delete_key(key)  google.add_key(new_key)  # Cloud console > the account > Keys
    google.disable(key.client_email)  google.suspend_user(...)  google.block(key.client_id)

`answer(form, now, audience)` checks the JWT bearer request (RFC 7523 2.1): the grant type, the signature (RS256,
the key named by `kid`), `iss`, `aud`, `iat`/`exp` (at most an hour, 5 minutes of clock skew), `scope`, `sub`, and
answers refusals as Google's endpoint does: HTTP 400/401 with `{"error", "error_description"}` and the descriptions
Google sends (the ones for a suspended user and a blocked app are this stand-in's own words).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.serialization import load_pem_public_key

from local.app_credentials import ServiceAccountKey
from local.jwt_check import JwtRefused, decode, verify

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GMAIL_SCOPE = "https://mail.google.com/"
KNOWN_SCOPES = frozenset({GMAIL_SCOPE, "https://www.googleapis.com/auth/gmail.send",
                          "https://www.googleapis.com/auth/cloud-platform"})
MAX_LIFETIME = 3600  # exp - iat
CLOCK_SKEW = 300
LIFETIME = 3599  # Google's expires_in

UNAUTHORIZED_CLIENT = ("Client is unauthorized to retrieve access tokens using this method, or client not authorized "
                       "for any of the scopes requested.")
SHORT_LIVED = ("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your "
               "iat and exp values in the JWT claim.")


class Granted(NamedTuple):
    client_email: str
    subject: str | None
    scope: str


@dataclass
class _ServiceAccount:
    client_id: str
    keys: dict[str, Any] = field(default_factory=dict)  # private_key_id -> public key
    disabled: bool = False
    deleted: bool = False


class GoogleWorkspace:
    def __init__(self, users: tuple[str, ...] = ()) -> None:
        self._accounts: dict[str, _ServiceAccount] = {}
        self._delegations: dict[str, set[str]] = {}  # numeric client id -> scopes
        self._users: dict[str, bool] = {user.lower(): True for user in users}  # mailbox -> active
        self._blocked: set[str] = set()
        self._lock = threading.Lock()

    # -- Google Cloud console: service accounts and keys ---------------------------------------------------
    def add_service_account(self, key: ServiceAccountKey) -> None:
        with self._lock:
            account = self._accounts.setdefault(key.client_email, _ServiceAccount(key.client_id))
            account.deleted = False
        self.add_key(key)

    def add_key(self, key: ServiceAccountKey) -> None:
        public = load_pem_public_key(key.public_key_pem.encode("ascii"))
        with self._lock:
            self._accounts[key.client_email].keys[key.private_key_id] = public

    def delete_key(self, key: ServiceAccountKey) -> None:
        with self._lock:
            self._accounts[key.client_email].keys.pop(key.private_key_id, None)

    def disable(self, client_email: str, disabled: bool = True) -> None:
        with self._lock:
            self._accounts[client_email].disabled = disabled

    def delete_service_account(self, client_email: str) -> None:
        with self._lock:
            self._accounts[client_email].deleted = True

    # -- Google Admin console: users, domain-wide delegation, app access control ---------------------------
    def add_user(self, mailbox: str) -> None:
        with self._lock:
            self._users[mailbox.lower()] = True

    def suspend_user(self, mailbox: str, suspended: bool = True) -> None:
        with self._lock:
            self._users[mailbox.lower()] = not suspended

    def delegate(self, client_id: str, scopes: tuple[str, ...] = (GMAIL_SCOPE,)) -> None:
        """Security > API controls > Manage Domain Wide Delegation > Add new (or edit): these scopes only."""
        with self._lock:
            self._delegations[client_id] = set(scopes)

    def revoke_delegation(self, client_id: str) -> None:
        with self._lock:
            self._delegations.pop(client_id, None)

    def block(self, client_id: str, blocked: bool = True) -> None:
        """Security > API controls > App access control: the app (client id) Blocked."""
        with self._lock:
            (self._blocked.add if blocked else self._blocked.discard)(client_id)

    # -- the token endpoint ------------------------------------------------------------------------------------
    def answer(self, form: dict[str, str], now: float, audience: str) -> Granted | tuple[int, dict[str, str]]:
        """What Google's endpoint does with one request: the grant to issue a token for, or (status, error body)."""
        grant_type = form.get("grant_type", "")
        if grant_type != JWT_BEARER:
            return _refuse(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type[:60]}")
        assertion = form.get("assertion", "")
        if not assertion:
            return _refuse(400, "invalid_request", "Missing required parameter: assertion")
        try:
            header, claims = decode(assertion)
        except JwtRefused:
            return _refuse(400, "invalid_grant", "Invalid JWT: the assertion is not a signed JWT.")
        issuer = str(claims.get("iss", ""))
        with self._lock:
            account = self._accounts.get(issuer)
            keys = dict(account.keys) if account else {}
        if account is None:
            return _refuse(401, "invalid_client", "The OAuth client was not found.")
        if account.deleted:
            return _refuse(401, "deleted_client", "The OAuth client was deleted.")
        if account.disabled:
            return _refuse(401, "disabled_client", "The OAuth client was disabled.")
        if not self._signed_by(assertion, header, keys):
            return _refuse(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != audience:
            return _refuse(400, "invalid_grant", "Invalid JWT: Failed audience check.")
        if not _in_timeframe(claims, now):
            return _refuse(400, "invalid_grant", SHORT_LIVED)
        scopes = str(claims.get("scope", "")).split()
        if not scopes:
            return _refuse(400, "invalid_scope", "Empty or missing scope not allowed.")
        if not set(scopes) <= KNOWN_SCOPES:
            return _refuse(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        subject = claims.get("sub")
        if subject is None:
            return Granted(issuer, None, " ".join(scopes))  # the service account's own token: Gmail has no use for it
        return self._delegated(account, issuer, str(subject).lower(), scopes)

    def _delegated(self, account: _ServiceAccount, issuer: str, subject: str,
                   scopes: list[str]) -> Granted | tuple[int, dict[str, str]]:
        with self._lock:
            blocked = account.client_id in self._blocked
            delegated = self._delegations.get(account.client_id, set())
            active = self._users.get(subject)
        if blocked:
            return _refuse(400, "admin_policy_enforced", "Access to your account data is restricted by policies "
                           "within your organization. Please contact the administrator for more information.")
        if not set(scopes) <= delegated:
            return _refuse(401, "unauthorized_client", UNAUTHORIZED_CLIENT)
        if active is None:
            return _refuse(400, "invalid_grant", "Invalid email or User ID")
        if not active:
            return _refuse(400, "access_denied", "The user's account is suspended.")
        return Granted(issuer, subject, " ".join(scopes))

    @staticmethod
    def _signed_by(assertion: str, header: dict[str, Any], keys: dict[str, Any]) -> bool:
        kid = header.get("kid")
        candidates = [keys[kid]] if isinstance(kid, str) and kid in keys else [] if kid else list(keys.values())
        for public in candidates:
            try:
                verify(assertion, public, ("RS256",))
            except JwtRefused:
                continue
            return True
        return False


def _in_timeframe(claims: dict[str, Any], now: float) -> bool:
    iat, exp = claims.get("iat"), claims.get("exp")
    if not isinstance(iat, int) or not isinstance(exp, int):
        return False
    return exp - iat <= MAX_LIFETIME and iat - CLOCK_SKEW <= now < exp + CLOCK_SKEW


def _refuse(status: int, error: str, description: str) -> tuple[int, dict[str, str]]:
    return status, {"error": error, "error_description": description}
