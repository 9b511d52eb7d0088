"""The auth_failed hold: when a smarthost refuses an address's credentials, the address is held with the server's
reply and what to do, and its notifications are parked (neither dropped nor retried hot) until the credentials
change; then `release_held` sends them again.

Who calls `release_held(stores, account_id, email)`: rotation's finish step and every credential change of ADDRESSES
(through `lifecycle.release_held_notifications`), and the relay itself when it sees a new secret VersionId.
"""

from __future__ import annotations

from relaydesk.addresses.explain import explain_reply, explain_token_error
from relaydesk.addresses.model import ConnectorState, SupportAddress, VerificationStatus
from relaydesk.clock import utcnow
from relaydesk.credentials import AuthKind, OAuthGrant
from relaydesk.errors import AuthenticationFailedError, ConfigurationError, OAuthTokenRefusedError
from relaydesk.notification import Notification
from relaydesk.store.ports import HeldNotifications
from relaydesk.wiring import Stores


def held_store(stores: Stores) -> HeldNotifications:
    if stores.held is None:
        raise ConfigurationError("no store for held notifications is configured (Stores.held)")
    return stores.held


def is_held(address: SupportAddress | None) -> bool:
    return bool(address and address.connector and address.connector.state is ConnectorState.AUTH_FAILED)


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
        return (f"auth_failed: {token.message.rstrip('.')}. Notifications are held until the credentials change. "
                f"What to do: {fix}")
    known = explain_reply(error.smtp_code, error.server_reply, host=host, username=username, oauth=oauth,
                          google=google)
    what_to_do = known.fix if known else error.action
    said = error.server_reply or error.message
    return (f"auth_failed: {host} refused the credentials ({said}). Notifications are held until the credentials "
            f"change. What to do: {what_to_do}")


def hold_address(stores: Stores, refused: SupportAddress, error: AuthenticationFailedError, *,
                 version_id: str | None) -> None:
    """Put the address in the auth_failed hold (idempotent: the first hold's time is kept)."""
    address = stores.directory.get_account_address(refused.account_id, refused.email)
    if address is None or address.connector is None:
        return
    connector = address.connector
    if connector.state is ConnectorState.DISABLED:
        return  # its mail goes through the default outbound; nothing to hold
    connector.state = ConnectorState.AUTH_FAILED
    connector.held_since = connector.held_since or utcnow()
    connector.held_version = version_id
    address.last_error = explanation(error, host=connector.host, username=address.email,
                                     oauth=connector.auth_kind is AuthKind.OAUTH2,
                                     google=connector.oauth_grant is OAuthGrant.SERVICE_ACCOUNT)
    address.updated_at = utcnow()
    stores.directory.put_address(address)


def park(stores: Stores, notification: Notification) -> None:
    held_store(stores).park(notification.support_address, notification)


def lift_hold(stores: Stores, account_id: str, email: str) -> SupportAddress | None:
    """Back to work: active when outbound was verified, else pending. No-op unless the address is held."""
    address = stores.directory.get_account_address(account_id, email)
    if not is_held(address):
        return address
    assert address is not None and address.connector is not None
    verified = address.outbound.status is VerificationStatus.VERIFIED
    address.connector.state = ConnectorState.ACTIVE if verified else ConnectorState.PENDING
    address.connector.held_since = None
    address.connector.held_version = None
    if address.last_error and address.last_error.startswith("auth_failed:"):
        address.last_error = None
    address.updated_at = utcnow()
    stores.directory.put_address(address)
    return address


def release_held(stores: Stores, account_id: str, email: str) -> int:
    """Lift the address's hold and send every parked notification to the queue again; returns how many.

    Call it after the credentials changed (rotation, `addresses rotate`, reconnect) or the connector was disabled,
    enabled or verified. Each notification is queued before it is unparked: a crash in between leaves a duplicate
    that the relay's idempotency turns into one SMTP transaction, never a loss.
    """
    lift_hold(stores, account_id, email)
    if stores.held is None:
        return 0
    released = 0
    for notification in stores.held.list(email):
        if notification.account_id != account_id:
            continue  # another account's record of the same address: its own hold releases them
        stores.queue.send(notification)
        stores.held.remove(email, notification.notification_id)
        released += 1
    return released


def held_notifications(stores: Stores, account_id: str, email: str) -> list[Notification]:
    """What waits behind the address's hold, for this account only (an address record is per account)."""
    if stores.held is None:
        return []
    return [n for n in stores.held.list(email) if n.account_id == account_id]
