"""Relay one SQS batch of notifications: route each, send it once, record the outcome on its ticket.

Connector notifications are grouped by smarthost and credential: each group gets up to `connections_per_smarthost`
SMTP connections (`outbound/connector.py`), reused for its messages, in threads of its own (so different smarthosts
are served concurrently). Its mail transactions are pipelined (`outbound/pipelined.py`, RFC 2920) when the server
advertises PIPELINING: MAIL FROM, every RCPT TO and DATA in one write, then the body; one command at a time when it
does not. Everything else goes through the default outbound (SES). Returns one `RecordResult` per SQS record; the
handler turns deferrals into `batchItemFailures` with a growing visibility delay.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from relaydesk.accounts import subdomain_of_system_address
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress
from relaydesk.addresses.state import outbound_proven
from relaydesk.attachments.links import account_prefix, owned_by
from relaydesk.errors import AlreadyInProgress, ForeignAttachmentError, NotFoundError, RelaydeskError, ReplyCode
from relaydesk.ids import new_id
from relaydesk.markers import message_id_for
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound.connector import CONNECTIONS_PER_SMARTHOST, AddressKey, ConnectorGroup, address_key
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.pipelined import PipelinedSubmission
from relaydesk.outbound.policy import Outcome, retry_delay
from relaydesk.outbound.pool import ConnectionPool
from relaydesk.outbound.result import BatchItem, RecordResult, Result
from relaydesk.outbound.serial import serialized
from relaydesk.outbound.ses import SesRoute
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts
from relaydesk.outbound.suppression import without_suppressed
from relaydesk.store.ports import OnceGuard, SessionPool, Stores
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, RecipientOutcome

MAX_PARALLEL_SMARTHOSTS = 8
log = logging.getLogger(__name__)
TIME_MARGIN_MS = 3000  # for recording outcomes and answering SQS after the last transaction

_STATUS = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.DEFERRED: DeliveryStatus.DEFERRED,
           Outcome.FAILED: DeliveryStatus.FAILED, Outcome.AUTH_FAILED: DeliveryStatus.AUTH_FAILED,
           Outcome.HELD: DeliveryStatus.HELD}


class _NotFinal(Exception):
    """Raised through the idempotency guard so a deferral or a hold is not stored as completed."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome.value)
        self.result = result


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
                 pool: SessionPool | None = None, connections_per_smarthost: int = CONNECTIONS_PER_SMARTHOST) -> None:
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
        self._remaining_ms: Callable[[], int] | None = None

    # --- the batch ----------------------------------------------------------------------------------------------

    def relay_batch(self, records: Iterable[dict], remaining_ms: Callable[[], int] | None = None,
                    ) -> list[RecordResult]:
        """`remaining_ms` is the invocation's time left: no transaction starts that could outlive it."""
        self._remaining_ms = remaining_ms
        items = [BatchItem(record, parse_record(record)) for record in records]
        groups: dict[tuple, list[BatchItem]] = {}
        addresses: dict[AddressKey, SupportAddress | None] = {}  # each address read once per batch, handed to its group
        for item in items:
            if item.notification is None:
                # Unreadable: kept in the queue, so after the last attempt it waits in the DLQ for a human.
                item.result = Result(Outcome.DEFERRED, reply="the SQS message is not a Notification")
                continue
            if self._leave_out_suppressed(item):
                continue
            try:
                plan = self._plan(item.notification, addresses)
            except RelaydeskError as error:
                item.result = Result(Outcome.FAILED, reply=error.message)
                self._record(item.notification, item.result)
                continue
            groups.setdefault(plan, []).append(item)
        ses_items = groups.pop(("ses",), [])
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL_SMARTHOSTS) as pool:
            futures = [pool.submit(self._connector_group, key[1], group, addresses) for key, group in groups.items()]
            self._ses_group(ses_items)
            for future in futures:
                future.result()
        return [self._finish(item) for item in items]

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
        result = item.result or Result(Outcome.DEFERRED, reply="not attempted")
        count = item.receive_count
        last = count >= self.max_attempts
        retry_in = None
        if result.outcome is Outcome.DEFERRED:
            retry_in = 0 if last else retry_delay(count)
        outcome = RecordResult(message_id=item.record.get("messageId", ""),
                               receipt_handle=item.record.get("receiptHandle", ""), receive_count=count,
                               notification=item.notification, result=result, retry_in=retry_in,
                               last_attempt=last and result.outcome is Outcome.DEFERRED,
                               latency_ms=round((time.perf_counter() - item.started) * 1000, 1))
        if self.on_result is not None:
            self.on_result(outcome)
        return outcome

    # --- once, and the ticket -----------------------------------------------------------------------------------

    def run_once(self, item: BatchItem, work: Callable[[], Result]) -> None:
        notification = item.notification
        assert notification is not None
        ran = False

        def guarded() -> dict:
            nonlocal ran
            ran = True
            result = work()
            if result.outcome in (Outcome.DEFERRED, Outcome.HELD, Outcome.AUTH_FAILED):
                raise _NotFinal(result)
            return result.to_dict()

        try:
            item.result = Result.from_dict(self.once.run(notification, guarded))
            item.result.duplicate = not ran
        except _NotFinal as not_final:
            item.result = not_final.result
        except AlreadyInProgress:
            item.result = Result(Outcome.DEFERRED, reply="another invocation is delivering this notification")
            return
        except Exception as error:  # one record's surprise must not fail its batch-mates
            log.exception("relaying %s failed unexpectedly", notification.notification_id)
            item.result = Result(Outcome.DEFERRED, reply=f"unexpected {type(error).__name__}; retried later")
            return
        if not item.result.duplicate:
            item.result.refused = [*item.result.refused, *item.suppressed]
            self._record(notification, item.result, last=item.receive_count >= self.max_attempts)

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
        self._record(notification, item.result)
        return True

    def _record(self, notification: Notification, result: Result, *, last: bool = False) -> None:
        if not notification.ticket_id:
            return
        tickets = self.stores.tickets
        reply = result.reply
        if result.outcome is Outcome.DEFERRED and last:
            reply += " — last attempt: the notification moves to the dead-letter queue (`relaydesk dlq redrive`)"
        attempt = DeliveryAttempt(status=_STATUS[result.outcome], route=result.route, smtp_code=result.smtp_code,
                                  enhanced_status=result.enhanced_status, reply=reply, refused=result.refused)
        domain = notification.support_address.rpartition("@")[2]
        new_record = NotificationRecord(notification_id=notification.notification_id,
                                        message_id=message_id_for(notification.notification_id, domain),
                                        recipients=[*notification.recipients, *notification.cc])
        try:
            tickets.append_attempt(notification.ticket_id, new_record, attempt)
        except NotFoundError:
            pass  # the ticket is gone; the outcome still reaches the logs and metrics

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
        if notification.ticket_id:
            domain = notification.support_address.rpartition("@")[2]
            message_id = message_id_for(follow_up.notification_id, domain)
            self.stores.tickets.link_message_id(message_id, notification.ticket_id)
            self._put_record(follow_up, NotificationRecord(
                notification_id=follow_up.notification_id, message_id=message_id,
                recipients=[*follow_up.recipients, *follow_up.cc]))
        self.stores.queue.send(follow_up, delay_seconds=retry_delay(1))
        return follow_up.notification_id

    def out_of_time(self, item: BatchItem) -> bool:
        """True (and the item deferred, untouched) when a slow server could outlive the invocation now."""
        if self._remaining_ms is None:
            return False
        worst = (self.timeouts.command + self.timeouts.data) * 1000  # a stall at MAIL or after the final dot
        if self._remaining_ms() > worst + TIME_MARGIN_MS:
            return False
        item.result = Result(Outcome.DEFERRED, reply="not attempted: the invocation was about to time out")
        return True

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
        ConnectorGroup(self, secret_id, {key: addresses[key] for key in mine if key in addresses},
                       connections=self.connections_per_smarthost).run(items)

    def close(self) -> None:
        """Close the pooled connections (a container's relay is replaced, or a test ends)."""
        self.pool.close()
