"""One smarthost and credential within one batch: up to `connections` connections (`session.py`), each taken from
the warm pool or opened lazily (TLS, then AUTH with the secret's current version, rotation-aware), reused message
after message and given back to the pool. When the smarthost cannot be used (credentials refused, no TLS) the
address is held and its notifications parked; a delivery that works ends the hold. Every change of the address
goes through `addresses/state.py`; every outcome through `outcomes.py`.

The group's first connection (its lead) opens alone: credentials the server refuses cost one failed login, and a
hold or a release is decided once. Only when it has delivered a message (or at once, when it came warm from the pool
for an address that is not held: its login is proven) do the other connections open with the version it logged in
with (and the address as it left it), each in a thread of its own, and take messages from the same backlog, so a
message is taken by exactly one connection; they stop when the lead held the address (and a hold one of them met
stops the lead too), and leave the rest to it when they cannot open or their connection fails.

Each connection streams (`prefetch.py`, `PipelinedSubmission.stream`: BDAT when the server offers CHUNKING, else
DATA): its worker thread claims and prepares the next message while the previous one is on the wire, and records
outcomes off the wire."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from relaydesk.addresses import state
from relaydesk.addresses.model import ConnectorState, ErrorTopic, SupportAddress
from relaydesk.addresses.state import Direction, HoldReason
from relaydesk.credentials import AuthKind, OAuthGrant
from relaydesk.errors import (
    AuthenticationFailedError,
    CertificateVerificationError,
    DkimNotSetUpError,
    DkimSigningError,
    InvalidAddressError,
    NotFoundError,
    NothingAcceptedError,
    ReplyCode,
    SmtpDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
    TransitionRefused,
)
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound import hold, pool
from relaydesk.outbound.deadline import Deadline
from relaydesk.outbound.delivery import Composer, Delivery
from relaydesk.outbound.outcomes import Outcomes
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.prefetch import Prefetch
from relaydesk.outbound.result import BatchItem, Result
from relaydesk.outbound.ses import SesRoute
from relaydesk.outbound.session import SessionKit, SmarthostSession
from relaydesk.outbound.smtp import Accepted
from relaydesk.store.ports import CURRENT, PENDING, Stores

log = logging.getLogger(__name__)

AddressKey = tuple[str, str]  # (account id, email): each account has its own record of an address
# Connections per smarthost and credential a batch may use at most: Microsoft 365 allows 3 per mailbox sending at the
# same time (more are refused with 432 4.3.2), Gmail and Postfix more. The address's provider profile and the
# mailbox's shaper (its connection leases, shared by every invocation) bound it further.
CONNECTIONS_PER_SMARTHOST = 3


def address_key(notification: Notification) -> AddressKey:
    """The notification's support address as its own account has it, never another account's record."""
    return notification.account_id, notification.support_address


@dataclass(frozen=True)
class GroupKit:
    """What the batch relay hands each smarthost group: the stores, what connections need to open, the books
    (claims and outcomes), the invocation's clock, and the default outbound for an address without a connector."""

    stores: Stores
    sessions: SessionKit
    outcomes: Outcomes
    deadline: Deadline
    ses: SesRoute


class ConnectorGroup:
    """One smarthost and credential within one batch: its lead connection, which widens the group to
    `connections` once it delivered (see the module docstring). `more_connections(n)`: how many of `n` more
    connections the mailbox's shaper leases to the group (None: no shaper, all of them)."""

    def __init__(self, kit: GroupKit, secret_id: str,
                 addresses: dict[AddressKey, SupportAddress | None] | None = None, *,
                 connections: int = CONNECTIONS_PER_SMARTHOST,
                 more_connections: Callable[[int], int] | None = None) -> None:
        self.kit = kit
        self.secret_id = secret_id
        self.connections = max(1, connections)
        self.more_connections = more_connections
        self.addresses = dict(addresses or {})

    def run(self, items: list[BatchItem]) -> None:
        backlog = _Backlog(items)
        lead = _Connection(self.kit, SmarthostSession(self.kit.sessions, self.secret_id), self.addresses)
        lanes: list[threading.Thread] = []

        def widen(early: bool) -> None:
            """The lead delivered (so its login works, and a hold was lifted): the other connections open with its
            version and share the backlog. `early` (a warm lead, before its first delivery): only when the backlog
            gives every connection more than one message; a lease for a connection that carries one message
            costs the mailbox's other invocations more than it saves."""
            if early and len(backlog) < self.connections:
                return
            lead.on_working = None
            assert lead.session.version is not None
            wanted = min(self.connections - 1, len(backlog))
            granted = wanted if self.more_connections is None or wanted == 0 else self.more_connections(wanted)
            for _ in range(min(granted, wanted)):
                lane = _Connection(self.kit, SmarthostSession(self.kit.sessions, self.secret_id,
                                                              lead.session.version), lead.addresses, lead=lead)
                lanes.append(threading.Thread(target=lane.run_lane, args=(backlog,), name="relaydesk-smtp-lane",
                                              daemon=True))
                lanes[-1].start()

        def after_each() -> None:
            if lead.broken is not None or lead.held:
                for lane in lanes:  # the other connections finish or stop; what is left shares this failure
                    lane.join()

        lead.on_working = widen if self.connections > 1 else None
        self.kit.outcomes.preclaim(items)
        try:
            lead.work(backlog, keep_taking=lambda: True, after_each=after_each)
        finally:
            for lane in lanes:
                lane.join()
            lead.session.give_back()
            self.kit.outcomes.release_preclaimed(items)


class _Connection:
    """One connection of a group and what it decided: `broken` (a connection-level failure the rest of its
    messages share), `held` (it held the address: the rest is parked). A further connection (`lead` given) never
    decides for the address what the lead decides: when it cannot open it leaves the backlog to the others, and it
    stops taking messages once the lead held the address or its own connection failed."""

    def __init__(self, kit: GroupKit, session: SmarthostSession,
                 addresses: dict[AddressKey, SupportAddress | None], *, lead: _Connection | None = None) -> None:
        self.kit = kit
        self.stores = kit.stores
        self.session = session
        self.secret_id = session.secret_id
        self.lead = lead
        # Read once per group (the relay's plan already read them), not once per message; dropped whenever this
        # connection writes an address (hold, release, error, working version), so it never acts on a stale copy.
        self.addresses: dict[AddressKey, SupportAddress | None] = dict(addresses)
        self.composer = Composer(kit.stores, dict(lead.composer.accounts) if lead is not None else {})
        self.on_working: Callable[[bool], None] | None = None  # called after this connection delivered a message
        self.broken: Result | None = None
        self.held = False
        self.changed: bool | None = None  # for a held address: does the secret have a version not refused yet?
        # Claimed and prepared, nothing of them accepted by a server: sent again (after a reconnect) before any
        # new message is taken. Appended by the connection's thread and its worker, taken by the connection's.
        self.redo: deque[Delivery] = deque()
        self._worker: ThreadPoolExecutor | None = None  # claims and prepares ahead, records outcomes
        self._concluding: list[Future[None]] = []  # outcomes being recorded on the worker
        self._first_on_pooled: Delivery | None = None
        self._stale_pooled = False

    def run_lane(self, backlog: _Backlog) -> None:
        lead = self.lead
        assert lead is not None
        try:
            if not self._open_lane():
                return
            self.work(backlog, keep_taking=lambda: not lead.held and self.broken is None and not self.held)
            if self.held:  # the server refused this login mid-batch: the lead parks the rest with the hold
                lead.broken, lead.held = self.broken, True
        except Exception:  # a surprise here must not lose the lead's batch; what this lane took is deferred
            log.exception("a connection of the smarthost group %s failed unexpectedly", self.secret_id)
        finally:
            self.session.give_back()

    def _open_lane(self) -> bool:
        session = self.session
        assert session.version is not None
        if session.take_warm(session.version):
            return True
        try:
            session.open_as_is()
        except SmtpDeliveryError as error:
            # Refused, busy (Microsoft 365 refuses a fourth concurrent connection) or down: the lead's connection
            # carries on with the backlog; nothing about the address changes for a connection that only adds speed.
            log.info("another connection to %s could not open (%s); the group's others carry its mail",
                     session.secret_id, type(error).__name__)
            return False
        return True

    # --- the connection's messages ------------------------------------------------------------------------------

    def work(self, backlog: _Backlog, *, keep_taking: Callable[[], bool],
             after_each: Callable[[], None] = lambda: None) -> None:
        """Claim, prepare and send messages from `backlog` while `keep_taking()` allows, streamed when the client
        can (`PipelinedSubmission.stream`: the next envelope rides with the previous final dot); every message this
        connection claimed has its outcome concluded before this returns."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaydesk-prepare") as worker:
            self._worker = worker
            while self.redo or keep_taking():
                delivery = self.redo.popleft() if self.redo else self._prepare_next(backlog, keep_taking)
                if delivery is None:
                    break
                self._send(delivery, backlog, keep_taking)
                after_each()

    def _prepare_next(self, backlog: _Backlog, keep_taking: Callable[[], bool]) -> Delivery | None:
        """The next notification that needs a send, claimed and prepared; the ones taken on the way that end
        without a send (replayed, parked, refused before the wire, out of time) are concluded here."""
        while keep_taking() and (item := backlog.take()) is not None:
            delivery = self._prepare(item)
            if delivery is not None:
                return delivery
        return None

    def _prepare(self, item: BatchItem) -> Delivery | None:
        if self.kit.deadline.out_of_time(item):
            return None
        turn = item.turn  # the mailbox's turn (outbound/turns.py): a throttle reply stops the rest of the group
        if turn is not None and turn.held_back(item):
            return None
        claim = self.kit.outcomes.claim(item)
        if claim is None:
            return None
        try:
            prepared = self._compose_for(item)
        except Exception as error:  # one record's surprise must not fail its batch-mates; nothing was sent
            log.exception("preparing %s failed unexpectedly", item.notification.notification_id)  # type: ignore
            prepared = Result(Outcome.DEFERRED, reply=f"unexpected {type(error).__name__}; retried later")
        if isinstance(prepared, Result):
            self._conclude(item, claim, prepared)
            return None
        prepared.claim = claim
        return prepared

    def _compose_for(self, item: BatchItem) -> Delivery | Result:
        """The message for the wire, or the outcome of a notification that does not go out on this connection."""
        notification = item.notification
        assert notification is not None
        address = self._address(notification)
        if address is None or address.connector is None:
            return self.kit.ses.send(notification)
        if self.broken is not None:
            return self._park_if_held(notification, address, self.broken)
        # A held address is not retried hot: with the credentials it was refused with, it is not tried at all (each
        # try is a failed login on the customer's server); held for TLS, one connection per batch tries again (no
        # credentials leave before TLS works). Its verification mail is the admin's deliberate test: always tried.
        if state.is_held(address) and notification.kind is not NotificationKind.VERIFICATION \
                and not self._worth_trying(address):
            return self._park(notification, address, Result(Outcome.HELD, route=_route(address),
                                                             reply=address.last_error or "held"))
        try:
            composed = self.composer.compose(notification, address)
            data = self.composer.sign(address, composed.to_bytes())
        except InvalidAddressError as error:
            return Result(Outcome.FAILED, route=_route(address), reply=str(error))
        except DkimSigningError as error:  # the same bytes would fail again: never retried
            return Result(Outcome.FAILED, route=_route(address), reply=f"{error.message}. {error.action}")
        except DkimNotSetUpError as error:
            # Signing is on but the keys cannot be read: sending unsigned would break the customer's DMARC, so the
            # notification waits (retried, then the DLQ) while the address tells the admin what to do.
            self._note_error(address, f"{error.message}. What to do: {error.action}")
            return Result(Outcome.DEFERRED, route=_route(address), reply=f"{error.message}. {error.action}")
        return Delivery(item, address, composed, data)

    def _conclude(self, item: BatchItem, claim, result: Result) -> None:
        if item.turn is not None:
            result = item.turn.timed(lambda: result)()  # the server's answer came just before: the provider
            # counts the message from then
        self.kit.outcomes.conclude(item, claim, result)

    def _send(self, delivery: Delivery, backlog: _Backlog, keep_taking: Callable[[], bool]) -> None:
        """Send `delivery` and, on a client that streams, every message after it that is ready in time."""
        notification, address = delivery.notification, delivery.address
        opened = self._open(notification, address, pooled_ok=not delivery.fresh_connection)
        if opened is None and self.session.from_pool and not state.is_held(address):
            # A warm connection logged in with the current version already: nothing is left for the first delivery
            # to prove, so the others open now instead of one round trip later.
            self._working(early=True)
        client = self.session.client
        stream = getattr(client, "stream", None)
        if opened is not None or stream is None:  # no connection, or a client that sends one at a time
            result = opened if opened is not None else self._send_one(delivery)
            self._conclude(delivery.item, delivery.claim, result)
            return
        assert self._worker is not None
        self._first_on_pooled = delivery if self.session.first_use() else None
        source = Prefetch(delivery, lambda: self._prepare_next(backlog, keep_taking), self._worker,
                          self.kit.deadline.end_of_data, still_wanted=self._still_wanted,
                          unclaim=lambda dropped: self.kit.outcomes.unclaim(dropped.item, dropped.claim))
        try:
            pool.run(stream(source, self._report))
        finally:
            leftover = source.leftover()  # claimed ahead, never on the wire: sent again below, after a reconnect
            concluding, self._concluding = self._concluding, []
            for future in concluding:  # every outcome reported so far is recorded (a stop inside one goes on up)
                future.result()
            if leftover is not None:
                self.redo.append(leftover)
            if self._stale_pooled:
                self._stale_pooled = False
                self.session.drop()

    @staticmethod
    def _still_wanted(delivery: Delivery) -> bool:
        """A message claimed ahead is not sent once its mailbox was throttled meanwhile: it waits for the pause
        (`held_back` says so on the item) and its claim is dropped, as if it had never been taken."""
        turn = delivery.item.turn
        return turn is None or not turn.held_back(delivery.item)

    def _report(self, message, sent) -> None:
        """A streamed message's result, on the event loop: concluded on the worker (store writes never hold up
        the wire), or kept for another try when nothing of it was accepted."""
        delivery: Delivery = message.tag
        first_on_pooled, self._first_on_pooled = self._first_on_pooled is delivery, None
        if isinstance(sent, NothingAcceptedError) and not self.session.connected and \
                (first_on_pooled or sent.smtp_code is None):
            # The connection dropped before the server saw any of its body (its envelope rode with the previous
            # message's final dot, or with BDAT nothing of the group was written): sent again after a reconnect, as
            # the next message is after a drop. A pooled connection the server had closed: on a new one. Never once
            # the body may have reached the server (after DATA's 354, or a BDAT group written): that could be a
            # duplicate. A server that said why it closed (421) is not tried again at once: the outcome is a
            # deferral.
            if first_on_pooled:
                self._stale_pooled = delivery.fresh_connection = True
            self.redo.append(delivery)
            return
        assert self._worker is not None
        self._concluding.append(self._worker.submit(self._conclude_sent, delivery, sent))

    def _conclude_sent(self, delivery: Delivery, sent: Accepted | SmtpDeliveryError) -> None:
        # The address as this connection knows it now: a message prepared ahead must not act on the copy from
        # before the previous message's outcome changed it (a lifted hold, the version that logged in).
        notification = delivery.notification
        address = self._address(notification) or delivery.address
        try:
            if isinstance(sent, Accepted):
                result = self._delivered(notification, address, sent)
            elif isinstance(sent, AuthenticationFailedError):
                result = self._hold(address, notification, sent, HoldReason.CREDENTIALS)
            elif self._too_big(delivery, sent):
                self.redo.append(self._with_links(delivery, sent))
                return
            else:
                result = self._refused(notification, address, sent)
        except Exception as error:  # the outcome still gets written; never a deferral after an accepted message
            log.exception("concluding %s failed unexpectedly", notification.notification_id)
            result = Result(Outcome.DELIVERED, route=_route(address), reply=sent.reply) \
                if isinstance(sent, Accepted) else \
                Result(Outcome.DEFERRED, reply=f"unexpected {type(error).__name__}; retried later")
        if delivery.first_refusal:
            result.reply = f"{result.reply} (sent with links instead of attachments after: {delivery.first_refusal})"
        self._conclude(delivery.item, delivery.claim, result)

    @staticmethod
    def _too_big(delivery: Delivery, sent: SmtpDeliveryError) -> bool:
        return sent.smtp_code == ReplyCode.MESSAGE_TOO_BIG and delivery.inline and delivery.composed.has_attachments

    def _with_links(self, delivery: Delivery, refusal: SmtpDeliveryError) -> Delivery:
        """Too big with real attachments: once more with links instead, as with SES's size limit."""
        composed = self.composer.compose(delivery.notification, delivery.address, inline=False)
        return Delivery(delivery.item, delivery.address, composed,
                        self.composer.sign(delivery.address, composed.to_bytes()), claim=delivery.claim,
                        inline=False, first_refusal=Result.of_error(refusal, "").reply)

    def _send_one(self, delivery: Delivery) -> Result:
        """One transaction on a client that does not stream (and the too-big retry with links)."""
        notification, address, composed = delivery.notification, delivery.address, delivery.composed
        result = self._submit(notification, address, composed.envelope_from, list(composed.recipients),
                              delivery.data)
        if result.smtp_code == ReplyCode.MESSAGE_TOO_BIG and composed.has_attachments:
            composed = self.composer.compose(notification, address, inline=False)
            retried = self._submit(notification, address, composed.envelope_from, list(composed.recipients),
                                   self.composer.sign(address, composed.to_bytes()))
            retried.reply = f"{retried.reply} (sent with links instead of attachments after: {result.reply})"
            return retried
        return result

    def _submit(self, notification: Notification, address: SupportAddress, envelope_from: str,
                recipients: list[str], data: bytes) -> Result:
        pooled_ok = True
        session = self.session
        while True:
            opened = self._open(notification, address, pooled_ok=pooled_ok)
            if opened is not None:
                return opened
            assert session.client is not None
            reused = session.first_use()
            try:
                accepted = pool.run(session.client.send(envelope_from, recipients, data,
                                                        deadline=self.kit.deadline.end_of_data()))
            except AuthenticationFailedError as error:
                return self._hold(address, notification, error, HoldReason.CREDENTIALS)
            except NothingAcceptedError as error:
                if reused and pooled_ok:
                    # A pooled connection the server had closed: nothing of this transaction was accepted, so it
                    # is sent once more on a new connection. Never after DATA: that could be a duplicate.
                    session.drop()
                    pooled_ok = False
                    continue
                return self._refused(notification, address, error)
            except SmtpDeliveryError as error:
                return self._refused(notification, address, error)
            break
        return self._delivered(notification, address, accepted)

    def _open(self, notification: Notification, address: SupportAddress, *, pooled_ok: bool) -> Result | None:
        """An open connection (None), or the result the notification gets when there is none."""
        assert address.connector is not None
        try:
            self.session.ensure_open(address.connector, pooled_ok=pooled_ok)
        except AuthenticationFailedError as error:
            return self._hold(address, notification, error, HoldReason.CREDENTIALS)
        except (TlsRequiredError, CertificateVerificationError) as error:
            return self._hold(address, notification, error, HoldReason.TLS)
        except SmtpDeliveryError as error:
            # No connection (down, refused, timed out): the rest of this smarthost's batch shares it; retried.
            self.broken = Result.of_error(error, _route(address))
            if state.is_held(address):
                # Still held: the hold's words stay, and what it holds keeps waiting with it.
                self.broken = Result(Outcome.HELD, route=self.broken.route, reply=self.broken.reply)
                self.held = True
                return self._park_if_held(notification, address, self.broken)
            fix = "" if isinstance(error, TransientDeliveryError) else f" What to do: {error.action}"
            self._note_error(address, f"{error.message}.{fix}")
            return self.broken
        return None

    def _delivered(self, notification: Notification, address: SupportAddress, accepted) -> Result:
        try:  # accepted: nothing from here on may turn the delivery into a deferral (it would be sent again)
            if not self._held_in_this_batch():  # a message that rode along before the hold does not lift it
                self._remember_working(address)
        except Exception:
            log.exception("recording the working credentials of %s failed; the delivery stands", address.email)
        self._working()
        follow_up = self.kit.outcomes.retry_deferred_recipients(notification, accepted.refused)
        reply = accepted.reply + (f"; temporarily refused recipients retried as {follow_up}" if follow_up else "")
        return Result(Outcome.DELIVERED, route=_route_of(self.session, address), smtp_code=accepted.code,
                      reply=reply, refused=accepted.refused)

    # --- helpers ------------------------------------------------------------------------------------------------

    def _address(self, notification: Notification) -> SupportAddress | None:
        key = address_key(notification)
        if key not in self.addresses:
            self.addresses[key] = self.stores.directory.get_account_address(*key)
        return self.addresses[key]

    def _refused(self, notification: Notification, address: SupportAddress, error: SmtpDeliveryError) -> Result:
        if error.smtp_code is None:  # timed out or dropped, not a reply: its state is doubtful, so it is not pooled
            self.session.reusable = False
        result = Result.of_error(error, _route(address))
        if notification.kind is NotificationKind.VERIFICATION and result.outcome is not Outcome.DEFERRED:
            self._change(address, state.VerificationFailed(
                Direction.OUTBOUND, f"the verification mail was refused: {result.reply}",
                token=notification.verification_token))
        return result

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

    def _hold(self, address: SupportAddress, notification: Notification, error: SmtpDeliveryError,
              reason: HoldReason) -> Result:
        """Hold the address (the rest of this group is parked) and park this notification; a verification mail is
        not parked, it fails at once so that `verify` reports why."""
        assert address.connector is not None
        self.session.reusable = False
        route = _route(address)
        if reason is HoldReason.CREDENTIALS:
            assert isinstance(error, AuthenticationFailedError)
            self.session.forget_pooled()  # refused: no connection of this secret is reused
            version = self.session.version
            version_id = error.version_id or (version.version_id if version else None)
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
            return _test_mail_failed(error, route)
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

    def _working(self, *, early: bool = False) -> None:
        """This connection works: the group may widen (once)."""
        if self.on_working is not None:
            try:
                self.on_working(early)
            except Exception:  # the other connections only add speed: this one carries on with the backlog
                log.exception("opening more connections for %s failed; this one carries on", self.secret_id)

    def _held_in_this_batch(self) -> bool:
        return self.held or (self.lead is not None and self.lead.held)

    def _remember_working(self, address: SupportAddress) -> None:
        """The connector works: end a hold (releasing what it parked), clear a last error about sending, and
        remember the version that logged in. Written only when one of these changes."""
        version = self.session.version
        assert version is not None and address.connector is not None
        stale_error = address.last_error is not None and address.last_error_about is not ErrorTopic.FORWARDING
        if state.is_held(address) or stale_error or address.connector.credentials_version != version.version_id:
            self._change(address, state.Release(version.version_id, why="a notification was delivered"))

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


def _route(address: SupportAddress) -> str:
    assert address.connector is not None
    return f"connector:{address.connector.host}:{address.connector.port}"


def _route_of(session: SmarthostSession, address: SupportAddress) -> str:
    return session.route if session.client is not None else _route(address)


def _test_mail_failed(error: SmtpDeliveryError, route: str) -> Result:
    """A verification mail is never retried: `verify` reports its failure, and the admin runs it again."""
    result = Result.of_error(error, route)
    if result.outcome is Outcome.DEFERRED:
        result.outcome = Outcome.FAILED
    return result


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
