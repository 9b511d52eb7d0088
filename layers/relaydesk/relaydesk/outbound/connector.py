"""One smarthost and credential within one batch: one connection, taken from the warm pool or opened lazily (TLS,
then AUTH, rotation-aware), reused message after message and given back to the pool; the auth_failed hold when
nothing works."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.attachments.linker import link_builder
from relaydesk.credentials import AuthKind
from relaydesk.errors import (
    AuthenticationFailedError,
    DkimNotSetUpError,
    DkimSigningError,
    OAuthTokenRefusedError,
    SmtpDeliveryError,
    TransientDeliveryError,
)
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound import dkim, hold, pool
from relaydesk.outbound.compose import Composed, InvalidAddressError, Sender, compose, sender_name
from relaydesk.outbound.credentials import VersionedCredentials
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.pool import PoolKey
from relaydesk.outbound.result import BatchItem, Result
from relaydesk.outbound.smtp import NothingAcceptedError, SmtpSubmission
from relaydesk.store.ports import CURRENT, PENDING

if TYPE_CHECKING:
    from relaydesk.outbound.relay import Relay

MESSAGE_TOO_BIG = 552  # RFC 5321 4.2.2: exceeded storage allocation; submission servers use it for size limits

AddressKey = tuple[str, str]  # (account id, email): each account has its own record of an address


def address_key(notification: Notification) -> AddressKey:
    """The notification's support address as its own account has it, never another account's record."""
    return notification.account_id, notification.support_address


class ConnectorGroup:
    """One smarthost and credential within one batch: at most one open connection, reused message after message."""

    def __init__(self, relay: Relay, secret_id: str,
                 addresses: dict[AddressKey, SupportAddress | None] | None = None) -> None:
        self.relay = relay
        # Read once per group (the relay's plan already read them), not once per message; dropped whenever this
        # group writes an address (hold, release, error, working version), so it never acts on a stale copy.
        self.addresses: dict[AddressKey, SupportAddress | None] = dict(addresses or {})
        self.accounts: dict[str, Account] = {}
        self.stores = relay.stores
        self.secret_id = secret_id
        self.session: SmtpSubmission | None = None
        self.from_pool = False  # the session came from the pool and has not carried a transaction yet
        self.reusable = True  # false once the credentials were refused: never given back to the pool
        self.version: VersionedCredentials | None = None
        self.broken: Result | None = None  # a connection-level failure: the rest of the group shares it
        self.changed: bool | None = None  # for a held address: does the secret have a version not refused yet?
        self.reconnects = 0

    def run(self, items: list[BatchItem]) -> None:
        try:
            for item in items:
                assert item.notification is not None
                if self.relay.out_of_time(item):
                    continue
                notification = item.notification
                self.relay.run_once(item, lambda n=notification: self.deliver(n))
        finally:
            session, self.session = self.session, None
            if session is not None and self.version is not None and self.reusable:
                self.relay.pool.give(self._key(self.version), session)
            elif session is not None:
                pool.run(session.close())

    def deliver(self, notification: Notification) -> Result:
        address = self._address(notification)
        if address is None or address.connector is None:
            return self.relay.ses.send(notification)
        if self.broken is not None:
            return self._park_if_held(notification, self.broken)
        # A held address is not retried hot; its verification mail is the admin's deliberate test, so it is tried.
        if hold.is_held(address) and notification.kind is not NotificationKind.VERIFICATION \
                and not self._credentials_changed(address):
            hold.park(self.stores, notification)
            return Result(Outcome.HELD, route=self._route(address), reply=address.last_error or "held: auth_failed")
        try:
            composed = self._compose(notification, address)
            data = self._sign(address, composed.to_bytes())
        except InvalidAddressError as error:
            return Result(Outcome.FAILED, route=self._route(address), reply=str(error))
        except DkimSigningError as error:  # the same bytes would fail again: never retried
            return Result(Outcome.FAILED, route=self._route(address), reply=f"{error.message}. {error.action}")
        except DkimNotSetUpError as error:
            # Signing is on but the keys cannot be read: sending unsigned would break the customer's DMARC, so the
            # notification waits (retried, then the DLQ) while the address tells the admin what to do.
            self._note_error(address, f"{error.message}. What to do: {error.action}")
            return Result(Outcome.DEFERRED, route=self._route(address), reply=f"{error.message}. {error.action}")
        result = self._submit(notification, address, composed, data)
        if result.smtp_code == MESSAGE_TOO_BIG and composed.has_attachments:
            # Too big with real attachments: once more with links instead, as with SES's size limit.
            composed = self._compose(notification, address, inline=False)
            retried = self._submit(notification, address, composed, self._sign(address, composed.to_bytes()))
            retried.reply = f"{retried.reply} (sent with links instead of attachments after: {result.reply})"
            return retried
        return result

    def _submit(self, notification: Notification, address: SupportAddress, composed: Composed,
                data: bytes) -> Result:
        pooled_ok = True
        while True:
            try:
                self._ensure_open(address, pooled_ok=pooled_ok)
            except AuthenticationFailedError as error:
                return self._hold(address, notification, error)
            except SmtpDeliveryError as error:
                # No connection (down, no STARTTLS, bad certificate): the rest of this smarthost's batch shares it.
                self.broken = Result.of_error(error, self._route(address))
                fix = "" if isinstance(error, TransientDeliveryError) else f" What to do: {error.action}"
                self._note_error(address, f"{error.message}.{fix}")
                return self.broken
            assert self.session is not None
            reused, self.from_pool = self.from_pool, False
            try:
                accepted = pool.run(self.session.send(composed.envelope_from, list(composed.recipients), data))
            except AuthenticationFailedError as error:
                return self._hold(address, notification, error)
            except NothingAcceptedError as error:
                if reused and pooled_ok:
                    # A pooled connection the server had closed: nothing of this transaction was accepted, so it
                    # is sent once more on a new connection. Never after DATA: that could be a duplicate.
                    self._drop_session()
                    pooled_ok = False
                    continue
                return self._refused(notification, address, error)
            except SmtpDeliveryError as error:
                return self._refused(notification, address, error)
            break
        self._remember_working(address)
        follow_up = self.relay.retry_deferred_recipients(notification, accepted.refused)
        reply = accepted.reply + (f"; temporarily refused recipients retried as {follow_up}" if follow_up else "")
        return Result(Outcome.DELIVERED, route=self.session.route, smtp_code=accepted.code,
                      reply=reply, refused=accepted.refused)

    # --- helpers ------------------------------------------------------------------------------------------------

    def _address(self, notification: Notification) -> SupportAddress | None:
        key = address_key(notification)
        if key not in self.addresses:
            self.addresses[key] = self.stores.directory.get_account_address(*key)
        return self.addresses[key]

    def _refused(self, notification: Notification, address: SupportAddress, error: SmtpDeliveryError) -> Result:
        if error.smtp_code is None:  # timed out or dropped, not a reply: its state is doubtful, so it is not pooled
            self.reusable = False
        result = Result.of_error(error, self._route(address))
        if notification.kind is NotificationKind.VERIFICATION:
            self._note_error(address, f"the verification mail was refused: {result.reply}")
        return result

    def _key(self, version: VersionedCredentials) -> PoolKey:
        creds = version.credentials
        return PoolKey(self.secret_id, creds.host, creds.port, creds.username, version.version_id)

    def _drop_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            pool.discard(session)

    def _route(self, address: SupportAddress) -> str:
        assert address.connector is not None
        return f"connector:{address.connector.host}:{address.connector.port}"

    def _compose(self, notification: Notification, address: SupportAddress, *, inline: bool = True) -> Composed:
        account = self.accounts.get(notification.account_id)
        if account is None:
            account = self.accounts[notification.account_id] = self.stores.directory.get_account(
                notification.account_id)
        sender = Sender(address=address.email, display_name=sender_name(account, address, notification),
                        reply_to=address.email, message_id_domain=address.domain)
        return compose(notification, sender,
                       inline_attachments=inline and account.settings.include_attachments_in_email,
                       fetch=self.stores.blobs.get, link=link_builder(self.stores, notification.account_id))

    def _sign(self, address: SupportAddress, data: bytes) -> bytes:
        signer = dkim.signer_for(address, self.stores.secrets)
        return signer.sign(data) if signer is not None else data

    def _credentials_changed(self, address: SupportAddress) -> bool:
        """A held address whose secret has a new current version (or a staged one) is worth one more try;
        asked once per batch, so a held address costs two secret reads per batch and no AUTH."""
        assert address.connector is not None
        if self.changed is None:
            tried = {address.connector.held_version} if address.connector.held_version else set()
            self.changed = bool(self.relay.credentials.alternatives(self.secret_id, tried))
        return self.changed

    def _ensure_open(self, address: SupportAddress, *, pooled_ok: bool = True) -> None:
        if self.session is not None and self.session.connected:
            return
        if self.session is not None:  # lost since the last message: one reconnect per group and batch
            if self.reconnects >= 1:
                raise TransientDeliveryError("the connection was lost again; the rest waits for the next attempt")
            self.reconnects += 1
        version = self.version or self.relay.credentials.get(self.secret_id, CURRENT)
        if hold.is_held(address) and address.connector is not None:
            fresh = self.relay.credentials.alternatives(self.secret_id, {address.connector.held_version or ""})
            version = fresh[0] if fresh else self.relay.credentials.get(self.secret_id, CURRENT, fresh=True)
        elif pooled_ok and self.relay.pool.has(self._key(version)):
            if self._still_current(version):
                warm = self.relay.pool.take(self._key(version))
                if warm is not None:
                    self.session, self.version, self.from_pool = warm, version, True  # type: ignore[assignment]
                    return
            else:  # the secret changed since it was cached: nothing authenticated with the old one is reused
                self.relay.pool.forget(self.secret_id)
                self.relay.credentials.forget(self.secret_id)
                version = self.relay.credentials.get(self.secret_id, CURRENT, fresh=True)
        self._open(version, address)

    def _still_current(self, version: VersionedCredentials) -> bool:
        """One DescribeSecret (no secret value) instead of a new TLS handshake and AUTH: the pooled connection's
        version must still be AWSCURRENT, with no rotation under way (no other version staged AWSPENDING)."""
        stages = self.stores.secrets.describe_stages(self.secret_id)
        return CURRENT in stages.get(version.version_id, []) and \
            not any(PENDING in staged for other, staged in stages.items() if other != version.version_id)

    def _open(self, version: VersionedCredentials, address: SupportAddress) -> None:
        tried: set[str] = set()
        fresh = False  # after a refusal every try (oauth2) asks for a new access token, not the cached one
        while True:
            tried.add(version.version_id)
            session = self.relay.submission(version.credentials, timeouts=self.relay.timeouts,
                                            local_hostname=self.stores.settings.mail_domain)
            oauth = version.credentials.auth_kind is AuthKind.OAUTH2
            try:
                pool.run(session.open(fresh_token=True) if oauth and fresh else session.open())
            except AuthenticationFailedError as error:
                self.relay.pool.forget(self.secret_id)  # refused: no connection of this secret is reused
                if oauth and not fresh and not isinstance(error, OAuthTokenRefusedError):
                    # The smarthost refused an access token the cache still thought good (revoked, or expired
                    # early): the same credentials once more with a new token.
                    fresh = True
                    continue
                fresh = True
                # Rotation-aware: the secret read again past the cache, then a staged AWSPENDING version.
                alternatives = self.relay.credentials.alternatives(self.secret_id, tried)
                if not alternatives:
                    error.version_id = version.version_id  # type: ignore[attr-defined]
                    raise
                version = alternatives[0]
                continue
            self.session, self.version = session, version
            return

    def _hold(self, address: SupportAddress, notification: Notification, error: AuthenticationFailedError) -> Result:
        self.addresses.clear()
        self.reusable = False
        self.relay.pool.forget(self.secret_id)
        if notification.kind is NotificationKind.VERIFICATION:
            hold.hold_address(self.stores, address, error, version_id=getattr(error, "version_id", None))
            return Result.of_error(error, self._route(address))  # a test mail is not parked: `verify` reports it
        hold.hold_address(self.stores, address, error, version_id=getattr(error, "version_id", None))
        hold.park(self.stores, notification)
        self.broken = Result.of_error(error, self._route(address))
        return Result(Outcome.HELD, route=self._route(address), smtp_code=error.smtp_code,
                      enhanced_status=error.enhanced_status, reply=error.server_reply or error.message)

    def _park_if_held(self, notification: Notification, broken: Result) -> Result:
        if broken.outcome is Outcome.AUTH_FAILED:
            if notification.kind is NotificationKind.VERIFICATION:
                return broken
            hold.park(self.stores, notification)
            return Result(Outcome.HELD, route=broken.route, smtp_code=broken.smtp_code,
                          enhanced_status=broken.enhanced_status, reply=broken.reply)
        return broken

    def _remember_working(self, address: SupportAddress) -> None:
        """The credentials work: lift a hold (and release what it parked) and remember the version."""
        assert self.version is not None and address.connector is not None
        if hold.is_held(address):
            self.addresses.clear()
            hold.release_held(self.stores, address.account_id, address.email)
            address = self.stores.directory.get_account_address(address.account_id, address.email) or address
        if address.connector is not None and address.connector.credentials_version != self.version.version_id:
            address.connector.credentials_version = self.version.version_id
            self.stores.directory.put_address(address)
            # What was just written is what the next message sees.
            self.addresses = {(address.account_id, address.email): address}

    def _note_error(self, address: SupportAddress, text: str) -> None:
        self.addresses.clear()
        fresh = self.stores.directory.get_account_address(address.account_id, address.email)
        if fresh is not None:
            fresh.last_error = text
            self.stores.directory.put_address(fresh)
