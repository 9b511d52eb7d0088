"""What happened in the local stack, in order, so the demo and tests can wait for a step instead of sleeping."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    kind: str  # "forwarded" | "inbound" | "relay" | "ses" | "inbound_failed"
    data: dict[str, Any]
    at: float = field(default_factory=time.time)


class Journal:
    def __init__(self) -> None:
        self._entries: list[Entry] = []
        self._changed = threading.Condition()

    def record(self, kind: str, **data: Any) -> None:
        with self._changed:
            self._entries.append(Entry(kind, data))
            self._changed.notify_all()

    def entries(self, kind: str | None = None) -> list[Entry]:
        with self._changed:
            return [e for e in self._entries if kind is None or e.kind == kind]

    def wait_for(self, kind: str, predicate: Callable[[Entry], bool] = lambda entry: True, *,
                 timeout: float = 30.0, after: int = 0) -> Entry:
        """The first entry of `kind` (from index `after` on) matching `predicate`; TimeoutError when none came."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in self._entries[after:]:
                    if entry.kind == kind and predicate(entry):
                        return entry
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {kind} step within {timeout:.0f} s")
                self._changed.wait(remaining)

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)
