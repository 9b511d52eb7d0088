"""Warm connection reuse: authenticated smarthost connections kept between invocations of a warm container.

An aiosmtplib connection belongs to the event loop it was opened on, so every connector conversation runs on one
long-lived loop in a daemon thread (`run`); the smarthost threads of a batch wait on it. That loop keeps running
between invocations, so a connection the server closes while it idles is noticed (`connected` turns false).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from relaydesk.store.ports import PoolKey, Session

# RFC 5321 4.5.3.2.7 asks servers to wait 5 minutes for the next command and Postfix's smtpd_timeout is 300 s;
# hosted services (Exchange Online, Gmail) may drop an idle session sooner. A minute stays under all of them, and
# a connection closed sooner anyway is noticed before use or retried (before anything was accepted) on a new one.
MAX_IDLE_SECONDS = 60.0
MAX_POOLED = 24  # every connection of the smarthost groups a batch serves at once (8 groups, 3 connections each)

T = TypeVar("T")

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _event_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="relaydesk-smtp-loop", daemon=True).start()
            _loop = loop
        return _loop


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine on the connection loop and wait for it (the SMTP timeouts bound the wait)."""
    return asyncio.run_coroutine_threadsafe(coro, _event_loop()).result()


def discard(session: Session) -> None:
    """Close (QUIT) without waiting: nobody waits for a connection that is being let go."""
    asyncio.run_coroutine_threadsafe(session.close(), _event_loop())


class ConnectionPool:
    """The warm container's `SessionPool`: idle authenticated connections, at most `max_size`, each reused within
    `max_idle` seconds or closed."""

    def __init__(self, *, max_idle: float = MAX_IDLE_SECONDS, max_size: int = MAX_POOLED,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._max_idle = max_idle
        self._max_size = max_size
        self.clock = clock
        self._idle: list[tuple[PoolKey, float, Session]] = []
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._idle)

    def has(self, key: PoolKey) -> bool:
        """Whether an idle connection for `key` is waiting (it may still turn out closed or too old)."""
        with self._lock:
            return any(entry_key == key for entry_key, _, _ in self._idle)

    def take(self, key: PoolKey) -> Session | None:
        """A live idle connection for `key`, or None. Connections of the same secret under another version (the
        credentials changed), idle too long, or closed by the server are closed here."""
        now = self.clock()
        found: Session | None = None
        dropped: list[Session] = []
        with self._lock:
            kept = []
            for entry in self._idle:
                entry_key, since, session = entry
                if (entry_key.secret_id == key.secret_id and entry_key.version_id != key.version_id) \
                        or now - since > self._max_idle or not session.connected:
                    dropped.append(session)
                elif found is None and entry_key == key:
                    found = session
                else:
                    kept.append(entry)
            self._idle = kept
        for session in dropped:
            discard(session)
        return found

    def give(self, key: PoolKey, session: Session) -> None:
        """Keep a connection that is still open for the next invocation; the oldest goes when the pool is full."""
        if not session.connected:
            discard(session)
            return
        with self._lock:
            self._idle.append((key, self.clock(), session))
            excess = len(self._idle) - self._max_size
            dropped = [s for _, _, s in self._idle[:max(excess, 0)]]
            del self._idle[:max(excess, 0)]
        for old in dropped:
            discard(old)

    def forget(self, secret_id: str) -> None:
        """After a refusal of the credentials: no connection of this secret is reused, whatever its version."""
        self._drop(lambda key: key.secret_id == secret_id)

    def close(self) -> None:
        self._drop(lambda key: True)

    def _drop(self, match: Callable[[PoolKey], bool]) -> None:
        with self._lock:
            dropped = [s for k, _, s in self._idle if match(k)]
            self._idle = [e for e in self._idle if not match(e[0])]
        for session in dropped:
            discard(session)
