"""Make the in-process moto server behave like DynamoDB under concurrent requests.

moto runs a DynamoDB transaction by deep-copying every table it touches and, when any part fails (a condition, a
conflict), putting the copies back: whatever another request wrote to those tables meanwhile is undone, and a
table being copied while another thread writes it raises ("dictionary changed size during iteration", a 500).
DynamoDB is atomic per transaction and per item, and never undoes unrelated writes. Under the chaos suite's
concurrency those moto artefacts lose tickets and records the product wrote correctly, so the harness:

- runs one DynamoDB request at a time (a lock around moto's DynamoDB handler): every request then sees and leaves
  a consistent state, as DynamoDB's per-item serialisation guarantees;
- snapshots and restores only the items a transaction touches, instead of whole tables (also O(items) instead of
  O(table) per transaction).
"""

from __future__ import annotations

import copy
import threading
import types
from typing import Any

_lock = threading.RLock()
_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.dynamodb import models as dynamodb_models
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    original_call = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _lock:
            return original_call(self)

    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def deepcopy_but_tables(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    shim = types.SimpleNamespace(**{name: getattr(copy, name) for name in dir(copy) if not name.startswith("__")})
    shim.deepcopy = deepcopy_but_tables
    dynamodb_models.copy = shim  # the whole-table backup in transact_write_items becomes a reference

    backend = dynamodb_models.DynamoDBBackend
    original_transact = backend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        touched = []
        for item in transact_items:
            _, op = next(iter(item.items()))
            table = self.tables.get(op.get("TableName", ""))
            if table is None:
                continue
            keys = op.get("Key") or {name: op["Item"][name] for name in (table.hash_key_attr, table.range_key_attr)
                                     if name and name in op.get("Item", {})}
            try:
                hash_key, range_key = self.get_keys_value(table, keys)
            except Exception:  # noqa: BLE001, S112  (moto raises its own validation error for it below)
                continue
            touched.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        try:
            original_transact(self, transact_items)
        except BaseException:
            for table, hash_key, range_key, before in reversed(touched):
                _put_back(table, hash_key, range_key, before)
            raise

    backend.transact_write_items = transact_write_items
    _applied = True


def _put_back(table: Any, hash_key: Any, range_key: Any, before: Any) -> None:
    if before is None:
        table.delete_item(hash_key, range_key)
    elif range_key is not None:
        table.items[hash_key][range_key] = before
    else:
        table.items[hash_key] = before
