"""A provider's sending limits, enforced by the local smarthost per signed-in mailbox, with time scaled by a factor
(a minute passes in 60/factor seconds), answering over-limit traffic as Microsoft 365 does:

- more than `connections` transactions of one mailbox at once: ``432 4.3.2 Concurrent connections limit exceeded``
  at MAIL FROM (Exchange Online's "sender thread limit");
- more than `messages_per_minute` messages taken in any minute: Exchange Online accepts and delays the excess
  ("carried over to the following minutes"): the message is accepted and counted as throttled;
- more than `recipients_per_day` recipients in any 24 hours: ``554 5.2.0 STOREDRV.Submission.Exception:
  SubmissionQuotaExceededException`` after the data, nothing accepted;
- more than `recipients_per_message` recipients: ``452 4.5.3 Too many recipients`` at the RCPT over the limit
  (RFC 5321 4.5.3.1.10; the client sends the rest in another transaction).

Every over-limit event is kept in `events`, so a test asserts there were none. learn.microsoft.com/exchange/
troubleshoot/send-emails/smtp-submission-improvements gives the limits and the two replies.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

CONCURRENT = "432 4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending for more " \
             "information."
DAILY = ("554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due "
         "to a permanent exception with message [BeginDiagnosticData]Cannot submit message.[EndDiagnosticData]")
TOO_MANY_RECIPIENTS = "452 4.5.3 Too many recipients"
MINUTE = 60.0
DAY = 86_400.0


@dataclass
class LimitEvent:
    kind: str  # "connections" | "minute" | "day" | "recipients"
    user: str
    at: float  # the server's (scaled) clock
    reply: str  # what the client was told ("250 ... (delayed)" for the minute's carried-over excess)


@dataclass
class SendingLimits:
    messages_per_minute: int | None = None
    recipients_per_day: int | None = None
    recipients_per_message: int | None = None
    connections: int | None = None
    time_scale: float = 1.0
    start: float | None = None  # the scaled clock's epoch at start (the shaper's ScaledClock takes the same)
    events: list[LimitEvent] = field(default_factory=list)
    taken: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))  # user -> (at, rcpts)

    def __post_init__(self) -> None:
        self.start = time.time() if self.start is None else self.start
        self._active: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def now(self) -> float:
        """Scaled from the wall clock at `start`, as the relay's ScaledClock with the same start reads it."""
        return self.start + (time.time() - self.start) * self.time_scale  # type: ignore[operator]

    # --- the hooks the smarthost calls ---------------------------------------------------------------------------
    def begin(self, user: str) -> str | None:
        """MAIL FROM: a transaction of `user` starts, unless too many already run (the reply to send then)."""
        with self._lock:
            if self.connections is not None and self._active[user] >= self.connections:
                self.events.append(LimitEvent("connections", user, self.now(), CONCURRENT))
                return CONCURRENT
            self._active[user] += 1
            return None

    def end(self, user: str) -> None:
        """The transaction is over (the end of data answered, RSET, or the connection lost)."""
        with self._lock:
            self._active[user] = max(0, self._active[user] - 1)

    def recipient(self, user: str, already: int) -> str | None:
        if self.recipients_per_message is not None and already >= self.recipients_per_message:
            with self._lock:
                self.events.append(LimitEvent("recipients", user, self.now(), TOO_MANY_RECIPIENTS))
            return TOO_MANY_RECIPIENTS
        return None

    def complete(self, user: str, recipients: int) -> str | None:
        """The end of data: the refusal to send, or None (taken; counted as throttled when over the minute)."""
        with self._lock:
            now = self.now()
            taken = self.taken[user]
            if self.recipients_per_day is not None and \
                    self._in_window(taken, now, DAY, recipients=True) + recipients > self.recipients_per_day:
                self.events.append(LimitEvent("day", user, now, DAILY))
                return DAILY
            if self.messages_per_minute is not None and \
                    self._in_window(taken, now, MINUTE) >= self.messages_per_minute:
                self.events.append(LimitEvent("minute", user, now, "250 accepted, delivery delayed"))
            taken.append((now, recipients))
            return None

    # --- what a test reads ---------------------------------------------------------------------------------------
    def most_in_a_minute(self, user: str) -> int:
        times = [at for at, _ in self.taken[user]]
        return max((bisect.bisect_right(times, t) - bisect.bisect_right(times, t - MINUTE) for t in times),
                   default=0)

    def most_recipients_in_a_day(self, user: str) -> int:
        taken = self.taken[user]
        return max((self._in_window(taken[:i + 1], at, DAY, recipients=True) for i, (at, _) in enumerate(taken)),
                   default=0)

    def report(self) -> dict:
        """Plain data (for a benchmark's smarthost process): events by kind, and per user the figures above."""
        kinds: dict[str, int] = defaultdict(int)
        for event in self.events:
            kinds[event.kind] += 1
        return {"events": dict(kinds), "users": {user: {
            "taken": [at for at, _ in taken], "most_in_a_minute": self.most_in_a_minute(user),
            "most_recipients_in_a_day": self.most_recipients_in_a_day(user)} for user, taken in self.taken.items()}}

    @staticmethod
    def _in_window(taken: list[tuple[float, int]], now: float, window: float, *, recipients: bool = False) -> int:
        return sum(r if recipients else 1 for at, r in taken if now - window < at <= now)


def microsoft365(time_scale: float = 1.0, start: float | None = None) -> SendingLimits:
    """Exchange Online's SMTP AUTH limits per mailbox: 30 messages a minute, 10,000 recipients a day, three
    concurrent connections, 500 recipients per message (the default)."""
    return SendingLimits(messages_per_minute=30, recipients_per_day=10_000, recipients_per_message=500,
                         connections=3, time_scale=time_scale, start=start)
