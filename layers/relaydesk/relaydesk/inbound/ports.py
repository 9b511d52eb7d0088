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
    def increment(self, key: str, expires_at: int) -> int: ...  # atomic; returns the new value


class DeadLetters(Protocol):
    """The inbound DLQ (Lambda's on-failure destination)."""

    def receive(self, max_messages: int = 10) -> list[tuple[str, str]]: ...  # (receipt handle, body)
    def delete(self, receipt_handle: str) -> None: ...
    def release(self, receipt_handle: str) -> None: ...  # visible again at once, for the next reader


@dataclass(frozen=True)
class InboundPorts:
    ledger: InboundLedger
    counters: Counters
