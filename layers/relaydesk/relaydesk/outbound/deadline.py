"""The invocation's clock as the relay's sends see it: no transaction starts that could outlive the invocation, and
no end of data is sent so late that its outcome could not be stored before the invocation ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from relaydesk.outbound.result import BatchItem, not_attempted
from relaydesk.outbound.smtp import Timeouts

TIME_MARGIN_MS = 3000  # for recording outcomes and answering SQS after the last transaction


@dataclass(frozen=True)
class Deadline:
    """`remaining_ms`: the invocation's time left (None: no invocation clock, as in unit tests and the CLI)."""

    timeouts: Timeouts
    remaining_ms: Callable[[], int] | None = None

    def out_of_time(self, item: BatchItem) -> bool:
        """True (and the item deferred, untouched) when a slow server could outlive the invocation now."""
        if self.remaining_ms is None:
            return False
        worst = (self.timeouts.command + self.timeouts.data) * 1000  # a stall at MAIL or after the final dot
        if self.remaining_ms() > worst + TIME_MARGIN_MS:
            return False
        not_attempted(item, "the invocation was about to time out")
        return True

    def end_of_data(self) -> float | None:
        """`time.monotonic()` by which the server's answer to the end of data must have come, so that the outcome
        can still be stored before the invocation ends: no end of data is sent later than the data timeout before
        it. None: no invocation clock."""
        if self.remaining_ms is None:
            return None
        return time.monotonic() + (self.remaining_ms() - TIME_MARGIN_MS) / 1000
