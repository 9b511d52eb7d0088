"""Recording what happened to each notification: the exactly-once guard's claim and final outcome, the attempt on
the ticket, the copy for temporarily refused recipients, the SQS answer (`finish`) and the requeue of waiting ones
(`settle`). The relay and its smarthost connections call it; it knows nothing about SMTP.

A notification's path through it: `claim` (nothing is sent without one; a stored outcome is replayed instead),
then exactly one of `conclude` (after a send, or a decision not to send) or `unclaim` (claimed, nothing written to
any server: the claim is dropped, and the item is left as it was for whoever handles it next).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from relaydesk.durable import keep_trying
from relaydesk.errors import AlreadyInProgress, ClaimLost, NotFoundError, ReplyCode
from relaydesk.ids import new_id
from relaydesk.markers import message_id_for
from relaydesk.notification import Notification
from relaydesk.outbound.policy import Outcome, retry_delay
from relaydesk.outbound.result import WAITS, BatchItem, RecordResult, Result, not_attempted
from relaydesk.outbound.throttles import describe, throttle_rule
from relaydesk.store.ports import Claim, OnceGuard, OutcomeWrites, QueueCarry, Requeued, Stores
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, RecipientOutcome

log = logging.getLogger(__name__)

STATUS = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.DEFERRED: DeliveryStatus.DEFERRED,
          Outcome.FAILED: DeliveryStatus.FAILED, Outcome.AUTH_FAILED: DeliveryStatus.AUTH_FAILED,
          Outcome.HELD: DeliveryStatus.HELD, Outcome.WAITING: DeliveryStatus.WAITING,
          Outcome.THROTTLED: DeliveryStatus.WAITING}
FINAL = frozenset({Outcome.DELIVERED, Outcome.FAILED})  # stored by the once guard; everything else may send again
# A ticket record in one of these was decided by an earlier attempt: never sent again.
DECIDED = {DeliveryStatus.DELIVERED: Outcome.DELIVERED, DeliveryStatus.FAILED: Outcome.FAILED,
           DeliveryStatus.BOUNCED: Outcome.DELIVERED}
DLQ_NOTE = "the notification moves to the dead-letter queue (`relaydesk dlq redrive`)"
MAX_WAIT_SECONDS = 4 * 24 * 3600  # the queue's retention: a notification waits no longer for its mailbox's turns
JOINT_WRITE_TRIES = 2  # then the two writes one after the other, each retried within the invocation's time


class Outcomes:
    """The relay's books, kept across the invocations of one warm container (`unsaved`). `remaining_ms` is the
    current invocation's time left (`start`): every write is retried within it."""

    def __init__(self, stores: Stores, once: OnceGuard, *, max_attempts: int, retry_first: int,
                 turns=None, on_result: Callable[[RecordResult], None] | None = None,
                 writes: OutcomeWrites | None = None) -> None:
        self.stores = stores
        self.once = once
        self.writes = writes  # the outcome and its ticket record in one write (None: one after the other)
        self.max_attempts = max_attempts
        self.retry_first = retry_first
        self.turns = turns  # outbound/turns.py's Turns, or None (unshaped)
        self.on_result = on_result
        self.remaining_ms: Callable[[], int] | None = None
        self._preclaimed: dict[str, Claim] = {}  # claimed with their batch-mates, not taken by a send yet
        # Outcomes of accepted messages that no store took within their invocation: written first thing by the
        # next invocation of this warm container.
        self._unsaved: list[tuple[Notification, Claim, Result]] = []

    def start(self, remaining_ms: Callable[[], int] | None) -> None:
        """A new invocation: its clock, and what the one before could not store."""
        self.remaining_ms = remaining_ms
        unsaved, self._unsaved = self._unsaved, []
        for notification, claim, result in unsaved:
            self._store(notification, claim, result)

    # --- once ---------------------------------------------------------------------------------------------------

    def run_once(self, item: BatchItem, work: Callable[[], Result]) -> None:
        """Claim, `work` (the send), conclude: for a route that sends one message at a time (SES)."""
        turn = item.turn  # the mailbox's turn (outbound/turns.py): a throttle reply stops the rest of the group
        if turn is not None and turn.held_back(item):
            return
        claim = self.claim(item)
        if claim is None:
            return
        run = work if turn is None else turn.timed(work)
        try:
            result = run()
        except Exception as error:  # one record's surprise must not fail its batch-mates; nothing was accepted
            log.exception("relaying %s failed unexpectedly", item.notification.notification_id)  # type: ignore
            result = Result(Outcome.DEFERRED, reply=f"unexpected {type(error).__name__}; retried later")
        self.conclude(item, claim, result)

    def preclaim(self, items: list[BatchItem]) -> None:
        """A smarthost group's notifications claimed together, in one write, when none of them has a record yet
        (the usual case): `claim` then hands each its claim without asking the store. When any has a record, or
        the write fails, nothing is claimed here and `claim` asks for each, as it always did."""
        ids = [item.notification.notification_id for item in items if item.notification is not None]
        if len(ids) < 2 or len(set(ids)) < len(ids):
            return
        try:
            claims = self.once.claim_fresh(ids)
        except Exception as error:  # noqa: BLE001  # claimed one by one instead
            log.warning("claiming %d notifications together failed (%s)", len(ids), type(error).__name__)
            return
        self._preclaimed.update(claims or {})

    def release_preclaimed(self, items: list[BatchItem]) -> None:
        """The group is done: claims of its notifications that no send took (out of time, waiting for the
        mailbox's turn, left when the group stopped) are dropped together, so their next attempt may send."""
        unused = [claim for item in items if item.notification is not None
                  and (claim := self._preclaimed.pop(item.notification.notification_id, None)) is not None]
        if unused and not keep_trying("releasing unused claims", lambda: self.once.release_all(unused),
                                      self.remaining_ms):
            log.error("%d unused claims could not be released; they end with their window", len(unused))

    def claim(self, item: BatchItem) -> Claim | None:
        """The notification's claim, or None when it must not be sent now: its stored outcome was replayed (or
        found on the ticket), another invocation holds it, or the guard could not be asked; `item.result` then
        says so. Nothing is sent for a notification without a claim."""
        notification = item.notification
        assert notification is not None
        claimed = self._preclaimed.pop(notification.notification_id, None)  # atomic: connections share the dict
        if claimed is not None:
            return claimed
        try:
            claim = self.once.claim(notification.notification_id)
        except AlreadyInProgress as busy:
            item.result = Result(Outcome.DEFERRED, reply="another invocation is delivering this notification")
            item.attempted, item.retry_after = False, busy.wait
            return None
        except Exception as error:  # nothing was sent
            log.exception("claiming %s failed", notification.notification_id)
            not_attempted(item, f"{type(error).__name__} from the idempotency store")
            return None
        if claim.stored is not None:
            self._replay(item, Result.from_dict(claim.stored))
            return None
        if claim.taken_over and self._decided_on_ticket(item, claim):
            return None
        return claim

    def conclude(self, item: BatchItem, claim: Claim, result: Result) -> None:
        """The outcome of a claimed notification: a final one is stored (and recorded on the ticket) before the
        message is released, its writes retried within the invocation's time; a deferral or a hold drops the
        claim and is recorded on the ticket."""
        notification = item.notification
        assert notification is not None
        if result.outcome not in FINAL:
            keep_trying("releasing the claim", lambda: self.once.release(claim), self.remaining_ms)
            item.result = result
            item.durable = self.record(notification, result, last=item.attempt >= self.max_attempts)
        else:
            result.refused = [*result.refused, *item.suppressed]
            item.result = result
            item.durable = self._store(notification, claim, result)
        if item.turn is not None:
            item.turn.after(item)

    def unclaim(self, item: BatchItem, claim: Claim) -> None:
        """Claimed ahead of its send, and nothing of it was written to any server (its connection ended first):
        the claim is dropped, as after a deferral, and the item is untouched (the caller sends or defers it)."""
        keep_trying("releasing the claim", lambda: self.once.release(claim), self.remaining_ms)

    def _store(self, notification: Notification, claim: Claim, result: Result) -> bool:
        """The outcome in the once guard and on the ticket: both, or the message is not released. One write for
        both when the stores can (`OutcomeWrites`); else, or when that write keeps failing, the once guard first,
        then the ticket. When neither store takes it within the invocation, this warm container keeps it for its
        next invocation."""
        if self._store_jointly(notification, claim, result):
            return True

        def complete() -> None:
            try:
                self.once.complete(claim, result.to_dict())
            except ClaimLost:
                log.error("the claim on %s was taken over before its outcome was stored",
                          notification.notification_id)
                raise

        stored = keep_trying("storing the outcome", complete, self.remaining_ms)
        recorded = self.record(notification, result)
        if not stored and not recorded:
            self._unsaved.append((notification, claim, result))
        return stored and recorded

    def _store_jointly(self, notification: Notification, claim: Claim, result: Result) -> bool:
        """A few quick tries of the joint write; False sends the outcome the two-write way (which says what a lost
        claim means, and retries for as long as the invocation has time)."""
        if self.writes is None or not notification.ticket_id:
            return False
        ticket_id = notification.ticket_id
        record, attempt = self._attempt_of(notification, result)
        for _ in range(JOINT_WRITE_TRIES):
            try:
                self.writes.complete_and_record(claim, result.to_dict(), ticket_id, record, attempt)
                return True
            except ClaimLost:
                return False
            except Exception as error:  # noqa: BLE001  # throttled, a conflict, no answer: again, then apart
                log.warning("storing the outcome of %s with its ticket record failed (%s)",
                            notification.notification_id, type(error).__name__)
        return False

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

        if not keep_trying("reading the ticket record", read, self.remaining_ms):
            item.durable = False
        elif not decided[-1]:
            item.durable = self.record(notification, result)

    def _decided_on_ticket(self, item: BatchItem, claim: Claim) -> bool:
        """After a claim ran out (its invocation was stopped): did that invocation record an outcome on the ticket?
        Then it is stored and replayed, not sent again. True when the item is settled (or must wait)."""
        notification = item.notification
        assert notification is not None
        if notification.ticket_id is None:
            return False
        records = []
        if not keep_trying("reading the ticket record", lambda: records.append(self.stores.tickets.get_notification(
                notification.ticket_id, notification.notification_id)), self.remaining_ms):
            # Unknown: the claim is kept (not released), so the next attempt takes it over and looks again.
            not_attempted(item, "the ticket record could not be read after an interrupted attempt")
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
                                   self.remaining_ms)
        return True

    # --- the ticket ---------------------------------------------------------------------------------------------

    def record(self, notification: Notification, result: Result, *, last: bool = False) -> bool:
        """The attempt on the ticket, retried within the invocation's time; False if it never landed. A ticket that
        is gone takes nothing (the outcome still reaches the logs and metrics)."""
        if not notification.ticket_id:
            return True
        ticket_id = notification.ticket_id
        tickets = self.stores.tickets
        new_record, attempt = self._attempt_of(notification, result, last=last)
        return keep_trying("recording the attempt on the ticket",
                           lambda: tickets.append_attempt(ticket_id, new_record, attempt), self.remaining_ms)

    @staticmethod
    def _attempt_of(notification: Notification, result: Result, *, last: bool = False,
                    ) -> tuple[NotificationRecord, DeliveryAttempt]:
        """The ticket's record of the notification (written if it has none yet) and this attempt on it."""
        reply = result.reply
        rule = throttle_rule(result.smtp_code, reply) if result.outcome is Outcome.THROTTLED else None
        if rule is not None:
            reply = describe(rule, reply)
        if result.outcome is Outcome.DEFERRED and last:
            reply += f" — last attempt: {DLQ_NOTE}"
        attempt = DeliveryAttempt(status=STATUS[result.outcome], route=result.route, smtp_code=result.smtp_code,
                                  enhanced_status=result.enhanced_status, reply=reply, refused=result.refused)
        domain = notification.support_address.rpartition("@")[2]
        new_record = NotificationRecord(notification_id=notification.notification_id,
                                        message_id=message_id_for(notification.notification_id, domain),
                                        recipients=[*notification.recipients, *notification.cc])
        return new_record, attempt

    def _put_record(self, notification: Notification, record: NotificationRecord) -> None:
        assert notification.ticket_id is not None
        try:
            self.stores.tickets.put_notification(notification.ticket_id, record)
        except NotFoundError:
            pass  # the ticket is gone; the outcome still reaches the logs and metrics

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
                message_id, ticket_id), self.remaining_ms)
            keep_trying("recording the copy", lambda: self._put_record(follow_up, record), self.remaining_ms)
        if not keep_trying("queueing the copy for the deferred recipients", lambda: self.stores.queue.send(
                follow_up, delay_seconds=retry_delay(1, self.retry_first)), self.remaining_ms):
            return None
        return follow_up.notification_id

    # --- the SQS answer -----------------------------------------------------------------------------------------

    def finish(self, item: BatchItem) -> RecordResult:
        """Released only when the outcome is stored; a deferral waits its delay; a deferral at the last attempt
        (attempts carried from earlier messages count) or past the longest wait, its reason on the ticket, moves to
        the DLQ; one not attempted (out of time, held elsewhere, a store failing before anything was sent) waits too,
        without using up an attempt's meaning. A wait for the mailbox's turn was queued again as a new message
        (`settle`): this one is released; if that failed, this one waits by its visibility instead."""
        if item.result is None:
            not_attempted(item, "the batch ended first")
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

    def settle(self, items: list[BatchItem]) -> None:
        """Waiting notifications go back to the queue for their turn as new SQS messages (a wait is not a
        receive: it never counts toward the DLQ), carrying their attempts. One that waited longer than the queue
        keeps a message is deferred for good: its reason on the ticket, it moves to the DLQ (`finish`)."""
        if self.turns is None:
            return
        wall = time.time()
        waiting = [item for item in items if item.result is not None and item.result.outcome in WAITS
                   and item.notification is not None]
        for item in waiting:  # after every smarthost group's sends: another account's mail does not wait for these
            if item.waited and item.result is not None and item.result.outcome is Outcome.WAITING:
                self.record(item.notification, item.result)  # type: ignore[arg-type]
        entries = []
        for item in waiting:
            carry = item.carry
            since = carry.waiting_since or wall
            if wall - since > MAX_WAIT_SECONDS:
                item.result = Result(Outcome.DEFERRED, route=item.result.route,  # type: ignore[union-attr]
                                     reply=f"waited more than {MAX_WAIT_SECONDS // 86400} days for the mailbox's "
                                           "sending limit")
                item.gave_up = True
                item.durable = self.record(item.notification, item.result, last=True)  # type: ignore[arg-type]
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
