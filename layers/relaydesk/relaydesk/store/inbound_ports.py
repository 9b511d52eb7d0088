"""The two stores inbound needs beyond the shared ones: its processing ledger and a shared counter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class InboundLedger(Protocol):
    """One record per SES message id: the decision taken (JSON), written once, then marked done."""

    def get(self, ses_message_id: str) -> tuple[str, bool] | None: ...  # (decision JSON, done)
    def claim(self, ses_message_id: str, decision_json: str) -> str: ...  # the first decision written wins
    def complete(self, ses_message_id: str) -> None: ...


class Counters(Protocol):
    """Shared counters that count each event once: a retried invocation must not count its message again."""

    def count_once(self, key: str, event_id: str, expires_at: int) -> int:
        """Adds one to `key` for `event_id` and returns the new value, atomically; for an `event_id` already counted
        under `key`, adds nothing and returns the value that event got then. Both expire at `expires_at`."""
        ...


class DeadLetters(Protocol):
    """The inbound DLQ (Lambda's on-failure destination)."""

    def receive(self, max_messages: int = 10) -> list[tuple[str, str]]: ...  # (receipt handle, body)
    def delete(self, receipt_handle: str) -> None: ...
    def release(self, receipt_handle: str) -> None: ...  # visible again at once, for the next reader


@dataclass(frozen=True)
class InboundPorts:
    ledger: InboundLedger
    counters: Counters
