"""What EventBridge schedules do for the functions with `Schedule` events in template.yaml: invoke each at its rate,
with its input, for as long as the local stack runs (`aws_resources.schedules`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Schedules:
    """One thread; `entries` are `aws_resources.schedules()`; `invoke(function, event)` runs one invocation."""

    def __init__(self, entries: list[dict], invoke: Callable[[str, dict], object]) -> None:
        self.entries = entries
        self.invoke = invoke
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Schedules:
        self._thread = threading.Thread(target=self._loop, name="schedules", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        waited = 0
        while not self._stop.wait(1):
            waited += 1
            for entry in self.entries:
                if waited % entry["seconds"] == 0:
                    try:
                        self.invoke(entry["function"], entry["event"])
                    except Exception:  # a failed run is logged; the next one comes at the next period
                        log.exception("scheduled run of %s failed", entry["function"])
