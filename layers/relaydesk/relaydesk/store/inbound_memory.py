"""In-memory fakes of inbound's ledger, counters and dead-letter queue, for unit tests."""

from __future__ import annotations

import itertools
import threading

from relaydesk.store.item_budget import check_item, check_key
from relaydesk.store.ticket_items import ledger_item


class MemoryLedger:
    def __init__(self) -> None:
        self.records: dict[str, tuple[str, bool]] = {}
        self._lock = threading.Lock()

    def get(self, ses_message_id: str) -> tuple[str, bool] | None:
        return self.records.get(ses_message_id)

    def claim(self, ses_message_id: str, decision_json: str) -> str:
        check_item(ledger_item(ses_message_id, decision_json))  # the same limit as the DynamoDB ledger
        with self._lock:  # the conditional put: the first decision wins
            return self.records.setdefault(ses_message_id, (decision_json, False))[0]

    def complete(self, ses_message_id: str) -> None:
        decision, _ = self.records[ses_message_id]
        self.records[ses_message_id] = (decision, True)


class MemoryCounters:
    """The same semantics as the DynamoDB counters: one count per (key, event id), the value it got remembered."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.expiry: dict[str, int] = {}
        self.counted: dict[tuple[str, str], int] = {}  # (key, event id) -> the value that event got
        self._lock = threading.Lock()

    def count_once(self, key: str, event_id: str, expires_at: int) -> int:
        check_key({"pk": f"counted#{key}#{event_id}"})  # the DynamoDB counters' marker key
        with self._lock:  # the transaction: marker and counter change together or not at all
            if (key, event_id) in self.counted:
                return self.counted[key, event_id]
            self.values[key] = self.values.get(key, 0) + 1
            self.expiry[key] = expires_at
            self.counted[key, event_id] = self.values[key]
            return self.values[key]


class MemoryDeadLetters:
    def __init__(self, bodies: list[str] | None = None) -> None:
        self._ids = itertools.count(1)
        self.messages: dict[str, str] = {f"h{next(self._ids)}": b for b in bodies or []}
        self.released: list[str] = []

    def add(self, body: str) -> None:
        self.messages[f"h{next(self._ids)}"] = body

    def receive(self, max_messages: int = 10) -> list[tuple[str, str]]:
        return list(self.messages.items())[:max_messages]

    def delete(self, receipt_handle: str) -> None:
        self.messages.pop(receipt_handle, None)

    def release(self, receipt_handle: str) -> None:
        self.released.append(receipt_handle)
