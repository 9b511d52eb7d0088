"""Store access from the relay's smarthost threads, one call at a time: boto3 resources (the DynamoDB tables
behind the stores) are not thread-safe, while the SMTP conversations they sit between run concurrently."""

from __future__ import annotations

import threading
from dataclasses import fields, replace
from typing import Any

from relaydesk.store.ports import Stores


class Serialized:
    """Every method call on `target` holds `lock`; attributes that are not callable pass through."""

    def __init__(self, target: Any, lock: threading.RLock) -> None:
        self._target = target
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


def serialized(stores: Stores) -> Stores:
    """The same stores, each behind one shared lock (settings untouched)."""
    if getattr(stores, "_serialized", False):
        return stores
    lock = threading.RLock()
    changes = {f.name: Serialized(getattr(stores, f.name), lock) for f in fields(stores)
               if f.name != "settings" and getattr(stores, f.name) is not None}
    result = replace(stores, **changes)
    object.__setattr__(result, "_serialized", True)
    return result
