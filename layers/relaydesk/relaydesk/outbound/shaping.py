"""The shaper's arithmetic for one mailbox, without storage: who may send now, when the others' turn comes.

- **Messages a minute**: the server counts each message when it has taken it (the end of DATA), in any minute.
  The shaper counts sends whose completion it knows (`done`, kept one minute) plus every send still open under a
  lease, so no minute that the server can see holds more than the limit, however long a send takes: a token
  bucket whose tokens come back a minute after the message they paid for was taken.
- **Recipients (and messages) a day**: counted when a send is admitted, in ten-minute buckets; the sum of the last
  `DAY_BUCKETS` covers more than any day the server can look back on (a send completes well within a bucket).
- **Connections**: one lease per connection a relay batch opens to the mailbox, with an expiry, so a killed
  invocation gives its connections back by itself; the open sends of its first lease (which carries the batch's
  sends) then count as completed at the expiry. A batch's further connections lease only a connection.
- **The line**: a notification that cannot go now is given a turn: a minute after the `rate`-th latest of the
  turns already given and the sends made without one (each holds its slot for a minute), and a minute / `rate`
  away from every other turn (evenly paced: a burst's first `rate` go at once, the rest one every two seconds at 30 a
  minute rather than in waves of 30, which would each need every connection and worker at once). Turns stay on
  that grid: a send that completes late does not push the turns after it (it only makes its successor wait a
  moment for its slot), so the waiting ones go at the full rate. They come back in order; one whose turn has come
  goes before new ones, and one that still finds no room waits for the next free slot.
- **Throttle replies** pause the mailbox (the pause doubles while throttles follow each other) and halve its rate
  and connections; they recover linearly over `RECOVERY` seconds.

Times are seconds on the shaper's clock (epoch seconds, or time-scaled in tests and the bench).
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from typing import NamedTuple

from pydantic import BaseModel, Field

from relaydesk.addresses.providers import Limits

WINDOW = 60.0  # "per minute"
DAY = 86_400.0
DAY_BUCKET = 600.0
DAY_BUCKETS = int(DAY // DAY_BUCKET) + 2  # one more than a day, and one for a send that straddles a bucket's end
RESOLUTION = 0.05  # completion times are rounded up to this: fewer entries, each leaves the minute a little later
LEASE_RETRY = 5.0  # no free connection: look again after this
RECOVERY = 600.0  # a rate halved by a throttle reply is full again after this (linearly)
MIN_SLOW = 0.125
MAX_PAUSE = 900.0  # a growing pause stops growing here (a row's own longer pause stays as it is)
STREAK_RESET = 10 * WINDOW  # throttles further apart than this start the doubling again


class Reason:
    RATE = "messages a minute"
    DAY = "the daily limit"
    CONNECTIONS = "connections"
    PAUSED = "a throttle reply"
    LINE = "earlier notifications"


class Lease(BaseModel):
    expires_at: float
    open: int = 0  # sends admitted under this lease whose completion is not reported yet
    open_unturned: int = 0  # of them, those admitted without a turn
    bucket: int = 0  # the day bucket their recipients were counted in
    recipients: int = 0
    messages: int = 0


class ShaperState(BaseModel):
    """One mailbox's state, stored as one item; every change is a conditional write of the whole."""

    done: list[tuple[float, int]] = Field(default_factory=list)  # (completion time rounded up, sends), last minute
    unturned: list[float] = Field(default_factory=list)  # completions of sends made without a turn, last minute
    day: dict[int, tuple[int, int]] = Field(default_factory=dict)  # bucket -> (recipients, messages)
    leases: dict[str, Lease] = Field(default_factory=dict)
    line: list[float] = Field(default_factory=list)  # turns given to waiting notifications (the latest ones)
    paused_until: float = 0.0
    slow: float = 1.0  # rate factor set by the last throttle reply, recovering toward 1
    slowed_at: float = 0.0
    streak: int = 0


class Ask(NamedTuple):
    """One notification that wants to go: its recipients, and the turn it was given earlier, if any (it has come)."""

    recipients: int
    turn_at: float | None = None

    @property
    def due(self) -> bool:
        return self.turn_at is not None


class Turn(NamedTuple):
    lease: str | None  # the connection lease the admitted ones go under
    admitted: list[int]  # indexes into the asks, in the order to send them
    waits: dict[int, float]  # the others: index -> when to look again
    reasons: dict[int, str]  # why each of them waits
    booked: dict[int, float]  # the new turns given (a due one that waits again keeps its turn)


def slow_factor(state: ShaperState, now: float) -> float:
    return min(1.0, state.slow + max(0.0, now - state.slowed_at) / RECOVERY)


def effective(limits: Limits, state: ShaperState, now: float) -> tuple[int, int]:
    """(messages a minute, connections) as slowed by recent throttle replies."""
    factor = slow_factor(state, now)
    return max(1, math.floor(limits.messages_per_minute * factor)), max(1, math.floor(limits.connections * factor))


def tidy(state: ShaperState, now: float) -> None:
    """Expired leases give their connection back (their open sends count as done at the expiry); sends older than
    a minute and buckets older than the day window are dropped."""
    for lease_id, lease in list(state.leases.items()):
        if lease.expires_at <= now:
            if lease.open:
                _add_done(state, lease.expires_at, lease.open)
                state.unturned += [lease.expires_at] * lease.open_unturned
            del state.leases[lease_id]
    state.done = [(at, n) for at, n in state.done if at > now - WINDOW]
    state.unturned = [at for at in state.unturned if at > now - WINDOW]
    state.line = [turn for turn in state.line if turn > now - WINDOW]
    oldest = _bucket(now) - DAY_BUCKETS + 1
    state.day = {bucket: counts for bucket, counts in state.day.items() if bucket >= oldest}


def in_minute(state: ShaperState, now: float) -> int:
    return sum(n for at, n in state.done if at > now - WINDOW) + sum(lease.open for lease in state.leases.values())


def admit(state: ShaperState, limits: Limits, asks: list[Ask], now: float, *, lease_id: str,
          lease_seconds: float) -> Turn:
    """Admit what may go now under one new lease; give the rest a turn. Changes `state`."""
    tidy(state, now)
    rate, connections = effective(limits, state, now)
    order = sorted(range(len(asks)), key=lambda i: not asks[i].due)  # turns that came go first, stable
    admitted: list[int] = []
    reasons: dict[int, str] = {}
    if state.paused_until > now:
        reasons = dict.fromkeys(order, Reason.PAUSED)
    elif len(state.leases) >= connections:  # nothing changes: asking again soon costs nothing twice
        return Turn(None, [], {i: now + LEASE_RETRY for i in order}, dict.fromkeys(order, Reason.CONNECTIONS), {})
    else:
        room = rate - in_minute(state, now)
        recipients, messages = _day_totals(state, now)
        waiting_line = any(turn > now for turn in state.line)
        for i in order:  # the reason a ticket is told: the day's limit first (it binds longest), then the line
            if not _day_allows(limits, recipients + asks[i].recipients, messages + 1):
                reasons[i] = Reason.DAY
            elif not asks[i].due and waiting_line:
                reasons[i] = Reason.LINE
            elif room <= 0:
                reasons[i] = Reason.RATE
            else:
                admitted.append(i)
                room -= 1
                recipients += asks[i].recipients
                messages += 1
    lease = None
    if admitted:
        lease = lease_id
        sent = sum(asks[i].recipients for i in admitted)
        state.leases[lease_id] = Lease(expires_at=now + lease_seconds, open=len(admitted), bucket=_bucket(now),
                                       recipients=sent, messages=len(admitted),
                                       open_unturned=sum(1 for i in admitted if not asks[i].due))
        recipients_now, messages_now = state.day.get(_bucket(now), (0, 0))
        state.day[_bucket(now)] = (recipients_now + sent, messages_now + len(admitted))
    waits, booked = _turns(state, limits, asks, [i for i in order if i in reasons], rate, now)
    return Turn(lease, admitted, waits, reasons, booked)


def lease_connections(state: ShaperState, limits: Limits, now: float, *, lease_ids: list[str],
                      lease_seconds: float) -> list[str]:
    """Leases for more connections of a batch that sends under a lease already: as many of `lease_ids` as the
    mailbox's connections (as slowed by throttle replies) leave free, none while it is paused. They carry no sends:
    the batch's first lease counts its messages. Changes `state`."""
    tidy(state, now)
    if state.paused_until > now:
        return []
    _, connections = effective(limits, state, now)
    granted = lease_ids[:max(0, connections - len(state.leases))]
    for lease_id in granted:
        state.leases[lease_id] = Lease(expires_at=now + lease_seconds)
    return granted


def release(state: ShaperState, lease_id: str, completions: list[float], *, sent_recipients: int,
            now: float, turned: list[float] | None = None, connections: tuple[str, ...] = ()) -> None:
    """The batch is done with its lease: each send that reached the server counts from its completion (`turned`:
    the completions of the sends that had a turn, whose slots their turns already hold in the line); what was
    admitted but never sent is given back to the day's count. `connections`: the batch's further connection
    leases, given back with it."""
    tidy(state, now)
    for extra in connections:
        state.leases.pop(extra, None)
    lease = state.leases.pop(lease_id, None)
    for at in completions:
        _add_done(state, at, 1)
    had_turns = Counter(turned or [])
    state.unturned = sorted(state.unturned + list((Counter(completions) - had_turns).elements()))
    if lease is None:
        return  # expired first: its sends were counted at the expiry, and count again now (never fewer)
    unsent_messages = max(0, lease.messages - len(completions))
    unsent_recipients = max(0, lease.recipients - sent_recipients)
    if lease.bucket in state.day and (unsent_messages or unsent_recipients):
        recipients, messages = state.day[lease.bucket]
        state.day[lease.bucket] = (max(0, recipients - unsent_recipients), max(0, messages - unsent_messages))


def slow_down(state: ShaperState, pause: float, now: float) -> float:
    """A throttle reply: pause the mailbox and halve its rate; returns when it may send again."""
    streak = state.streak + 1 if now - state.slowed_at < STREAK_RESET else 1
    pause = min(pause * 2 ** (streak - 1), max(pause, MAX_PAUSE))
    state.slow = max(MIN_SLOW, slow_factor(state, now) / 2)
    state.slowed_at = now
    state.streak = streak
    state.paused_until = max(state.paused_until, now + pause)
    return state.paused_until


# --- helpers -------------------------------------------------------------------------------------------------------

def _bucket(at: float) -> int:
    return math.floor(at / DAY_BUCKET)


def _add_done(state: ShaperState, at: float, count: int) -> None:
    at = math.ceil(at / RESOLUTION) * RESOLUTION
    for index, (when, n) in enumerate(state.done):
        if abs(when - at) < RESOLUTION / 2:
            state.done[index] = (when, n + count)
            return
    state.done.append((at, count))
    state.done.sort()


def _day_totals(state: ShaperState, now: float) -> tuple[int, int]:
    oldest = _bucket(now) - DAY_BUCKETS + 1
    counted = [counts for bucket, counts in state.day.items() if bucket >= oldest]
    return sum(r for r, _ in counted), sum(m for _, m in counted)


def _day_allows(limits: Limits, recipients: int, messages: int) -> bool:
    return recipients <= limits.recipients_per_day and (
        limits.messages_per_day is None or messages <= limits.messages_per_day)


def _rate_free_at(state: ShaperState, rate: int, now: float) -> float:
    """When the minute next has room for one more send."""
    excess = in_minute(state, now) - rate + 1
    if excess <= 0:
        return now
    recent = [at for at, n in state.done if at > now - WINDOW for _ in range(n)]
    if excess <= len(recent):
        return recent[excess - 1] + WINDOW
    return now + WINDOW  # the rest are open sends: each counts until a minute after it completes


def _day_free_at(state: ShaperState, limits: Limits, recipients: int, now: float) -> float:
    """When the day window has room for one more message of `recipients`."""
    total_r, total_m = _day_totals(state, now)
    if _day_allows(limits, total_r + recipients, total_m + 1):
        return now
    for bucket in sorted(b for b in state.day if b >= _bucket(now) - DAY_BUCKETS + 1):
        r, m = state.day[bucket]
        total_r, total_m = total_r - r, total_m - m
        if _day_allows(limits, total_r + recipients, total_m + 1):
            return (bucket + DAY_BUCKETS) * DAY_BUCKET
    return now + DAY


def _turns(state: ShaperState, limits: Limits, asks: list[Ask], waiting: list[int], rate: int,
           now: float) -> tuple[dict[int, float], dict[int, float]]:
    """When each waiting ask looks again, and the new turns: a due one at the next free slot (keeping its turn), a
    new one when the slot of the `rate`-th latest send or turn frees (a minute after it), and a minute / `rate` away
    from every other turn: the line goes out evenly paced, not in waves of `rate` at once."""
    if not waiting:
        return {}, {}
    base = max(now, state.paused_until, _rate_free_at(state, rate, now))
    # The slots taken: the turns given (a turn keeps its slot on the grid whenever its send completes), and the
    # sends made without a turn, done or still open.
    occupied = sorted(state.unturned + [now] * sum(lease.open_unturned for lease in state.leases.values())
                      + state.line)
    waits: dict[int, float] = {}
    booked: dict[int, float] = {}
    for i in waiting:
        ready = max(base, _day_free_at(state, limits, asks[i].recipients, now))
        if asks[i].due:
            waits[i] = ready
            continue
        slot = occupied[-rate] + WINDOW + RESOLUTION if len(occupied) >= rate else now
        waits[i] = booked[i] = _paced(state.line, max(ready, slot), WINDOW / rate)
        bisect.insort(occupied, booked[i])
        bisect.insort(state.line, booked[i])
    state.line = state.line[-limits.messages_per_minute:]  # the latest turns are all a new one depends on
    return waits, booked


def _paced(line: list[float], earliest: float, spacing: float) -> float:
    """The first time from `earliest` that is `spacing` away from every turn in the (sorted) line: after the turns
    close to it, or in a gap before a far one (given under a lower limit, say)."""
    at = earliest
    for turn in line:
        if turn <= at - spacing:
            continue
        if turn >= at + spacing:
            break
        at = turn + spacing
    return at
