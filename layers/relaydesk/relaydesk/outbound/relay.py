"""Relay one SQS batch of notifications: route each, send it once, record the outcome on its ticket.

Connector notifications are grouped by smarthost and credential: each group gets up to `connections_per_smarthost`
SMTP connections (`outbound/connector.py`), no more than its provider profile allows nor than the mailbox's shaper
leases (`outbound/turns.py`), reused for its messages, in threads of its own (so different smarthosts are served
concurrently). Its mail transactions are pipelined (`outbound/pipelined.py`, RFC 2920) when the server
advertises PIPELINING: MAIL FROM, every RCPT TO and DATA in one write, then the body; one command at a time when it
does not. Everything else goes through the default outbound (SES). Returns one `RecordResult` per SQS record; the
handler turns deferrals into `batchItemFailures` with a growing visibility delay.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from relaydesk.accounts import subdomain_of_system_address
from relaydesk.addresses.limits import limits_of
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress
from relaydesk.addresses.state import outbound_proven
from relaydesk.attachments.links import account_prefix, owned_by
from relaydesk.errors import (
    AlreadyInProgress,
    ClaimLost,
    ForeignAttachmentError,
    NotFoundError,
    RelaydeskError,
    ReplyCode,
)
from relaydesk.ids import new_id
from relaydesk.markers import message_id_for
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound.connector import CONNECTIONS_PER_SMARTHOST, AddressKey, ConnectorGroup, address_key
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.durable import keep_trying
from relaydesk.outbound.pipelined import PipelinedSubmission
from relaydesk.outbound.policy import Outcome, retry_delay
from relaydesk.outbound.pool import ConnectionPool
from relaydesk.outbound.result import WAITS, BatchItem, RecordResult, Result
from relaydesk.outbound.serial import serialized
from relaydesk.outbound.ses import SesRoute
from relaydesk.outbound.shaper import Shaper
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts
from relaydesk.outbound.suppression import without_suppressed
from relaydesk.outbound.throttles import describe, throttle_rule
from relaydesk.outbound.turns import Turns
from relaydesk.store.ports import Claim, OnceGuard, QueueCarry, Requeued, SessionPool, Stores
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, RecipientOutcome

MAX_PARALLEL_SMARTHOSTS = 8
log = logging.getLogger(__name__)
TIME_MARGIN_MS = 3000  # for recording outcomes and answering SQS after the last transaction

_STATUS = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.DEFERRED: DeliveryStatus.DEFERRED,
           Outcome.FAILED: DeliveryStatus.FAILED, Outcome.AUTH_FAILED: DeliveryStatus.AUTH_FAILED,
           Outcome.HELD: DeliveryStatus.HELD, Outcome.WAITING: DeliveryStatus.WAITING,
           Outcome.THROTTLED: DeliveryStatus.WAITING}
FINAL = frozenset({Outcome.DELIVERED, Outcome.FAILED})  # stored by the once guard; everything else may send again
# A ticket record in one of these was decided by an earlier attempt: never sent again.
DECIDED = {DeliveryStatus.DELIVERED: Outcome.DELIVERED, DeliveryStatus.FAILED: Outcome.FAILED,
           DeliveryStatus.BOUNCED: Outcome.DELIVERED}
DLQ_NOTE = "the notification moves to the dead-letter queue (`relaydesk dlq redrive`)"
MAX_WAIT_SECONDS = 4 * 24 * 3600  # the queue's retention: a notification waits no longer for its mailbox's turns


def parse_record(record: dict) -> Notification | None:
    try:
        return Notification.model_validate(json.loads(record.get("body") or ""))
    except (ValueError, ValidationError):
        return None


class Relay:
    def __init__(self, stores: Stores, *, credentials: CredentialCache, once: OnceGuard,
                 timeouts: Timeouts | None = None, max_attempts: int | None = None,
                 on_result: Callable[[RecordResult], None] | None = None,
                 submission: Callable[..., SmtpSubmission] = PipelinedSubmission,
                 pool: SessionPool | None = None, shaper: Shaper | None = None,
                 connections_per_smarthost: int = CONNECTIONS_PER_SMARTHOST) -> None:
        self.stores = serialized(stores)  # smarthost threads share them
        self.connections_per_smarthost = connections_per_smarthost
        self.credentials = credentials
        self.once = once
        self.timeouts = timeouts or Timeouts(connect=stores.settings.smtp_connect_timeout,
                                             command=stores.settings.smtp_command_timeout,
                                             data=stores.settings.smtp_data_timeout)
        self.max_attempts = max_attempts or stores.settings.max_delivery_attempts
        self.on_result = on_result
        self.submission = submission  # unit tests hand in a fake smarthost; no sockets
        self.ses = SesRoute(self.stores)
        self.pool = pool or ConnectionPool()  # authenticated connections kept for the next invocation
        self.retry_first = stores.settings.retry_first_seconds
        self._remaining_ms: Callable[[], int] | None = None
        # Outcomes of accepted messages that no store took within their invocation: written first thing by the
        # next invocation of this warm container.
        self._unsaved: list[tuple[Notification, Claim, Result]] = []
        # The mailboxes' sending limits, shared with every other invocation (None: unshaped, as unit tests of other
        # concerns run)
        self.turns = None if shaper is None else Turns(shaper, credentials=credentials, tickets=self.stores.tickets,
                                                       queue=self.stores.queue,
                                                       batching_window=stores.settings.relay_batching_window_seconds)

    # --- the batch ----------------------------------------------------------------------------------------------

    def relay_batch(self, records: Iterable[dict], remaining_ms: Callable[[], int] | None = None,
                    ) -> list[RecordResult]:
        """`remaining_ms` is the invocation's time left: no transaction starts that could outlive it."""
        self._remaining_ms = remaining_ms
        self._store_unsaved()
        items = [BatchItem(record, parse_record(record)) for record in records]
        groups: dict[tuple, list[BatchItem]] = {}
        addresses: dict[AddressKey, SupportAddress | None] = {}  # each address read once per batch, handed to its group
        for item in items:
            if item.notification is None:
                # Unreadable: kept in the queue, so after the last attempt it waits in the DLQ for a human.
                item.result = Result(Outcome.DEFERRED, reply="the SQS message is not a Notification")
                continue
            try:
                if not self._note_overdue(item) or self._leave_out_suppressed(item):
                    continue
                plan = self._plan(item.notification, addresses)
            except RelaydeskError as error:
                item.result = Result(Outcome.FAILED, reply=error.message)
                item.durable = self._record(item.notification, item.result)
                continue
            except Exception as error:  # a store failed before anything was tried: this record alone waits
                log.exception("planning %s failed", item.notification.notification_id)
                self._not_attempted(item, f"{type(error).__name__} while reading the address")
                continue
            groups.setdefault(plan, []).append(item)
        ses_items = groups.pop(("ses",), [])
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL_SMARTHOSTS) as pool:
            futures = [pool.submit(self._connector_group, key[1], group, addresses) for key, group in groups.items()]
            self._contained(self._ses_group, ses_items)
            for future in futures:
                try:
                    future.result()
                except Exception:  # each record already has its result, or none: then it was not attempted
                    log.exception("a smarthost group ended with an error")
        self._contained(self._settle, items)
        return [self._finish(item) for item in items]

    @staticmethod
    def _contained(run: Callable[[list[BatchItem]], None], items: list[BatchItem]) -> None:
        try:
            run(items)
        except Exception:
            log.exception("a group of the batch ended with an error")

    @staticmethod
    def _not_attempted(item: BatchItem, why: str) -> None:
        item.result = Result(Outcome.DEFERRED, reply=f"not attempted: {why}; retried later")
        item.attempted = False

    def _note_overdue(self, item: BatchItem) -> bool:
        """Past its last attempt, a notification is only received again when the invocations that had it were
        stopped. Before it is tried once more, its ticket says where it ends if this one is stopped too: SQS's own
        redrive (maxReceiveCount) then moves it without the relay. False (not tried now) if that cannot be written."""
        assert item.notification is not None
        if item.attempt <= self.max_attempts or not item.notification.ticket_id:
            return True
        note = Result(Outcome.DEFERRED, reply=(
            f"attempt {item.attempt}: the earlier attempts were stopped before they finished (the function's "
            f"timeout or a crash); tried once more, and if this one is stopped too, {DLQ_NOTE}"))
        if self._record(item.notification, note):
            return True
        self._not_attempted(item, "the ticket could not be updated first")
        return False

    def _plan(self, notification: Notification, addresses: dict[AddressKey, SupportAddress | None]) -> tuple:
        """("ses",) or ("connector", secret id): the route, and the group that shares one connection."""
        foreign = [ref for ref in notification.attachments if not owned_by(notification.account_id, ref.s3_key)]
        if foreign:
            # Never fetched nor linked: only the notification's own account's attachments go out with it.
            raise ForeignAttachmentError(
                f"{len(foreign)} attachment(s) of this notification are not stored under its account's prefix "
                f"({account_prefix(notification.account_id)}); nothing was sent")
        key = address_key(notification)
        if key not in addresses:
            addresses[key] = self.stores.directory.get_account_address(*key)
        address = addresses[key]
        settings = self.stores.settings
        if address is None or address.kind is AddressKind.SYSTEM or \
                subdomain_of_system_address(notification.support_address, settings.mail_domain):
            return ("ses",)
        connector = address.connector
        if address.kind is not AddressKind.SMTP_CONNECTOR or connector is None:
            return ("ses",)
        if connector.state is ConnectorState.ACTIVE:
            return ("connector", connector.secret_arn)
        if connector.state.held and outbound_proven(address):
            return ("connector", connector.secret_arn)  # held; parked until the fix is in
        if notification.kind is NotificationKind.VERIFICATION and connector.state is not ConnectorState.DISABLED:
            return ("connector", connector.secret_arn)  # the outbound test itself goes through the connector
        # Pending, or refused before it was ever verified: the default outbound, as before it was connected.
        return ("ses",)

    def _finish(self, item: BatchItem) -> RecordResult:
        """Released only when the outcome is stored; a deferral waits its delay; a deferral at the last attempt
        (attempts carried from earlier messages count) or past the longest wait, its reason on the ticket, moves to
        the DLQ; one not attempted (out of time, held elsewhere, a store failing before anything was sent) waits too,
        without using up an attempt's meaning. A wait for the mailbox's turn was queued again as a new message
        (`_settle`): this one is released; if that failed, this one waits by its visibility instead."""
        if item.result is None:
            self._not_attempted(item, "the batch ended first")
        result = item.result
        assert result is not None
        count = item.attempt
        last = result.outcome is Outcome.DEFERRED and item.durable and \
            (item.gave_up or (item.attempted and count >= self.max_attempts))
        retry_in = requeue_in = None
        if last:
            retry_in = 0  # moved to the DLQ now (batch.py), or by SQS's redrive on its next receive
        elif item.retry_after is not None:
            retry_in = math.ceil(item.retry_after) + 1
        elif result.outcome is Outcome.DEFERRED:
            retry_in = retry_delay(count if item.attempted else 1, self.retry_first)
        elif result.outcome in WAITS and self.turns is not None:
            requeue_in = self.turns.delay_of(item)
            retry_in = None if item.settled else requeue_in  # not queued again: this message waits instead
        elif result.outcome in WAITS:  # a throttle reply to an unshaped relay: retried like any deferral
            retry_in = retry_delay(count, self.retry_first)
        elif not item.durable:
            retry_in = retry_delay(1, self.retry_first)  # the outcome's write is tried again when it comes back
        outcome = RecordResult(message_id=item.record.get("messageId", ""),
                               receipt_handle=item.record.get("receiptHandle", ""), receive_count=count,
                               notification=item.notification, result=result, retry_in=retry_in,
                               last_attempt=last, body=item.record.get("body") or "",
                               latency_ms=round((time.perf_counter() - item.started) * 1000, 1),
                               settled=item.settled, requeue_in=requeue_in)
        if self.on_result is not None:
            self.on_result(outcome)
        return outcome

    # --- once, and the ticket -----------------------------------------------------------------------------------

    def run_once(self, item: BatchItem, work: Callable[[], Result]) -> None:
        turn = item.turn  # the mailbox's turn (outbound/turns.py): a throttle reply stops the rest of the group
        if turn is not None and turn.held_back(item):
            return
        self._run_once(item, work if turn is None else turn.timed(work))
        if turn is not None:
            turn.after(item)

    def _run_once(self, item: BatchItem, work: Callable[[], Result]) -> None:
        """Claim, send, store: nothing is sent for a notification whose outcome is stored or whose claim another
        invocation holds; a final outcome is stored (and recorded on the ticket) before the message is released,
        its writes retried within the invocation's time; a deferral or a hold drops the claim."""
        notification = item.notification
        assert notification is not None
        try:
            claim = self.once.claim(notification.notification_id)
        except AlreadyInProgress as busy:
            item.result = Result(Outcome.DEFERRED, reply="another invocation is delivering this notification")
            item.attempted, item.retry_after = False, busy.wait
            return
        except Exception as error:  # nothing was sent
            log.exception("claiming %s failed", notification.notification_id)
            self._not_attempted(item, f"{type(error).__name__} from the idempotency store")
            return
        if claim.stored is not None:
            self._replay(item, Result.from_dict(claim.stored))
            return
        if claim.taken_over and self._decided_on_ticket(item, claim):
            return
        try:
            result = work()
        except Exception as error:  # one record's surprise must not fail its batch-mates; nothing was accepted
            log.exception("relaying %s failed unexpectedly", notification.notification_id)
            result = Result(Outcome.DEFERRED, reply=f"unexpected {type(error).__name__}; retried later")
        if result.outcome not in FINAL:
            keep_trying("releasing the claim", lambda: self.once.release(claim), self._remaining_ms)
            item.result = result
            item.durable = self._record(notification, result, last=item.attempt >= self.max_attempts)
            return
        result.refused = [*result.refused, *item.suppressed]
        item.result = result
        item.durable = self._store(notification, claim, result)

    def _store(self, notification: Notification, claim: Claim, result: Result) -> bool:
        """The outcome in the once guard, then on the ticket: both, or the message is not released. When neither
        store takes it within the invocation, this warm container keeps it for its next invocation."""
        def complete() -> None:
            try:
                self.once.complete(claim, result.to_dict())
            except ClaimLost:
                log.error("the claim on %s was taken over before its outcome was stored",
                          notification.notification_id)
                raise

        stored = keep_trying("storing the outcome", complete, self._remaining_ms)
        recorded = self._record(notification, result)
        if not stored and not recorded:
            self._unsaved.append((notification, claim, result))
        return stored and recorded

    def _store_unsaved(self) -> None:
        unsaved, self._unsaved = self._unsaved, []
        for notification, claim, result in unsaved:
            self._store(notification, claim, result)

    def _replay(self, item: BatchItem, result: Result) -> None:
        """A stored outcome: nothing is sent. An earlier invocation may have stored it and been stopped (or failed)
        before the ticket said so: the ticket gets it now."""
        notification = item.notification
        assert notification is not None
        result.duplicate = True
        item.result = result
        if notification.ticket_id is None:
            return
        decided: list[bool] = []

        def read() -> None:
            record = self.stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
            decided.append(record is not None and record.status in DECIDED)

        if not keep_trying("reading the ticket record", read, self._remaining_ms):
            item.durable = False
        elif not decided[-1]:
            item.durable = self._record(notification, result)

    def _decided_on_ticket(self, item: BatchItem, claim: Claim) -> bool:
        """After a claim ran out (its invocation was stopped): did that invocation record an outcome on the ticket?
        Then it is stored and replayed, not sent again. True when the item is settled (or must wait)."""
        notification = item.notification
        assert notification is not None
        if notification.ticket_id is None:
            return False
        records = []
        if not keep_trying("reading the ticket record", lambda: records.append(self.stores.tickets.get_notification(
                notification.ticket_id, notification.notification_id)), self._remaining_ms):
            # Unknown: the claim is kept (not released), so the next attempt takes it over and looks again.
            self._not_attempted(item, "the ticket record could not be read after an interrupted attempt")
            return True
        record = records[-1]
        if record is None or record.status not in DECIDED:
            return False
        attempt = next((a for a in reversed(record.attempts) if a.status in DECIDED), None)
        result = Result(DECIDED[record.status], route=attempt.route if attempt else "",
                        smtp_code=attempt.smtp_code if attempt else None,
                        enhanced_status=attempt.enhanced_status if attempt else None,
                        reply=attempt.reply if attempt else record.status.value, duplicate=True)
        item.result = result
        item.durable = keep_trying("storing the outcome", lambda: self.once.complete(claim, result.to_dict()),
                                   self._remaining_ms)
        return True

    def _leave_out_suppressed(self, item: BatchItem) -> bool:
        """Recipients SES reported as undeliverable or complaining are not sent to by any route (the refusal says
        why); True when nobody is left, the notification then recorded as failed."""
        notification = item.notification
        suppressions = self.stores.suppressions
        if suppressions is None or notification is None or notification.kind is NotificationKind.VERIFICATION:
            return False
        found = suppressions.suppressed(notification.account_id, [*notification.recipients, *notification.cc])
        item.notification, item.suppressed = without_suppressed(notification, found)
        if item.notification.recipients:
            return False
        item.result = Result(Outcome.FAILED, reply="; ".join(r.reply for r in item.suppressed),
                             refused=item.suppressed)
        item.durable = self._record(notification, item.result)
        return True

    def _record(self, notification: Notification, result: Result, *, last: bool = False) -> bool:
        """The attempt on the ticket, retried within the invocation's time; False if it never landed. A ticket that
        is gone takes nothing (the outcome still reaches the logs and metrics)."""
        if not notification.ticket_id:
            return True
        ticket_id = notification.ticket_id
        tickets = self.stores.tickets
        reply = result.reply
        rule = throttle_rule(result.smtp_code, reply) if result.outcome is Outcome.THROTTLED else None
        if rule is not None:
            reply = describe(rule, reply)
        if result.outcome is Outcome.DEFERRED and last:
            reply += f" — last attempt: {DLQ_NOTE}"
        attempt = DeliveryAttempt(status=_STATUS[result.outcome], route=result.route, smtp_code=result.smtp_code,
                                  enhanced_status=result.enhanced_status, reply=reply, refused=result.refused)
        domain = notification.support_address.rpartition("@")[2]
        new_record = NotificationRecord(notification_id=notification.notification_id,
                                        message_id=message_id_for(notification.notification_id, domain),
                                        recipients=[*notification.recipients, *notification.cc])
        return keep_trying("recording the attempt on the ticket",
                           lambda: tickets.append_attempt(ticket_id, new_record, attempt), self._remaining_ms)

    def _put_record(self, notification: Notification, record: NotificationRecord) -> None:
        assert notification.ticket_id is not None
        try:
            self.stores.tickets.put_notification(notification.ticket_id, record)
        except NotFoundError:
            pass  # the ticket is gone; the outcome still reaches the logs and metrics

    # --- the default outbound -----------------------------------------------------------------------------------

    def retry_deferred_recipients(self, notification: Notification, refused: list[RecipientOutcome]) -> str | None:
        """Recipients refused with a 4xx while others took the mail get a copy of their own, queued with the
        first retry delay (as Postfix retries only the deferred recipients); returns its notification id."""
        deferred = {r.recipient.lower() for r in refused if ReplyCode.is_transient(r.smtp_code)}
        if not deferred:
            return None
        follow_up = notification.model_copy(update={
            "notification_id": new_id("N"),
            "recipients": [r for r in notification.recipients if r.lower() in deferred],
            "cc": [r for r in notification.cc if r.lower() in deferred]})
        if not follow_up.recipients:  # only CCs were deferred: they become the recipients of the copy
            follow_up = follow_up.model_copy(update={"recipients": follow_up.cc, "cc": []})
        # After the smarthost's 250: every write here is retried, and none of them may turn the delivery into a
        # deferral (that would send it again to the recipients who took it).
        if notification.ticket_id:
            ticket_id = notification.ticket_id
            domain = notification.support_address.rpartition("@")[2]
            message_id = message_id_for(follow_up.notification_id, domain)
            record = NotificationRecord(notification_id=follow_up.notification_id, message_id=message_id,
                                        recipients=[*follow_up.recipients, *follow_up.cc])
            keep_trying("linking the copy's Message-ID", lambda: self.stores.tickets.link_message_id(
                message_id, ticket_id), self._remaining_ms)
            keep_trying("recording the copy", lambda: self._put_record(follow_up, record), self._remaining_ms)
        if not keep_trying("queueing the copy for the deferred recipients", lambda: self.stores.queue.send(
                follow_up, delay_seconds=retry_delay(1, self.retry_first)), self._remaining_ms):
            return None
        return follow_up.notification_id

    def out_of_time(self, item: BatchItem) -> bool:
        """True (and the item deferred, untouched) when a slow server could outlive the invocation now."""
        if self._remaining_ms is None:
            return False
        worst = (self.timeouts.command + self.timeouts.data) * 1000  # a stall at MAIL or after the final dot
        if self._remaining_ms() > worst + TIME_MARGIN_MS:
            return False
        self._not_attempted(item, "the invocation was about to time out")
        return True

    def end_of_data_deadline(self) -> float | None:
        """`time.monotonic()` by which the server's answer to the end of data must have come, so that the outcome
        can still be stored before the invocation ends: no end of data is sent later than the data timeout before
        it. None: no invocation clock."""
        if self._remaining_ms is None:
            return None
        return time.monotonic() + (self._remaining_ms() - TIME_MARGIN_MS) / 1000

    def _ses_group(self, items: list[BatchItem]) -> None:
        for item in items:
            assert item.notification is not None
            if self.out_of_time(item):
                continue
            notification = item.notification
            self.run_once(item, lambda n=notification: self.ses.send(n))

    # --- a connector group --------------------------------------------------------------------------------------

    def _connector_group(self, secret_id: str, items: list[BatchItem],
                         addresses: dict[AddressKey, SupportAddress | None]) -> None:
        mine = {address_key(item.notification) for item in items if item.notification is not None}
        known = {key: addresses[key] for key in mine if key in addresses}
        only = next(iter(mine)) if len(mine) == 1 else None
        address = addresses.get(only) if only is not None else None
        if self.turns is None or address is None or address.connector is None or \
                address.connector.state not in (ConnectorState.ACTIVE, ConnectorState.PENDING):
            # unshaped; a held address parks its notifications without sending
            ConnectorGroup(self, secret_id, known, connections=self._unshaped_connections(known)).run(items)
            return
        # Each connection beyond the first holds a connection lease of the mailbox's shaper too, so the invocations
        # sending for one mailbox never open more than its profile allows between them.
        connections = min(self.connections_per_smarthost, limits_of(address).connections)
        pending, patience = items, self.turns.patience(self._remaining_ms)
        while pending:  # turns coming within a moment are waited for here, round after round (`turns.Patience`)
            turn, admitted = self.turns.begin(secret_id, pending, address, self._remaining_ms)
            group = ConnectorGroup(self, secret_id, {only: address}, connections=connections,  # type: ignore[dict-item]
                                   more_connections=turn.more_connections if turn is not None else None)
            try:
                group.run(admitted)
            finally:
                if turn is not None:
                    turn.close()
            pending = patience.soon(items)  # any of the group whose turn comes next

    def _unshaped_connections(self, addresses: dict[AddressKey, SupportAddress | None]) -> int:
        """Connections for a group the shaper does not admit: one when there is a shaper (a held address's single
        try, or addresses sharing one login, hold no lease, so they add no more); without a shaper, as many as the
        relay's limit and every address's provider profile allow."""
        if self.turns is not None:
            return 1
        profiles = [limits_of(address).connections for address in addresses.values()
                    if address is not None and address.connector is not None]
        return min([self.connections_per_smarthost, *profiles])

    def _settle(self, items: list[BatchItem]) -> None:
        """Waiting notifications go back to the queue for their turn as new SQS messages (a wait is not a
        receive: it never counts toward the DLQ), carrying their attempts. One that waited longer than the queue
        keeps a message is deferred for good: its reason on the ticket, it moves to the DLQ (`_finish`)."""
        if self.turns is None:
            return
        wall = time.time()
        waiting = [item for item in items if item.result is not None and item.result.outcome in WAITS
                   and item.notification is not None]
        for item in waiting:  # after every smarthost group's sends: another account's mail does not wait for these
            if item.waited and item.result is not None and item.result.outcome is Outcome.WAITING:
                self._record(item.notification, item.result)  # type: ignore[arg-type]
        entries = []
        for item in waiting:
            carry = item.carry
            since = carry.waiting_since or wall
            if wall - since > MAX_WAIT_SECONDS:
                item.result = Result(Outcome.DEFERRED, route=item.result.route,  # type: ignore[union-attr]
                                     reply=f"waited more than {MAX_WAIT_SECONDS // 86400} days for the mailbox's "
                                           "sending limit")
                item.gave_up = True
                item.durable = self._record(item.notification, item.result, last=True)  # type: ignore[arg-type]
                continue
            entries.append(Requeued(item.notification, self.turns.delay_of(item),  # type: ignore[arg-type]
                                    QueueCarry(carry.attempts + item.receive_count - 1, since, item.booking)))
        try:
            failed = self.stores.queue.requeue(entries) if entries else set()
        except Exception:  # each waits by its own message's visibility instead
            log.exception("queueing %d waiting notification(s) again failed", len(entries))
            failed = {entry.notification.notification_id for entry in entries}
        for item in waiting:
            item.settled = item.settled or (item.result is not None and item.result.outcome in WAITS
                                            and item.notification.notification_id not in failed)  # type: ignore

    def close(self) -> None:
        """Close the pooled connections (a container's relay is replaced, or a test ends)."""
        self.pool.close()
