"""Relay one SQS batch of notifications: route each, send it once, record the outcome on its ticket.

Connector notifications are grouped by smarthost and credential: each group gets one SMTP connection, reused for
its messages, in a thread of its own (so different smarthosts are served concurrently). Everything else goes
through the default outbound (SES). Returns one `RecordResult` per SQS record; the handler turns deferrals into
`batchItemFailures` with a growing visibility delay.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from pydantic import ValidationError

from relaydesk.accounts import Account, subdomain_of_system_address, system_address
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress
from relaydesk.errors import (
    AuthenticationFailedError,
    NotFoundError,
    PermanentDeliveryError,
    RelaydeskError,
    SmtpDeliveryError,
    TransientDeliveryError,
)
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound import dkim, hold
from relaydesk.outbound.compose import Composed, InvalidAddressError, Sender, compose
from relaydesk.outbound.credentials import CredentialCache, VersionedCredentials
from relaydesk.outbound.once import AlreadyInProgress, OnceGuard
from relaydesk.outbound.policy import Outcome, classify_error, retry_delay
from relaydesk.outbound.serial import serialized
from relaydesk.outbound.ses import SesRoute
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts
from relaydesk.store.ports import CURRENT
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, RecipientOutcome
from relaydesk.wiring import Stores

MAX_PARALLEL_SMARTHOSTS = 8
log = logging.getLogger(__name__)
TIME_MARGIN_MS = 3000  # for recording outcomes and answering SQS after the last transaction

_STATUS = {Outcome.DELIVERED: DeliveryStatus.DELIVERED, Outcome.DEFERRED: DeliveryStatus.DEFERRED,
           Outcome.FAILED: DeliveryStatus.FAILED, Outcome.AUTH_FAILED: DeliveryStatus.AUTH_FAILED,
           Outcome.HELD: DeliveryStatus.AUTH_FAILED}


@dataclass
class Result:
    """What happened to one notification: the outcome, where it went, and the server's words."""

    outcome: Outcome
    route: str = ""
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""
    refused: list[RecipientOutcome] = field(default_factory=list)
    duplicate: bool = False  # a completed outcome replayed by the idempotency guard: nothing was sent

    def to_dict(self) -> dict:
        return {"outcome": self.outcome.value, "route": self.route, "smtp_code": self.smtp_code,
                "enhanced_status": self.enhanced_status, "reply": self.reply,
                "refused": [r.model_dump(mode="json") for r in self.refused]}

    @classmethod
    def from_dict(cls, data: dict) -> Result:
        return cls(outcome=Outcome(data["outcome"]), route=data.get("route", ""), smtp_code=data.get("smtp_code"),
                   enhanced_status=data.get("enhanced_status"), reply=data.get("reply", ""),
                   refused=[RecipientOutcome.model_validate(r) for r in data.get("refused", [])])

    @classmethod
    def of_error(cls, error: SmtpDeliveryError, route: str) -> Result:
        return cls(outcome=classify_error(error), route=route, smtp_code=error.smtp_code,
                   enhanced_status=error.enhanced_status, reply=error.server_reply or error.message,
                   refused=list(getattr(error, "refused", [])))


@dataclass
class RecordResult:
    """One SQS record's fate. `retry_in` is set for a deferral: the visibility delay before the next attempt."""

    message_id: str
    receipt_handle: str
    receive_count: int
    notification: Notification | None
    result: Result
    retry_in: int | None = None
    last_attempt: bool = False
    latency_ms: float = 0.0

    @property
    def failed(self) -> bool:
        """Reported in batchItemFailures: SQS keeps it (and after the last attempt, moves it to the DLQ)."""
        return self.result.outcome is Outcome.DEFERRED


class _NotFinal(Exception):
    """Raised through the idempotency guard so a deferral or a hold is not stored as completed."""

    def __init__(self, result: Result) -> None:
        super().__init__(result.outcome.value)
        self.result = result


@dataclass
class _Item:
    record: dict
    notification: Notification | None
    started: float = field(default_factory=time.perf_counter)
    result: Result | None = None

    @property
    def receive_count(self) -> int:
        return int(self.record.get("attributes", {}).get("ApproximateReceiveCount", "1"))


def parse_record(record: dict) -> Notification | None:
    try:
        return Notification.model_validate(json.loads(record.get("body") or ""))
    except (ValueError, ValidationError):
        return None


class Relay:
    def __init__(self, stores: Stores, *, credentials: CredentialCache, once: OnceGuard,
                 timeouts: Timeouts | None = None, max_attempts: int | None = None,
                 on_result: Callable[[RecordResult], None] | None = None,
                 submission: Callable[..., SmtpSubmission] = SmtpSubmission) -> None:
        self.stores = serialized(stores)  # smarthost threads share them
        self.credentials = credentials
        self.once = once
        self.timeouts = timeouts or Timeouts(connect=stores.settings.smtp_connect_timeout,
                                             command=stores.settings.smtp_command_timeout,
                                             data=stores.settings.smtp_data_timeout)
        self.max_attempts = max_attempts or stores.settings.max_delivery_attempts
        self.on_result = on_result
        self.submission = submission  # unit tests hand in a fake smarthost; no sockets
        self.ses = SesRoute(self.stores)
        self._remaining_ms: Callable[[], int] | None = None

    # --- the batch ----------------------------------------------------------------------------------------------

    def relay_batch(self, records: Iterable[dict], remaining_ms: Callable[[], int] | None = None,
                    ) -> list[RecordResult]:
        """`remaining_ms` is the invocation's time left: no transaction starts that could outlive it."""
        self._remaining_ms = remaining_ms
        items = [_Item(record, parse_record(record)) for record in records]
        groups: dict[tuple, list[_Item]] = {}
        for item in items:
            if item.notification is None:
                # Unreadable: kept in the queue, so after the last attempt it waits in the DLQ for a human.
                item.result = Result(Outcome.DEFERRED, reply="the SQS message is not a Notification")
                continue
            try:
                plan = self._plan(item.notification)
            except RelaydeskError as error:
                item.result = Result(Outcome.FAILED, reply=error.message)
                self._record(item.notification, item.result)
                continue
            groups.setdefault(plan, []).append(item)
        ses_items = groups.pop(("ses",), [])
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL_SMARTHOSTS) as pool:
            futures = [pool.submit(self._connector_group, key[1], group) for key, group in groups.items()]
            self._ses_group(ses_items)
            for future in futures:
                future.result()
        return [self._finish(item) for item in items]

    def _plan(self, notification: Notification) -> tuple:
        """("ses",) or ("connector", secret id): the route, and the group that shares one connection."""
        address = self.stores.directory.get_address(notification.support_address)
        settings = self.stores.settings
        if address is None or address.kind is AddressKind.SYSTEM or \
                subdomain_of_system_address(notification.support_address, settings.mail_domain):
            return ("ses",)
        connector = address.connector
        if address.kind is not AddressKind.SMTP_CONNECTOR or connector is None:
            return ("ses",)
        if connector.state in (ConnectorState.ACTIVE, ConnectorState.AUTH_FAILED):
            return ("connector", connector.secret_arn)
        if connector.state is ConnectorState.PENDING and notification.kind is NotificationKind.VERIFICATION:
            return ("connector", connector.secret_arn)  # the outbound test itself goes through the connector
        return ("ses",)

    def _finish(self, item: _Item) -> RecordResult:
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

    def _once(self, item: _Item, work: Callable[[], Result]) -> None:
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
            self._record(notification, item.result, last=item.receive_count >= self.max_attempts)

    def _record(self, notification: Notification, result: Result, *, last: bool = False) -> None:
        if not notification.ticket_id:
            return
        tickets = self.stores.tickets
        reply = result.reply
        if result.outcome is Outcome.DEFERRED and last:
            reply += " — last attempt: the notification moves to the dead-letter queue (`relaydesk dlq redrive`)"
        attempt = DeliveryAttempt(status=_STATUS[result.outcome], route=result.route, smtp_code=result.smtp_code,
                                  enhanced_status=result.enhanced_status, reply=reply, refused=result.refused)
        record = tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is None:
            domain = notification.support_address.rpartition("@")[2]
            from relaydesk.markers import message_id_for

            record = NotificationRecord(notification_id=notification.notification_id,
                                        message_id=message_id_for(notification.notification_id, domain),
                                        recipients=[*notification.recipients, *notification.cc])
        record.attempts.append(attempt)
        record.status = attempt.status
        try:
            tickets.put_notification(notification.ticket_id, record)
        except NotFoundError:
            pass  # the ticket is gone; the outcome still reaches the logs and metrics

    # --- the default outbound -----------------------------------------------------------------------------------

    def out_of_time(self, item: _Item) -> bool:
        """True (and the item deferred, untouched) when a slow server could outlive the invocation now."""
        if self._remaining_ms is None:
            return False
        worst = (self.timeouts.command + self.timeouts.data) * 1000  # a stall at MAIL or after the final dot
        if self._remaining_ms() > worst + TIME_MARGIN_MS:
            return False
        item.result = Result(Outcome.DEFERRED, reply="not attempted: the invocation was about to time out")
        return True

    def _ses_group(self, items: list[_Item]) -> None:
        for item in items:
            assert item.notification is not None
            if self.out_of_time(item):
                continue
            notification = item.notification
            self._once(item, lambda n=notification: self.ses.send(n))

    # --- a connector group --------------------------------------------------------------------------------------

    def _connector_group(self, secret_id: str, items: list[_Item]) -> None:
        loop = asyncio.new_event_loop()
        try:
            _ConnectorGroup(self, secret_id, loop).run(items)
        finally:
            loop.close()


class _ConnectorGroup:
    """One smarthost and credential within one batch: at most one open connection, reused message after message."""

    def __init__(self, relay: Relay, secret_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.relay = relay
        self.stores = relay.stores
        self.secret_id = secret_id
        self.loop = loop
        self.session: SmtpSubmission | None = None
        self.version: VersionedCredentials | None = None
        self.broken: Result | None = None  # a connection-level failure: the rest of the group shares it
        self.changed: bool | None = None  # for a held address: does the secret have a version not refused yet?
        self.reconnects = 0

    def run(self, items: list[_Item]) -> None:
        try:
            for item in items:
                assert item.notification is not None
                if self.relay.out_of_time(item):
                    continue
                notification = item.notification
                self.relay._once(item, lambda n=notification: self.deliver(n))
        finally:
            if self.session is not None:
                self.loop.run_until_complete(self.session.close())

    def deliver(self, notification: Notification) -> Result:
        address = self.stores.directory.get_address(notification.support_address)
        if address is None or address.connector is None:
            return self.relay.ses.send(notification)
        if self.broken is not None:
            return self._park_if_held(notification, self.broken)
        if hold.is_held(address) and not self._credentials_changed(address):
            hold.park(self.stores, notification)
            return Result(Outcome.HELD, route=self._route(address), reply=address.last_error or "held: auth_failed")
        try:
            composed = self._compose(notification, address)
            data = self._sign(address, composed.to_bytes())
        except InvalidAddressError as error:
            return Result(Outcome.FAILED, route=self._route(address), reply=str(error))
        try:
            self._ensure_open(address)
        except AuthenticationFailedError as error:
            return self._hold(address, notification, error)
        except SmtpDeliveryError as error:
            # No connection (down, no STARTTLS, bad certificate): the rest of this smarthost's batch shares it.
            self.broken = Result.of_error(error, self._route(address))
            fix = "" if isinstance(error, TransientDeliveryError) else f" What to do: {error.action}"
            self._note_error(address, f"{error.message}.{fix}")
            return self.broken
        assert self.session is not None
        try:
            accepted = self.loop.run_until_complete(
                self.session.send(composed.envelope_from, list(composed.recipients), data))
        except AuthenticationFailedError as error:
            return self._hold(address, notification, error)
        except SmtpDeliveryError as error:
            result = Result.of_error(error, self._route(address))
            if notification.kind is NotificationKind.VERIFICATION:
                self._note_error(address, f"the verification mail was refused: {result.reply}")
            return result
        self._remember_working(address)
        return Result(Outcome.DELIVERED, route=self.session.route, smtp_code=accepted.code,
                      reply=accepted.reply, refused=accepted.refused)

    # --- helpers ------------------------------------------------------------------------------------------------

    def _route(self, address: SupportAddress) -> str:
        assert address.connector is not None
        return f"connector:{address.connector.host}:{address.connector.port}"

    def _compose(self, notification: Notification, address: SupportAddress) -> Composed:
        account = self.stores.directory.get_account(notification.account_id)
        sender = Sender(address=address.email, display_name=display_name(account, address),
                        reply_to=address.email, message_id_domain=address.domain)
        blobs = self.stores.blobs
        return compose(notification, sender, inline_attachments=account.settings.include_attachments_in_email,
                       fetch=blobs.get, link=lambda ref: blobs.url_for(ref.s3_key))

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

    def _ensure_open(self, address: SupportAddress) -> None:
        if self.session is not None and self.session.connected:
            return
        if self.session is not None:  # lost since the last message: one reconnect per group and batch
            if self.reconnects >= 1:
                raise TransientDeliveryError("the connection was lost again; the rest waits for the next attempt")
            self.reconnects += 1
        version = self.version or self.relay.credentials.get(self.secret_id, CURRENT)
        if hold.is_held(address):
            version = self.relay.credentials.alternatives(
                self.secret_id, {address.connector.held_version} if address.connector else set())[0]
        self._open(version, address)

    def _open(self, version: VersionedCredentials, address: SupportAddress) -> None:
        tried: set[str] = set()
        while True:
            tried.add(version.version_id)
            session = self.relay.submission(version.credentials, timeouts=self.relay.timeouts,
                                            local_hostname=self.stores.settings.mail_domain)
            try:
                self.loop.run_until_complete(session.open())
            except AuthenticationFailedError as error:
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
        if notification.kind is NotificationKind.VERIFICATION:
            hold.hold_address(self.stores, address.email, error, version_id=getattr(error, "version_id", None))
            return Result.of_error(error, self._route(address))  # a test mail is not parked: `verify` reports it
        hold.hold_address(self.stores, address.email, error, version_id=getattr(error, "version_id", None))
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
            hold.release_held(self.stores, address.email)
            address = self.stores.directory.get_address(address.email) or address
        if address.connector is not None and address.connector.credentials_version != self.version.version_id:
            address.connector.credentials_version = self.version.version_id
            self.stores.directory.put_address(address)

    def _note_error(self, address: SupportAddress, text: str) -> None:
        fresh = self.stores.directory.get_address(address.email)
        if fresh is not None:
            fresh.last_error = text
            self.stores.directory.put_address(fresh)


def display_name(account: Account, address: SupportAddress) -> str:
    """The address's own name, else its brand's, else the account's."""
    if address.name:
        return address.name
    brand = next((b for b in account.brands if b.brand_id == address.brand_id), None)
    return brand.name if brand else account.display_name


def system_sender(account: Account, mail_domain: str) -> str:
    return system_address(account.subdomain, mail_domain)


__all__ = ["PermanentDeliveryError", "RecordResult", "Relay", "Result", "parse_record"]
