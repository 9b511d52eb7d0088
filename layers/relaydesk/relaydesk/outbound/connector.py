"""One smarthost and credential within one batch: up to `connections` connections, each taken from the warm pool or
opened lazily (TLS, then AUTH with the secret's current version, rotation-aware), reused message after message and
given back to the pool. When the smarthost cannot be used (credentials refused, no TLS) the address is held and its
notifications parked; a delivery that works ends the hold. Every change of the address goes through
`addresses/state.py`.

The group's first connection (its lead) opens alone: credentials the server refuses cost one failed login, and a
hold or a release is decided once. Only when it has delivered a message do the other connections (`_Lane`) open with
the version it logged in with (and the address as it left it), each in a thread of its own, and take messages from
the same backlog, so a message is taken by exactly one connection; they stop when the lead held the address (and a
hold one of them met stops the lead too), and leave the rest to it when they cannot open or their connection fails."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

from relaydesk.accounts import Account
from relaydesk.addresses import state
from relaydesk.addresses.model import ConnectorState, ErrorTopic, SupportAddress
from relaydesk.addresses.state import Direction, HoldReason
from relaydesk.attachments.linker import link_builder
from relaydesk.credentials import AuthKind, OAuthGrant
from relaydesk.errors import (
    AuthenticationFailedError,
    CertificateVerificationError,
    DkimNotSetUpError,
    DkimSigningError,
    InvalidAddressError,
    NotFoundError,
    NothingAcceptedError,
    OAuthTokenRefusedError,
    ReplyCode,
    SmtpDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
    TransitionRefused,
)
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound import dkim, hold, pool
from relaydesk.outbound.compose import Composed, Sender, compose, sender_name
from relaydesk.outbound.credentials import VersionedCredentials
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.result import BatchItem, Result
from relaydesk.outbound.smtp import SmtpSubmission
from relaydesk.store.ports import CURRENT, PENDING, PoolKey

if TYPE_CHECKING:
    from relaydesk.outbound.relay import Relay

log = logging.getLogger(__name__)

AddressKey = tuple[str, str]  # (account id, email): each account has its own record of an address
# Connections per smarthost and credential a batch may use at most: Microsoft 365 allows 3 per mailbox sending at the
# same time (more are refused with 432 4.3.2), Gmail and Postfix more. The address's provider profile and the
# mailbox's shaper (its connection leases, shared by every invocation) bound it further.
CONNECTIONS_PER_SMARTHOST = 3


def address_key(notification: Notification) -> AddressKey:
    """The notification's support address as its own account has it, never another account's record."""
    return notification.account_id, notification.support_address


class ConnectorGroup:
    """One smarthost and credential within one batch: its first connection (the lead), reused message after
    message, which widens the group to `connections` once it delivered (see the module docstring).
    `more_connections(n)`: how many of `n` more connections the mailbox's shaper leases to the group (None: no
    shaper, all of them)."""

    def __init__(self, relay: Relay, secret_id: str,
                 addresses: dict[AddressKey, SupportAddress | None] | None = None, *,
                 connections: int = CONNECTIONS_PER_SMARTHOST,
                 more_connections: Callable[[int], int] | None = None) -> None:
        self.relay = relay
        self.connections = max(1, connections)
        self.more_connections = more_connections
        self.on_working: Callable[[], None] | None = None  # called after this connection delivered a message
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
        self.held: bool = False  # this group held the address: the rest of its notifications are parked
        self.changed: bool | None = None  # for a held address: does the secret have a version not refused yet?
        self.reconnects = 0

    def run(self, items: list[BatchItem]) -> None:
        backlog = _Backlog(items)
        lanes: list[threading.Thread] = []

        def widen() -> None:
            """The lead delivered (so its login works, and a hold was lifted): the other connections open with its
            version and share the backlog."""
            self.on_working = None
            assert self.version is not None
            wanted = min(self.connections - 1, len(backlog))
            granted = wanted if self.more_connections is None or wanted == 0 else self.more_connections(wanted)
            for _ in range(min(granted, wanted)):
                lane = _Lane(self, self.version)
                lanes.append(threading.Thread(target=lane.run, args=(backlog,), name="relaydesk-smtp-lane",
                                              daemon=True))
                lanes[-1].start()

        self.on_working = widen if self.connections > 1 else None
        try:
            while (item := backlog.take()) is not None:
                self.send_one(item)
                if self.broken is not None or self.held:
                    for lane in lanes:  # the other connections finish or stop; what is left shares this failure
                        lane.join()
        finally:
            for lane in lanes:
                lane.join()
            self.give_back()

    def send_one(self, item: BatchItem) -> None:
        assert item.notification is not None
        if self.relay.out_of_time(item):
            return
        notification = item.notification
        self.relay.run_once(item, lambda n=notification: self.deliver(n))

    def give_back(self) -> None:
        """The connection to the pool for the next invocation, or closed when it must not be reused."""
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
            return self._park_if_held(notification, address, self.broken)
        # A held address is not retried hot: with the credentials it was refused with, it is not tried at all (each
        # try is a failed login on the customer's server); held for TLS, one connection per batch tries again (no
        # credentials leave before TLS works). Its verification mail is the admin's deliberate test: always tried.
        if state.is_held(address) and notification.kind is not NotificationKind.VERIFICATION \
                and not self._worth_trying(address):
            return self._park(notification, address, Result(Outcome.HELD, route=self._route(address),
                                                             reply=address.last_error or "held"))
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
        if result.smtp_code == ReplyCode.MESSAGE_TOO_BIG and composed.has_attachments:
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
                return self._hold(address, notification, error, HoldReason.CREDENTIALS)
            except (TlsRequiredError, CertificateVerificationError) as error:
                return self._hold(address, notification, error, HoldReason.TLS)
            except SmtpDeliveryError as error:
                # No connection (down, refused, timed out): the rest of this smarthost's batch shares it; retried.
                self.broken = Result.of_error(error, self._route(address))
                if state.is_held(address):
                    # Still held: the hold's words stay, and what it holds keeps waiting with it.
                    self.broken = Result(Outcome.HELD, route=self.broken.route, reply=self.broken.reply)
                    self.held = True
                    return self._park_if_held(notification, address, self.broken)
                fix = "" if isinstance(error, TransientDeliveryError) else f" What to do: {error.action}"
                self._note_error(address, f"{error.message}.{fix}")
                return self.broken
            assert self.session is not None
            reused, self.from_pool = self.from_pool, False
            try:
                accepted = pool.run(self.session.send(composed.envelope_from, list(composed.recipients), data,
                                                      deadline=self.relay.end_of_data_deadline()))
            except AuthenticationFailedError as error:
                return self._hold(address, notification, error, HoldReason.CREDENTIALS)
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
        try:  # accepted: nothing from here on may turn the delivery into a deferral (it would be sent again)
            self._remember_working(address)
        except Exception:
            log.exception("recording the working credentials of %s failed; the delivery stands", address.email)
        if self.on_working is not None:
            try:
                self.on_working()
            except Exception:  # the other connections only add speed: this one carries on with the backlog
                log.exception("opening more connections to %s failed; the delivery stands", address.email)
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
        if notification.kind is NotificationKind.VERIFICATION and result.outcome is not Outcome.DEFERRED:
            self._change(address, state.VerificationFailed(
                Direction.OUTBOUND, f"the verification mail was refused: {result.reply}",
                token=notification.verification_token))
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

    def _worth_trying(self, address: SupportAddress) -> bool:
        """Held for TLS: yes (a connection costs the server nothing). Held for the credentials: only when the secret
        has a version the smarthost has not refused yet (asked once per batch: one DescribeSecret, no secret value,
        no AUTH)."""
        assert address.connector is not None
        if address.connector.state is not ConnectorState.AUTH_FAILED:
            return True
        if self.changed is None:
            stages = self.stores.secrets.describe_stages(self.secret_id)
            refused = address.connector.held_version
            self.changed = any(version != refused and (CURRENT in staged or PENDING in staged)
                               for version, staged in stages.items())
        return self.changed

    def _ensure_open(self, address: SupportAddress, *, pooled_ok: bool = True) -> None:
        if self.session is not None and self.session.connected:
            return
        if self.session is not None:  # lost since the last message: one reconnect per group and batch
            if self.reconnects >= 1:
                raise TransientDeliveryError("the connection was lost again; the rest waits for the next attempt")
            self.reconnects += 1
        if self.version is not None:  # it logged in during this batch: the reconnect uses it again
            self._open(self.version, address)
            return
        assert address.connector is not None
        if address.connector.state is ConnectorState.AUTH_FAILED:
            # Never the refused version again unless nothing else exists (the admin's verify, after a fix on the
            # server): a new current version, or a staged one, first.
            fresh = self.relay.credentials.alternatives(self.secret_id, {address.connector.held_version or ""})
            self._open(fresh[0] if fresh else self.relay.credentials.get(self.secret_id, CURRENT, fresh=True),
                       address)
            return
        version, rotating = self._current_version()
        if pooled_ok and not rotating:
            warm = self.relay.pool.take(self._key(version))
            if warm is not None:
                self.session, self.version, self.from_pool = warm, version, True  # type: ignore[assignment]
                return
        self._open(version, address)

    def _current_version(self) -> tuple[VersionedCredentials, bool]:
        """AWSCURRENT as the store says now, checked before any connection is reused or authenticates (one
        DescribeSecret, no secret value): a cached version that is no longer current is read again, and nothing
        that logged in with it is reused. `rotating`: another version is staged AWSPENDING (a rotation under way),
        so a pooled connection is not reused either."""
        stages = self.stores.secrets.describe_stages(self.secret_id)
        version = self.relay.credentials.get(self.secret_id, CURRENT)
        if CURRENT not in stages.get(version.version_id, []):
            self.relay.pool.forget(self.secret_id)
            self.relay.credentials.forget(self.secret_id)
            version = self.relay.credentials.get(self.secret_id, CURRENT, fresh=True)
        rotating = any(PENDING in staged for other, staged in stages.items() if other != version.version_id)
        return version, rotating

    def _open(self, version: VersionedCredentials, address: SupportAddress) -> None:
        tried: set[str] = set()
        fresh = False  # after a refusal every try (oauth2) asks for a new access token, not the cached one
        while True:
            tried.add(version.version_id)
            session = self.relay.submission(version.credentials, version_id=version.version_id,
                                            timeouts=self.relay.timeouts,
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
                    raise _refused_version(error, version.version_id) from error
                version = alternatives[0]
                continue
            self.session, self.version = session, version
            return

    def _hold(self, address: SupportAddress, notification: Notification, error: SmtpDeliveryError,
              reason: HoldReason) -> Result:
        """Hold the address (the rest of this group is parked) and park this notification; a verification mail is
        not parked, it fails at once so that `verify` reports why."""
        assert address.connector is not None
        self.reusable = False
        route = self._route(address)
        if reason is HoldReason.CREDENTIALS:
            assert isinstance(error, AuthenticationFailedError)
            self.relay.pool.forget(self.secret_id)  # refused: no connection of this secret is reused
            version_id = error.version_id or (self.version.version_id if self.version else None)
            why = hold.explanation(error, host=address.connector.host, username=address.email,
                                   oauth=address.connector.auth_kind is AuthKind.OAUTH2,
                                   google=address.connector.oauth_grant is OAuthGrant.SERVICE_ACCOUNT)
        else:
            version_id, why = None, hold.tls_explanation(error, host=address.connector.host)
        self.broken = Result(Outcome.HELD, route=route, smtp_code=error.smtp_code,
                             enhanced_status=error.enhanced_status, reply=error.server_reply or error.message)
        if notification.kind is NotificationKind.VERIFICATION:
            self.held = self._change(address, state.Hold(reason, why, version_id))
            self._change(address, state.VerificationFailed(Direction.OUTBOUND, why,
                                                           token=notification.verification_token))
            return self._test_mail_failed(error, route)
        hold.park(self.stores, notification)
        self.held = self._change(address, state.Hold(reason, why, version_id))
        if not self.held:
            # Disabled or deleted meanwhile: nothing will end a hold, so nothing stays parked; the next attempt
            # takes the route the address has now.
            state.release_held(self.stores, address.account_id, address.email)
            self.broken = Result(Outcome.DEFERRED, route=route, reply=f"{self.broken.reply}; the address changed "
                                                                      "meanwhile, retried")
        return self.broken

    def _park_if_held(self, notification: Notification, address: SupportAddress, broken: Result) -> Result:
        if not self.held:
            return broken
        if notification.kind is NotificationKind.VERIFICATION:
            return Result(Outcome.FAILED, route=broken.route, smtp_code=broken.smtp_code,
                          enhanced_status=broken.enhanced_status, reply=broken.reply)
        return self._park(notification, address, broken)

    def _park(self, notification: Notification, address: SupportAddress, result: Result) -> Result:
        hold.park(self.stores, notification)
        return result

    @staticmethod
    def _test_mail_failed(error: SmtpDeliveryError, route: str) -> Result:
        """A verification mail is never retried: `verify` reports its failure, and the admin runs it again."""
        result = Result.of_error(error, route)
        if result.outcome is Outcome.DEFERRED:
            result.outcome = Outcome.FAILED
        return result

    def _remember_working(self, address: SupportAddress) -> None:
        """The connector works: end a hold (releasing what it parked), clear a last error about sending, and
        remember the version that logged in. Written only when one of these changes."""
        assert self.version is not None and address.connector is not None
        stale_error = address.last_error is not None and address.last_error_about is not ErrorTopic.FORWARDING
        if state.is_held(address) or stale_error or \
                address.connector.credentials_version != self.version.version_id:
            self._change(address, state.Release(self.version.version_id, why="a notification was delivered"))

    def _note_error(self, address: SupportAddress, text: str) -> None:
        self._change(address, state.NoteError(text))

    def _change(self, address: SupportAddress, transition: state.Transition) -> bool:
        """Apply a transition to the stored address; False when the address no longer allows it (disabled or
        deleted meanwhile). The next message sees what was written (or, when refused, reads the address again)."""
        key = (address.account_id, address.email)
        self.addresses.pop(key, None)
        try:
            self.addresses[key] = state.change(self.stores, address.account_id, address.email, transition)
        except (TransitionRefused, NotFoundError):
            return False
        return True


def _refused_version(error: AuthenticationFailedError, version_id: str) -> AuthenticationFailedError:
    """The refusal of the last version tried, naming that version (the hold's `held_version`)."""
    if isinstance(error, OAuthTokenRefusedError):
        return OAuthTokenRefusedError(error.token_error, message=error.message, action=error.action,
                                      version_id=version_id)
    return type(error)(error.message, version_id=version_id, smtp_code=error.smtp_code,
                       enhanced_status=error.enhanced_status, server_reply=error.server_reply, action=error.action)


class _Backlog:
    """A group's notifications, each taken by exactly one of its connections."""

    def __init__(self, items: list[BatchItem]) -> None:
        self._items = deque(items)

    def __len__(self) -> int:
        return len(self._items)

    def take(self) -> BatchItem | None:
        try:
            return self._items.popleft()  # atomic: connections in other threads take from the same deque
        except IndexError:
            return None


class _Lane(ConnectorGroup):
    """One more connection of a group, opened after its lead delivered, with the version the lead logged in with
    (a warm one from the pool first). It never decides for the address what the lead decides: when it cannot open
    it leaves the backlog to the others, and it stops taking messages once the lead held the address or its own
    connection failed."""

    def __init__(self, lead: ConnectorGroup, version: VersionedCredentials) -> None:
        super().__init__(lead.relay, lead.secret_id, lead.addresses, connections=1)
        self.lead = lead
        self.version = version
        self.accounts = dict(lead.accounts)

    def run(self, backlog: _Backlog) -> None:  # type: ignore[override]
        try:
            if not self._open_lane():
                return
            while not self.lead.held and self.broken is None and not self.held \
                    and self.session is not None and (item := backlog.take()) is not None:
                self.send_one(item)
            if self.held:  # the server refused this login mid-batch: the lead parks the rest with the hold
                self.lead.broken, self.lead.held = self.broken, True
        except Exception:  # a surprise here must not lose the lead's batch; what this lane took is deferred
            log.exception("a connection of the smarthost group %s failed unexpectedly", self.secret_id)
        finally:
            self.give_back()

    def _open_lane(self) -> bool:
        assert self.version is not None
        warm = self.relay.pool.take(self._key(self.version))
        if warm is not None:
            self.session, self.from_pool = warm, True  # type: ignore[assignment]
            return True
        session = self.relay.submission(self.version.credentials, version_id=self.version.version_id,
                                        timeouts=self.relay.timeouts, local_hostname=self.stores.settings.mail_domain)
        try:
            pool.run(session.open())
        except SmtpDeliveryError as error:
            # Refused, busy (Microsoft 365 refuses a fourth concurrent connection) or down: the lead's connection
            # carries on with the backlog; nothing about the address changes for a connection that only adds speed.
            log.info("another connection to %s could not open (%s); the group's others carry its mail",
                     session.route, type(error).__name__)
            return False
        self.session = session
        return True
