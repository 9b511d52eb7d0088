"""Relay one SQS batch of notifications: route each, send it once, record the outcome on its ticket.

Connector notifications are grouped by smarthost and credential: each group gets up to `connections_per_smarthost`
SMTP connections (`outbound/connector.py`), no more than its provider profile allows nor than the mailbox's shaper
leases (`outbound/turns.py`), reused for its messages, in threads of its own (so different smarthosts are served
concurrently). Its mail transactions are pipelined and streamed (`outbound/pipelined.py`, RFC 2920) when the
server advertises PIPELINING: the next message is claimed and prepared while the previous one is on the wire, and
its envelope rides with that one's final dot; one command at a time when it does not. Everything else goes through
the default outbound (SES). The groups get their dependencies explicitly (`connector.GroupKit`); claims and outcomes
are `outbound/outcomes.py`'s. Returns one `RecordResult` per SQS record; the handler turns deferrals into
`batchItemFailures` with a growing visibility delay.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from pydantic import ValidationError

from relaydesk.accounts import subdomain_of_system_address
from relaydesk.addresses.limits import limits_of
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress
from relaydesk.addresses.state import outbound_proven
from relaydesk.attachments.links import account_prefix, owned_by
from relaydesk.errors import ForeignAttachmentError, RelaydeskError
from relaydesk.notification import Notification, NotificationKind
from relaydesk.outbound.connector import CONNECTIONS_PER_SMARTHOST, AddressKey, ConnectorGroup, GroupKit, address_key
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.deadline import Deadline
from relaydesk.outbound.outcomes import DLQ_NOTE, Outcomes
from relaydesk.outbound.pipelined import PipelinedSubmission
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.pool import ConnectionPool
from relaydesk.outbound.result import BatchItem, RecordResult, Result, not_attempted
from relaydesk.outbound.serial import serialized
from relaydesk.outbound.ses import SesRoute
from relaydesk.outbound.session import SessionKit
from relaydesk.outbound.shaper import Shaper
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts
from relaydesk.outbound.suppression import Suppression, without_suppressed
from relaydesk.outbound.turns import Turns
from relaydesk.store.ports import OnceGuard, OutcomeWrites, SessionPool, Stores

MAX_PARALLEL_SMARTHOSTS = 8
log = logging.getLogger(__name__)


def parse_record(record: dict) -> Notification | None:
    try:
        return Notification.model_validate(json.loads(record.get("body") or ""))
    except (ValueError, ValidationError):
        return None


def _rounds(groups: dict[tuple, list[BatchItem]]) -> list[dict[tuple, list[BatchItem]]]:
    """The batch's groups in rounds: a notification SQS delivered twice into one batch goes again only in a later
    round, after its first copy's outcome is stored, so it replays that outcome (claimed ahead beside its first copy
    it would only find the claim held and wait for a later receive)."""
    rounds: list[dict[tuple, list[BatchItem]]] = []
    for plan, items in groups.items():
        seen: dict[str, int] = {}
        for item in items:
            assert item.notification is not None
            index = seen[item.notification.notification_id] = seen.get(item.notification.notification_id, -1) + 1
            while len(rounds) <= index:
                rounds.append({})
            rounds[index].setdefault(plan, []).append(item)
    return rounds


class Relay:
    def __init__(self, stores: Stores, *, credentials: CredentialCache, once: OnceGuard,
                 timeouts: Timeouts | None = None, max_attempts: int | None = None,
                 on_result: Callable[[RecordResult], None] | None = None,
                 submission: Callable[..., SmtpSubmission] = PipelinedSubmission,
                 pool: SessionPool | None = None, shaper: Shaper | None = None,
                 connections_per_smarthost: int = CONNECTIONS_PER_SMARTHOST,
                 outcome_writes: OutcomeWrites | None = None) -> None:
        self.stores = serialized(stores)  # smarthost threads share them
        self.connections_per_smarthost = connections_per_smarthost
        self.credentials = credentials
        self.once = once
        self.timeouts = timeouts or Timeouts(connect=stores.settings.smtp_connect_timeout,
                                             command=stores.settings.smtp_command_timeout,
                                             data=stores.settings.smtp_data_timeout)
        self.max_attempts = max_attempts or stores.settings.max_delivery_attempts
        self.submission = submission  # unit tests hand in a fake smarthost; no sockets
        self.ses = SesRoute(self.stores)
        self.pool = pool or ConnectionPool()  # authenticated connections kept for the next invocation
        self._remaining_ms: Callable[[], int] | None = None
        # The mailboxes' sending limits, shared with every other invocation (None: unshaped, as unit tests of other
        # concerns run)
        self.turns = None if shaper is None else Turns(shaper, credentials=credentials, tickets=self.stores.tickets,
                                                       queue=self.stores.queue,
                                                       batching_window=stores.settings.relay_batching_window_seconds)
        self.outcomes = Outcomes(self.stores, once, max_attempts=self.max_attempts,
                                 retry_first=stores.settings.retry_first_seconds, turns=self.turns,
                                 on_result=on_result, writes=outcome_writes)
        self.sessions = SessionKit(credentials=credentials, pool=self.pool, submission=submission,
                                   timeouts=self.timeouts, secrets=self.stores.secrets,
                                   local_hostname=stores.settings.mail_domain)

    # --- the batch ----------------------------------------------------------------------------------------------

    def relay_batch(self, records: Iterable[dict], remaining_ms: Callable[[], int] | None = None,
                    ) -> list[RecordResult]:
        """`remaining_ms` is the invocation's time left: no transaction starts that could outlive it."""
        self._remaining_ms = remaining_ms
        self.outcomes.start(remaining_ms)
        kit = GroupKit(self.stores, self.sessions, self.outcomes, Deadline(self.timeouts, remaining_ms), self.ses)
        items = [BatchItem(record, parse_record(record)) for record in records]
        groups: dict[tuple, list[BatchItem]] = {}
        addresses: dict[AddressKey, SupportAddress | None] = {}  # each address read once per batch, handed to its group
        suppressed = self._suppressed_in(items)
        for item in items:
            if item.notification is None:
                # Unreadable: kept in the queue, so after the last attempt it waits in the DLQ for a human.
                item.result = Result(Outcome.DEFERRED, reply="the SQS message is not a Notification")
                continue
            try:
                if not self._note_overdue(item) or self._leave_out_suppressed(item, suppressed):
                    continue
                plan = self._plan(item.notification, addresses)
            except RelaydeskError as error:
                item.result = Result(Outcome.FAILED, reply=error.message)
                item.durable = self.outcomes.record(item.notification, item.result)
                continue
            except Exception as error:  # a store failed before anything was tried: this record alone waits
                log.exception("planning %s failed", item.notification.notification_id)
                not_attempted(item, f"{type(error).__name__} while reading the address")
                continue
            groups.setdefault(plan, []).append(item)
        for round_groups in _rounds(groups):
            self._send_groups(kit, round_groups, addresses)
        self._contained(self.outcomes.settle, items)
        return [self.outcomes.finish(item) for item in items]

    def _send_groups(self, kit: GroupKit, groups: dict[tuple, list[BatchItem]],
                     addresses: dict[AddressKey, SupportAddress | None]) -> None:
        """Every smarthost group in a thread of its own, the default outbound in this one."""
        ses_items = groups.pop(("ses",), [])
        with ThreadPoolExecutor(max_workers=MAX_PARALLEL_SMARTHOSTS) as pool:
            futures = [pool.submit(self._connector_group, kit, key[1], group, addresses)
                       for key, group in groups.items()]
            self._contained(lambda ses_items: self._ses_group(kit.deadline, ses_items), ses_items)
            for future in futures:
                try:
                    future.result()
                except Exception:  # each record already has its result, or none: then it was not attempted
                    log.exception("a smarthost group ended with an error")

    @staticmethod
    def _contained(run: Callable[[list[BatchItem]], None], items: list[BatchItem]) -> None:
        try:
            run(items)
        except Exception:
            log.exception("a group of the batch ended with an error")

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
        if self.outcomes.record(item.notification, note):
            return True
        not_attempted(item, "the ticket could not be updated first")
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

    def _suppressed_in(self, items: list[BatchItem]) -> dict[str, dict[str, Suppression]] | None:
        """The batch's suppressed recipients by account, in one read (None: that failed, each notification asks on
        its own)."""
        suppressions = self.stores.suppressions
        wanted: dict[str, list[str]] = {}
        for item in items:
            notification = item.notification
            if notification is not None and notification.kind is not NotificationKind.VERIFICATION:
                wanted.setdefault(notification.account_id, []).extend([*notification.recipients, *notification.cc])
        if suppressions is None or not wanted:
            return {}
        try:
            return suppressions.suppressed_many(wanted)
        except Exception as error:  # noqa: BLE001  # asked again one notification at a time, each with its errors
            log.warning("reading the batch's suppressed recipients failed (%s)", type(error).__name__)
            return None

    def _leave_out_suppressed(self, item: BatchItem,
                              batch: dict[str, dict[str, Suppression]] | None = None) -> bool:
        """Recipients SES reported as undeliverable or complaining are not sent to by any route (the refusal says
        why); True when nobody is left, the notification then recorded as failed. `batch`: what the batch's one
        read found (None: ask now)."""
        notification = item.notification
        suppressions = self.stores.suppressions
        if suppressions is None or notification is None or notification.kind is NotificationKind.VERIFICATION:
            return False
        addresses = [*notification.recipients, *notification.cc]
        if batch is None:
            found = suppressions.suppressed(notification.account_id, addresses)
        else:
            known = batch.get(notification.account_id, {})
            found = {r.lower(): known[r.lower()] for r in addresses if r.lower() in known}
        item.notification, item.suppressed = without_suppressed(notification, found)
        if item.notification.recipients:
            return False
        item.result = Result(Outcome.FAILED, reply="; ".join(r.reply for r in item.suppressed),
                             refused=item.suppressed)
        item.durable = self.outcomes.record(notification, item.result)
        return True

    # --- the default outbound -----------------------------------------------------------------------------------

    def _ses_group(self, deadline: Deadline, items: list[BatchItem]) -> None:
        for item in items:
            assert item.notification is not None
            if deadline.out_of_time(item):
                continue
            notification = item.notification
            self.outcomes.run_once(item, lambda n=notification: self.ses.send(n))

    # --- a connector group --------------------------------------------------------------------------------------

    def _connector_group(self, kit: GroupKit, secret_id: str, items: list[BatchItem],
                         addresses: dict[AddressKey, SupportAddress | None]) -> None:
        mine = {address_key(item.notification) for item in items if item.notification is not None}
        known = {key: addresses[key] for key in mine if key in addresses}
        only = next(iter(mine)) if len(mine) == 1 else None
        address = addresses.get(only) if only is not None else None
        if self.turns is None or address is None or address.connector is None or \
                address.connector.state not in (ConnectorState.ACTIVE, ConnectorState.PENDING):
            # unshaped; a held address parks its notifications without sending
            ConnectorGroup(kit, secret_id, known, connections=self._unshaped_connections(known)).run(items)
            return
        # Each connection beyond the first holds a connection lease of the mailbox's shaper too, so the invocations
        # sending for one mailbox never open more than its profile allows between them.
        connections = min(self.connections_per_smarthost, limits_of(address).connections)
        pending, patience = items, self.turns.patience(self._remaining_ms)
        while pending:  # turns coming within a moment are waited for here, round after round (`turns.Patience`)
            turn, admitted = self.turns.begin(secret_id, pending, address, self._remaining_ms)
            group = ConnectorGroup(kit, secret_id, {only: address}, connections=connections,  # type: ignore[dict-item]
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

    def close(self) -> None:
        """Close the pooled connections (a container's relay is replaced, or a test ends)."""
        self.pool.close()
