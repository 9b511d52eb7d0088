"""One shaper per mailbox, shared by every relay invocation: `outbound/shaping.py`'s arithmetic on a state item that
every change replaces with a conditional write (`store/ports.py` ShaperStates; DynamoDB in AWS).

A write that lost a race gets the winner's state back and is computed again on it; the last state this container
wrote is kept, so a change costs one write when nobody else wrote in between, two when somebody did.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from relaydesk.addresses.providers import Limits
from relaydesk.errors import ShaperBusyError
from relaydesk.outbound import shaping
from relaydesk.outbound.shaping import Ask, ShaperState, Turn
from relaydesk.store.ports import ShaperStates, StoredState

MAX_TRIES = 8  # conditional writes lost in a row before a batch gives up its turn (it waits, and tries again)
Result = TypeVar("Result")


class ShaperClock(Protocol):
    """The shaper's seconds. `real_seconds` turns a span of them into wall-clock seconds (SQS delays, sleeps)."""

    def now(self) -> float: ...
    def real_seconds(self, seconds: float) -> float: ...
    def shaper_seconds(self, real: float) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def shaper_seconds(self, real: float) -> float:
        return real


class ScaledClock:
    """A clock `factor` times faster than the wall, for tests and the bench: a minute passes in 60/factor seconds.
    It reads the wall clock from the common `start`, so every relay worker and the local smarthost (same factor,
    same start) agree on every minute and day, whenever each was built."""

    def __init__(self, factor: float, *, start: float | None = None) -> None:
        self.factor = factor
        self.start = time.time() if start is None else start

    def now(self) -> float:
        return self.start + (time.time() - self.start) * self.factor

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.factor

    def shaper_seconds(self, real: float) -> float:
        return real * self.factor


def mailbox_key(host: str, username: str) -> str:
    """What the provider counts is the mailbox that signs in, at its smarthost: two support addresses that sign in
    as one mailbox share its limits. Hashed: the item key carries no address."""
    digest = hashlib.sha256(f"{host.strip().lower()}|{username.strip().lower()}".encode()).hexdigest()[:32]
    return f"SHAPER#{digest}"


class Shaper:
    def __init__(self, states: ShaperStates, clock: ShaperClock | None = None) -> None:
        self.states = states
        self.clock = clock or SystemClock()
        self._seen: dict[str, StoredState] = {}  # the last state read or written per key, in this container
        self._lock = threading.Lock()

    def take(self, key: str, limits: Limits, asks: list[Ask], *, lease_id: str, lease_seconds: float) -> Turn:
        """A turn for a batch's notifications of one mailbox: which go now (under a connection lease), when the
        others' turns come."""
        return self._change(key, lambda state, now: shaping.admit(state, limits, asks, now, lease_id=lease_id,
                                                                   lease_seconds=lease_seconds))

    def lease_connections(self, key: str, limits: Limits, *, lease_ids: list[str], lease_seconds: float,
                          ) -> list[str]:
        """Leases for a batch's further connections to the mailbox: the ones of `lease_ids` granted."""
        return self._change(key, lambda state, now: shaping.lease_connections(
            state, limits, now, lease_ids=lease_ids, lease_seconds=lease_seconds))

    def give_back(self, key: str, lease: str, completions: list[float], *, sent_recipients: int,
                  connections: tuple[str, ...] = ()) -> None:
        self._change(key, lambda state, now: shaping.release(state, lease, completions,
                                                             sent_recipients=sent_recipients, now=now,
                                                             connections=connections))

    def slow_down(self, key: str, pause: float) -> float:
        """A throttle reply: the mailbox pauses and slows; returns when it may send again."""
        return self._change(key, lambda state, now: shaping.slow_down(state, pause, now))

    def _change(self, key: str, change: Callable[[ShaperState, float], Result]) -> Result:
        with self._lock:
            stored = self._seen.get(key)
        if stored is None:
            stored = self.states.read(key)
        for _ in range(MAX_TRIES):
            state = ShaperState.model_validate_json(stored.body) if stored.body else ShaperState()
            result = change(state, self.clock.now())
            body = state.model_dump_json()
            if body == stored.body:  # nothing changed (all connections taken, say): nothing to write, and the
                with self._lock:     # next change reads afresh (this view may be the stale one)
                    self._seen.pop(key, None)
                return result
            current = self.states.write(key, body, stored.version)
            if current is None:
                with self._lock:
                    self._seen[key] = StoredState(body, stored.version + 1)
                return result
            stored = current
        with self._lock:
            self._seen.pop(key, None)
        raise ShaperBusyError(f"the sending limit's state of {key} changed {MAX_TRIES} times while being updated")
