"""What happened to one notification (`Result`) and to its SQS record (`RecordResult`, `BatchItem`)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from relaydesk.errors import SmtpDeliveryError
from relaydesk.notification import Notification
from relaydesk.outbound.policy import Outcome, classify_error
from relaydesk.store.ports import CARRY_ATTRIBUTES, QueueCarry
from relaydesk.tickets.model import RecipientOutcome

WAITS = (Outcome.WAITING, Outcome.THROTTLED)  # queued again by the relay for the mailbox's next turn


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
                   refused=list(error.refused))


@dataclass
class RecordResult:
    """One SQS record's fate. `retry_in` is set when SQS keeps it: the visibility delay before the next attempt (a
    deferral, or an outcome not stored yet). `last_attempt`: deferred at its last attempt, its reason on the ticket:
    it moves to the dead-letter queue."""

    message_id: str
    receipt_handle: str
    receive_count: int
    notification: Notification | None
    result: Result
    retry_in: int | None = None
    last_attempt: bool = False
    latency_ms: float = 0.0
    body: str = ""  # the SQS body as received: what the DLQ gets
    settled: bool = False  # the relay queued it again itself (its turn): delete this one
    requeue_in: int | None = None  # a wait: seconds until the new SQS message is visible

    @property
    def failed(self) -> bool:
        """Not released: reported in batchItemFailures (SQS keeps it), or moved to the DLQ."""
        return not self.settled and (self.retry_in is not None or self.last_attempt)


@dataclass
class BatchItem:
    """One SQS record on its way through a batch."""

    record: dict
    notification: Notification | None
    started: float = field(default_factory=time.perf_counter)
    result: Result | None = None
    suppressed: list[RecipientOutcome] = field(default_factory=list)  # recipients left out, and why
    attempted: bool = True  # False: deferred without trying (out of time, held by another invocation, ...)
    durable: bool = True  # False: the outcome (or a last attempt's reason) is not stored yet
    retry_after: float | None = None  # seconds: not before then (the end of another invocation's claim)
    gave_up: bool = False  # deferred for good before its attempts ran out (it waited too long): to the DLQ
    turn: Any = None  # its mailbox's turn in this batch (outbound/turns.py), when the shaper admitted it
    wait_until: float | None = None  # when it waits: when to look again, on the shaper's clock
    booking: float | None = None  # the turn the shaper gave it, carried to its next SQS message
    waited: bool = False  # it started waiting in this batch: its ticket is told once, after the batch's sends
    settled: bool = False  # queued again as a new SQS message for its turn

    @property
    def receive_count(self) -> int:
        return int(self.record.get("attributes", {}).get("ApproximateReceiveCount", "1"))

    @property
    def carry(self) -> QueueCarry:
        return carry_of(self.record.get("messageAttributes") or {})

    @property
    def attempt(self) -> int:
        """Which delivery attempt this is: those carried from earlier SQS messages, then this message's receives."""
        return self.carry.attempts + self.receive_count


def carry_of(message_attributes: dict[str, Any]) -> QueueCarry:
    """What an SQS record carries (Lambda's event shape, `stringValue`); anything unreadable counts as absent."""

    def number(name: str) -> float | None:
        raw = (message_attributes.get(name) or {}).get("stringValue") if isinstance(message_attributes, dict) \
            else None
        try:
            value = float(raw) if isinstance(raw, str) and len(raw) < 32 else None
        except ValueError:
            return None
        return value if value is not None and 0 <= value < 1e11 else None

    attempts = number(CARRY_ATTRIBUTES["attempts"])
    return QueueCarry(attempts=min(int(attempts or 0), 1000), waiting_since=number(CARRY_ATTRIBUTES["waiting_since"]),
                      turn_at=number(CARRY_ATTRIBUTES["turn_at"]))


def not_attempted(item: BatchItem, why: str) -> None:
    """Deferred without trying (out of time, held elsewhere, a store failing before anything was sent): it waits
    without using up an attempt's meaning."""
    item.result = Result(Outcome.DEFERRED, reply=f"not attempted: {why}; retried later")
    item.attempted = False
