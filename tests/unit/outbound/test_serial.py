"""Smarthost threads share the stores one call at a time (boto3 resources are not thread-safe)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from relaydesk.outbound.serial import serialized


class SlowDirectory:
    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self._count = threading.Lock()

    def get_address(self, email: str) -> str:
        with self._count:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.01)
        with self._count:
            self.inside -= 1
        return email


def test_concurrent_store_calls_never_overlap(memory_stores):
    from dataclasses import replace

    directory = SlowDirectory()
    stores = serialized(replace(memory_stores, directory=directory))
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(stores.directory.get_address, [f"a{i}@acme.test" for i in range(16)]))
    assert found == [f"a{i}@acme.test" for i in range(16)]
    assert directory.most_inside == 1
    assert stores.settings is memory_stores.settings
