"""The relay's side of a hold: what the address's last error says about it, and parking its notifications.

When a smarthost refuses an address's credentials (auth_failed) or cannot be reached securely (tls_failed: no
STARTTLS, a certificate that does not verify), the address is held (`addresses/state.py`) with the server's reply
and what to do, and its notifications are parked here, neither dropped nor retried hot. Whatever ends the hold
(a verify, a rotation or a settings change that passes, a delivery that works again) releases them.
"""

from __future__ import annotations

import re

from relaydesk import cursors
from relaydesk.addresses.explain import explain_reply, explain_token_error
from relaydesk.errors import (
    AuthenticationFailedError,
    AuthMechanismUnavailableError,
    ConfigurationError,
    OAuthTokenRefusedError,
    SmtpDeliveryError,
)
from relaydesk.notification import Notification
from relaydesk.store.ports import HeldNotifications, Stores

HELD_PAGE_LIMIT = 100  # held notifications per page at most
_NOTIFICATION_ID = re.compile(r"[0-9A-Za-z_.:-]{1,64}")  # ids.new_id("N") and split parts, with room to spare


def held_store(stores: Stores) -> HeldNotifications:
    if stores.held is None:
        raise ConfigurationError("no store for held notifications is configured (Stores.held)")
    return stores.held


def tls_explanation(error: SmtpDeliveryError, *, host: str) -> str:
    """Why the connection could not be secured and what to do (TlsRequiredError, CertificateVerificationError)."""
    return (f"tls_failed: {error.message}. Notifications are held until the smarthost's TLS works again. What to do: "
            f"{error.action} Then run `relaydesk addresses verify` (or change the smarthost with `relaydesk "
            f"addresses set`); the next notification also tries {host} again.")


def explanation(error: AuthenticationFailedError, *, host: str, username: str, oauth: bool = False,
                google: bool = False) -> str:
    """The server's reply and what to do about it, for the address's last error (no secret in it). `oauth`: the
    address signs in with XOAUTH2 (a 535 then means the app's rights on the mailbox, not a password); `google`:
    with a Google service account."""
    if isinstance(error, OAuthTokenRefusedError):
        token = error.token_error
        # Entra ID's codes have a known fix; anything else (an http:// token URL, ...) carries its own action.
        fix = explain_token_error(token.oauth_error or "", token.message, aadsts=token.aadsts).fix \
            if token.aadsts else token.action
        return (f"auth_failed: {token.message.rstrip('.')}. Notifications are held until the credentials work. "
                f"What to do: {fix}")
    if isinstance(error, AuthMechanismUnavailableError):
        return (f"auth_failed: {error.message}. Notifications are held until the credentials work. What to do: "
                f"{error.action}")
    known = explain_reply(error.smtp_code, error.server_reply, host=host, username=username, oauth=oauth,
                          google=google)
    what_to_do = known.fix if known else error.action
    said = error.server_reply or error.message
    return (f"auth_failed: {host} refused the credentials ({said}). Notifications are held until the credentials "
            f"work. What to do: {what_to_do} Then run `relaydesk addresses verify` (the same password, fixed on the "
            "server) or `relaydesk addresses rotate` (a new one).")


def park(stores: Stores, notification: Notification) -> None:
    held_store(stores).park(notification.support_address, notification)


def held_notifications(stores: Stores, account_id: str, email: str) -> list[Notification]:
    """What waits behind the address's hold, for this account only (an address record is per account)."""
    if stores.held is None:
        return []
    return [n for n in stores.held.list(email) if n.account_id == account_id]


def held_page(stores: Stores, account_id: str, *, limit: int,
              cursor: str | None = None) -> tuple[list[Notification], str | None]:
    """A page of what the account's addresses hold, oldest first (ids sort by creation time), and the cursor of the
    next page (None: the last). The cursor holds a notification id only: another account's, or a forged one, only
    moves the position within this account's own held notifications. Each address gives at most `limit + 1`."""
    after = cursors.decode(cursor, {"n": _NOTIFICATION_ID})["n"] if cursor else None
    if stores.held is None:
        return [], None
    found = [n for address in stores.directory.list_addresses(account_id)
             for n in _held_after(stores.held, account_id, address.email, after, limit + 1)]
    found.sort(key=lambda n: n.notification_id)
    page = found[:limit]
    return page, cursors.encode({"n": page[-1].notification_id}) if len(found) > limit else None


def _held_after(held: HeldNotifications, account_id: str, email: str, after: str | None,
                wanted: int) -> list[Notification]:
    """Up to `wanted` of this account's, read on past another account's record of the same address."""
    mine: list[Notification] = []
    while len(mine) < wanted:
        chunk = held.list_after(email, after, wanted)
        mine.extend(n for n in chunk if n.account_id == account_id)
        if len(chunk) < wanted:
            break
        after = chunk[-1].notification_id
    return mine[:wanted]
