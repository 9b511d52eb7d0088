"""Exactly once per notification id: a claim before anything is sent, the final outcome stored before the SQS
message is released. In DynamoDB in the Lambda (`relaydesk.store.once_dynamodb`), in a dict in unit tests.

- `claim(id)`: the notification is this invocation's for the in-progress window, which is longer than the queue's
  visibility timeout (so a message that comes back after the timeout finds it still held). A stored final outcome
  comes back instead (`Claim.stored`): it is replayed and nothing is sent. Held by another invocation:
  `AlreadyInProgress`, with the end of its window. A claim whose window ran out without an outcome (its invocation
  was stopped) is taken over (`Claim.taken_over`): the relay then looks at the ticket's delivery record before it
  sends, because the stopped invocation may have recorded an outcome there.
- `complete(claim, outcome)`: the final outcome (delivered, failed), kept for the expiry. Writing it again with the
  same claim succeeds, so a write whose response was lost is simply retried.
- `release(claim)`: a deferral or a hold stores nothing; the claim is dropped so the next attempt may send.
- `stored(id)`: the final outcome, if one was stored (`relaydesk dlq redrive` asks).
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from relaydesk.errors import RelaydeskError

# The notifications queue keeps a message 4 days and the DLQ 14 (template.yaml): no copy of a notification can reach
# the relay later than that after its first attempt, except through `dlq redrive`, which checks the stored outcome
# and the ticket first.
DEFAULT_EXPIRY_SECONDS = (4 + 14) * 24 * 3600
# Longer than the queue's visibility timeout (370 s) plus the relay's timeout (60 s): see template.yaml.
DEFAULT_IN_PROGRESS_SECONDS = 430


class AlreadyInProgress(RelaydeskError):
    """Another invocation holds this notification for `wait` more seconds; try again after that."""

    code = "already_in_progress"

    def __init__(self, notification_id: str, wait: float) -> None:
        super().__init__(f"notification {notification_id} is being delivered by another invocation")
        self.wait = max(0.0, wait)


class ClaimLost(RelaydeskError):
    """The claim was taken over by another invocation before this one stored its outcome: its window was shorter
    than this invocation's life, which the template's settings rule out."""

    code = "claim_lost"


@dataclass(frozen=True)
class Claim:
    notification_id: str
    token: str = ""
    stored: dict | None = None  # a final outcome stored earlier: replay it, send nothing
    taken_over: bool = False  # an earlier claim ran out without an outcome


def new_token() -> str:
    return secrets.token_hex(8)


class OnceGuard(Protocol):
    def claim(self, notification_id: str) -> Claim: ...

    def complete(self, claim: Claim, outcome: dict) -> None: ...

    def release(self, claim: Claim) -> None: ...

    def stored(self, notification_id: str) -> dict | None: ...


@dataclass
class _Held:
    token: str
    until: float
    outcome: dict | None = None


class MemoryOnce:
    """The guard in a dict, with the same rules as the DynamoDB one; `now` lets a test move time on."""

    def __init__(self, *, in_progress_seconds: float = DEFAULT_IN_PROGRESS_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        self.in_progress_seconds = in_progress_seconds
        self.now = now
        self._items: dict[str, _Held] = {}
        self._lock = threading.Lock()

    @property
    def completed(self) -> dict[str, dict]:
        return {key: held.outcome for key, held in self._items.items() if held.outcome is not None}

    def claim(self, notification_id: str) -> Claim:
        with self._lock:
            held = self._items.get(notification_id)
            now = self.now()
            if held is not None and held.outcome is not None:
                return Claim(notification_id, stored=held.outcome)
            if held is not None and held.until > now:
                raise AlreadyInProgress(notification_id, held.until - now)
            token = new_token()
            self._items[notification_id] = _Held(token, now + self.in_progress_seconds)
            return Claim(notification_id, token, taken_over=held is not None)

    def complete(self, claim: Claim, outcome: dict) -> None:
        with self._lock:
            held = self._items.get(claim.notification_id)
            if held is None or held.token != claim.token:
                raise ClaimLost(f"the claim on {claim.notification_id} was taken over")
            held.outcome = outcome

    def release(self, claim: Claim) -> None:
        with self._lock:
            held = self._items.get(claim.notification_id)
            if held is not None and held.token == claim.token and held.outcome is None:
                del self._items[claim.notification_id]

    def stored(self, notification_id: str) -> dict | None:
        with self._lock:
            held = self._items.get(notification_id)
            return held.outcome if held is not None else None
