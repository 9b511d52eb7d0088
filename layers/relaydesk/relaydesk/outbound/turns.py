"""A mailbox's turn in one relay batch, between the relay and the shaper (`outbound/shaper.py`).

Before the batch's connector group sends: recipients over the per-message limit are split off into notifications of
their own; the shaper admits what may go now under one connection lease and gives the others a turn (they wait:
queued again for then, recorded on their ticket once as "waiting for the mailbox's sending limit"). While the group
sends: each send's completion is noted; a throttle reply pauses and slows the mailbox and the rest of the group
waits; each further connection the group opens first takes a connection lease of its own (none free: it is not
opened). After: the leases and the completions go back to the shaper.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from collections.abc import Callable

from relaydesk.addresses.limits import limits_of, profile_of
from relaydesk.addresses.model import SupportAddress
from relaydesk.addresses.providers import Limits
from relaydesk.durable import keep_trying
from relaydesk.errors import RelaydeskError
from relaydesk.markers import message_id_for
from relaydesk.notification import Notification
from relaydesk.outbound import split as splitting
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.result import BatchItem, Result
from relaydesk.outbound.shaper import Shaper, mailbox_key
from relaydesk.outbound.shaping import Ask, Reason, Turn
from relaydesk.outbound.throttles import throttle_rule
from relaydesk.store.ports import NotificationQueue, Requeued, TicketStore
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord

log = logging.getLogger(__name__)
BUSY_WAIT = 30.0  # wall seconds a batch waits when the shaper's state cannot be updated
DEFAULT_LEASE = 120.0  # wall seconds a lease lasts when the invocation's time left is unknown
LEASE_MARGIN = 10.0  # past the invocation's end: a live invocation always gives its lease back first
DUE_SLACK = 0.5  # wall seconds: clocks of two invocations may differ a little; a turn that close has come
# Wall seconds a batch waits in its invocation for a turn (or its free slot) coming that soon, rather than queueing
# it again: an SQS delay is in whole seconds, rounded down, so a notification comes back up to a second before its
# turn and waits for it here; late, its slot would go unused.
PATIENCE = 1.5
HOLD = 3.0  # wall seconds one connector group of a batch waits in all, however many turns come within PATIENCE
MIN_SLEEP = 0.01  # wall seconds: a wait always lets time pass (no hot loop on a slot that frees "now")
LEASE_PATIENCE = 0.5  # wall seconds a batch waits for a connection lease in its invocation before it queues again
LEASE_POLL = 0.1
MIN_REMAINING_MS = 20_000  # an invocation with less time left does not wait for a lease
NOT_SENT = (Outcome.HELD, Outcome.WAITING)


class MailboxTurn:
    """What one connector group did with its leases: completions, recipients sent, and a throttle reply if any.
    The group's connections send in threads of their own: each notes its sends here."""

    def __init__(self, shaper: Shaper, key: str, lease: str, *, limits: Limits | None = None,
                 lease_seconds: Callable[[], float] | None = None,
                 remaining_ms: Callable[[], int] | None = None) -> None:
        self.shaper = shaper
        self.remaining_ms = remaining_ms
        self.key = key
        self.lease = lease
        self.limits = limits
        self.lease_seconds = lease_seconds or (lambda: self.shaper.clock.shaper_seconds(DEFAULT_LEASE))
        self.connection_leases: list[str] = []  # the group's further connections
        self.completions: list[float] = []
        self.sent_recipients = 0
        self.resume_at: float | None = None  # set by a throttle reply: the rest of the group waits until then
        self.stopped_by = ""
        self._lock = threading.Lock()
        self._answered = threading.local()  # per connection's thread: when the server answered its send

    def more_connections(self, wanted: int) -> int:
        """Leases for up to `wanted` more connections of the group: how many may open. 0 when the mailbox's
        connections are all taken (by this group or other invocations), it is paused, or the shaper cannot be
        reached (the group's first connection carries on alone)."""
        if self.limits is None or wanted <= 0 or self.resume_at is not None:
            return 0
        try:
            granted = self.shaper.lease_connections(self.key, self.limits,
                                                    lease_ids=[uuid.uuid4().hex for _ in range(wanted)],
                                                    lease_seconds=self.lease_seconds())
        except RelaydeskError as error:
            log.warning("no further connection leases for %s: %s", self.key, error.message)
            return 0
        with self._lock:
            self.connection_leases += granted
        return len(granted)

    def held_back(self, item: BatchItem) -> bool:
        """After a throttle reply in this group the others do not try: they wait for the mailbox's pause."""
        if self.resume_at is None:
            return False
        item.result = Result(Outcome.WAITING, reply=f"waiting for the mailbox's sending limit: the provider asked "
                                                    f"to slow down ({self.stopped_by})")
        item.wait_until = self.resume_at
        return True

    def timed(self, work: Callable[[], Result]) -> Callable[[], Result]:
        """The send, noting when the server's answer came (before the outcome is stored): the provider counts the
        message from then."""
        def send() -> Result:
            try:
                return work()
            finally:
                self._answered.at = self.shaper.clock.now()
        return send

    def after(self, item: BatchItem) -> None:
        result = item.result
        answered, self._answered.at = getattr(self._answered, "at", None), None
        if result is None or result.duplicate or not item.attempted or result.outcome in NOT_SENT:
            return  # nothing went to the server: replayed, not attempted (claimed elsewhere, out of time), parked
        with self._lock:
            self.completions.append(answered if answered is not None else self.shaper.clock.now())
            if item.notification is not None:
                self.sent_recipients += splitting.recipient_count(item.notification)
        if result.outcome is Outcome.THROTTLED:
            rule = throttle_rule(result.smtp_code, result.reply)
            pause = rule.pause if rule is not None else 60.0
            try:
                self.resume_at = self.shaper.slow_down(self.key, pause)
            except RelaydeskError:
                log.warning("could not record a throttle reply for %s; pausing this batch only", self.key)
                self.resume_at = self.shaper.clock.now() + pause
            self.stopped_by = result.reply
            item.wait_until = self.resume_at

    def close(self) -> None:
        """After the group's connections are done: every lease back, in one write. Tried again while the invocation
        has time: a lease not given back holds one of the mailbox's connections until it expires (the invocation's
        time and a margin), and every other invocation sending for that mailbox waits for it meanwhile. A retry after
        a write whose answer was lost counts the sends twice, which only slows the mailbox (`shaping.release`)."""
        def give_back() -> None:
            self.shaper.give_back(self.key, self.lease, self.completions, sent_recipients=self.sent_recipients,
                                  connections=tuple(self.connection_leases))
        if not keep_trying(f"giving back the connection leases of {self.key}", give_back, self.remaining_ms):
            log.warning("the connection leases of %s expire by themselves", self.key)


class Turns:
    """Takes a mailbox's turn for a batch's connector group (see the module docstring)."""

    def __init__(self, shaper: Shaper, *, credentials: CredentialCache, tickets: TicketStore,
                 queue: NotificationQueue, batching_window: float = 0.0) -> None:
        self.shaper = shaper
        self.batching_window = batching_window  # wall seconds the event source may hold a message before invoking
        self.clock = shaper.clock
        self.credentials = credentials
        self.tickets = tickets
        self.queue = queue

    def begin(self, secret_id: str, items: list[BatchItem], address: SupportAddress,
              remaining_ms: Callable[[], int] | None) -> tuple[MailboxTurn | None, list[BatchItem]]:
        """The group's items that may send now (each with the turn), and the turn; the others get a waiting
        result and their turn time."""
        assert address.connector is not None
        now = self.clock.now()
        slack = self.clock.shaper_seconds(DUE_SLACK)
        limits = limits_of(address)
        route = f"connector:{address.connector.host}:{address.connector.port}"
        asking: list[BatchItem] = []
        for item in items:
            assert item.notification is not None
            turn_at = item.booking if item.booking is not None else item.carry.turn_at
            if turn_at is not None and turn_at > now + slack:  # a long wait comes back every 15 minutes
                self._wait(item, turn_at, route, "", limits, address, record=False)
                item.booking = turn_at
            elif self._split(item, min(limits.recipients_per_message, limits.recipients_per_day), route, limits,
                             address):
                asking.append(item)
        if not asking:
            return None, []
        key = self._key(secret_id, address)
        asks = [Ask(splitting.recipient_count(item.notification),  # type: ignore[arg-type]
                    item.booking if item.booking is not None else item.carry.turn_at) for item in asking]
        try:
            turn = self._take(key, limits, asks, remaining_ms)
        except RelaydeskError as error:
            log.warning("shaper unavailable for %s: %s", address.email, error.message)
            for item in asking:
                self._wait(item, now + self.clock.shaper_seconds(BUSY_WAIT), route,
                           "the sending limit's state could not be read", limits, address)
            return None, []
        for index, until in turn.waits.items():
            self._wait(asking[index], until, route, turn.reasons[index], limits, address)
            asking[index].booking = turn.booked.get(index, asking[index].carry.turn_at)
        if turn.lease is None:
            return None, []
        mailbox = MailboxTurn(self.shaper, key, turn.lease, limits=limits,
                              lease_seconds=lambda: self._lease_seconds(remaining_ms), remaining_ms=remaining_ms)
        admitted = [asking[index] for index in turn.admitted]
        for item in admitted:
            item.turn = mailbox
        return mailbox, admitted

    def _take(self, key: str, limits: Limits, asks: list[Ask], remaining_ms: Callable[[], int] | None) -> Turn:
        """The shaper's turn; when all connections are taken (a send frees one within moments), asked again for a
        little while in this invocation rather than queueing everything again for seconds."""
        patience = time.monotonic() + LEASE_PATIENCE
        while True:
            turn = self.shaper.take(key, limits, asks, lease_id=uuid.uuid4().hex,
                                    lease_seconds=self._lease_seconds(remaining_ms))
            busy = turn.lease is None and turn.waits and set(turn.reasons.values()) == {Reason.CONNECTIONS}
            if not busy or time.monotonic() + LEASE_POLL > patience or \
                    (remaining_ms is not None and remaining_ms() < MIN_REMAINING_MS):
                return turn
            time.sleep(LEASE_POLL)

    def patience(self, remaining_ms: Callable[[], int] | None) -> Patience:
        """The in-invocation wait of one connector group of a batch, from now (see `Patience`)."""
        return Patience(self, remaining_ms)

    def delay_of(self, item: BatchItem) -> int:
        """Wall seconds until the item should look again, in SQS's whole seconds rounded down and less the event
        source's batching window: it comes back up to a second (and the window) before its turn and waits for it in
        that invocation (`Patience`), instead of up to a second (and the window) after it with its slot unused. At
        least one (never hot), at most SQS's 15 minutes (a longer wait comes back then and is queued again without
        asking the shaper)."""
        until = item.wait_until if item.wait_until is not None else self.clock.now()
        wall = self.clock.real_seconds(until - self.clock.now()) - self.batching_window
        return min(max(1, math.floor(wall)), 900)

    # --- helpers ---------------------------------------------------------------------------------------------------

    def _key(self, secret_id: str, address: SupportAddress) -> str:
        assert address.connector is not None
        try:
            username = self.credentials.get(secret_id).credentials.username
        except RelaydeskError:
            username = address.email  # the group reports the secret's problem itself
        return mailbox_key(address.connector.host, username)

    def _lease_seconds(self, remaining_ms: Callable[[], int] | None) -> float:
        wall = remaining_ms() / 1000 + LEASE_MARGIN if remaining_ms is not None else DEFAULT_LEASE
        return self.clock.shaper_seconds(wall)

    def _wait(self, item: BatchItem, until: float, route: str, reason: str, limits: Limits,
              address: SupportAddress, *, record: bool = True) -> None:
        profile = profile_of(address)
        seconds = max(0, math.ceil(self.clock.real_seconds(until - self.clock.now())))
        held = f"; held back by {reason}" if reason else ""
        item.result = Result(Outcome.WAITING, route=route, reply=(
            f"waiting for the mailbox's sending limit ({profile.label}: {limits.messages_per_minute} messages a "
            f"minute, {limits.connections} connections{held}); its turn comes in about {seconds} s"))
        item.wait_until = until
        if record and item.carry.waiting_since is None:
            item.waited = True  # its ticket says so once, when it starts waiting (written after the batch's sends)

    def _split(self, item: BatchItem, limit: int, route: str, limits: Limits, address: SupportAddress) -> bool:
        """Parts of a notification over the per-message limit go to the queue as notifications of their own (the
        first part stays in this batch); False when they could not be queued (the whole is retried later)."""
        notification = item.notification
        assert notification is not None
        parts = splitting.split(notification, limit)
        if len(parts) == 1:
            return True
        failed = self.queue.requeue([Requeued(part, 0) for part in parts[1:]])
        if failed:
            item.result = Result(Outcome.DEFERRED, route=route, reply=(
                f"{len(failed)} part(s) of a notification over {limit} recipients per message could not be "
                "queued; the whole is retried"))
            return False
        profile = profile_of(address)
        others = ", ".join(f"{p.notification_id} ({splitting.recipient_count(p)})" for p in parts[1:])
        self._note(parts[0], f"{profile.label} takes at most {limit} recipients per message: this message goes to "
                             f"the first {splitting.recipient_count(parts[0])}, the others in {others}")
        for number, part in enumerate(parts[1:], start=2):
            self._note(part, f"part {number} of {len(parts)} of {notification.notification_id} (over {limit} "
                             "recipients per message)")
        item.notification = parts[0]
        return True

    def _note(self, part: Notification, text: str) -> None:
        if not part.ticket_id:
            return
        domain = part.support_address.rpartition("@")[2]
        message_id = message_id_for(part.notification_id, domain)
        self.tickets.link_message_id(message_id, part.ticket_id)
        self.tickets.append_attempt(part.ticket_id, NotificationRecord(
            notification_id=part.notification_id, message_id=message_id, recipients=[*part.recipients, *part.cc]),
            DeliveryAttempt(status=DeliveryStatus.QUEUED, reply=text))


class Patience:
    """How a connector group of a batch waits in its invocation for its turn holders. A notification whose turn (or,
    its turn come, its free slot) is within `PATIENCE` waits here instead of going back to the queue: the group
    sleeps until the earliest of them, and those that are due then ask again (`soon`), round after round, for up to
    `HOLD` in all, never when the invocation has less than `MIN_REMAINING_MS` left. Only a notification holding a
    turn waits (newcomers behind the line go to the queue), so the one that is there when a slot frees is the one
    whose slot it is. Times on the shaper's clock, sleeps in wall seconds."""

    def __init__(self, turns: Turns, remaining_ms: Callable[[], int] | None) -> None:
        self.clock = turns.clock
        self.remaining_ms = remaining_ms
        # Queued again the batching window earlier, a notification may come back that much earlier still.
        self.patience = PATIENCE + turns.batching_window
        hold = HOLD + turns.batching_window
        self.until = self.clock.now() + self.clock.shaper_seconds(hold)
        self.wall_until = time.monotonic() + hold  # the same hold on the wall's clock, should the shaper's stand still

    def near(self, items: list[BatchItem]) -> list[BatchItem]:
        """The waiting turn holders whose wait ends within `PATIENCE` (and the batching window) and before the group's
        hold ends."""
        horizon = min(self.clock.now() + self.clock.shaper_seconds(self.patience), self.until)
        return [item for item in items if item.result is not None and item.result.outcome is Outcome.WAITING
                and item.booking is not None and item.wait_until is not None and item.wait_until <= horizon]

    def soon(self, items: list[BatchItem]) -> list[BatchItem]:
        """Sleeps until the earliest near wait ends; returns the items due then (their results cleared: they ask
        again). Empty: nothing is near, or the invocation has no time to wait; the rest go back to the queue."""
        near = self.near(items)
        if not near or time.monotonic() > self.wall_until or \
                (self.remaining_ms is not None and self.remaining_ms() < MIN_REMAINING_MS):
            return []
        earliest = min(item.wait_until for item in near)  # type: ignore[type-var]
        time.sleep(max(MIN_SLEEP, self.clock.real_seconds(earliest - self.clock.now())))
        due_by = self.clock.now() + self.clock.shaper_seconds(DUE_SLACK)
        due = [item for item in near if item.wait_until <= due_by]  # type: ignore[operator]
        for item in due:
            item.result, item.wait_until = None, None
        return due
