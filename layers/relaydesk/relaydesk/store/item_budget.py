"""DynamoDB's limits on what one write may hold, enforced in one place before the write is sent: an item of at most
400,000 bytes, a partition key of at most 2048 bytes, a sort key of at most 1024 bytes, a transaction of at most 100
items and 4 MB. Both the DynamoDB adapters and the in-memory fakes check every item they store here, so a unit test
meets the same limit as production. Sizes follow DynamoDB's documented rules ("Item sizes and formats")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from relaydesk.errors import ItemTooLargeError

ITEM_BYTES = 400_000  # "400 KB" read the strict way: DynamoDB has been measured to take ~409 KB, moto 405,000
PARTITION_KEY_BYTES = 2048
SORT_KEY_BYTES = 1024
TRANSACTION_ITEMS = 100
TRANSACTION_BYTES = 4 * 1024 * 1024
KEY_SHOWN_CHARS = 60  # of a key in an error: enough to find the item, never a whole sender-controlled value


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def value_size(value: Any) -> int:
    if isinstance(value, str):
        return _utf8(value)
    if isinstance(value, bytes | bytearray):
        return len(value)
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float | Decimal):
        digits = str(abs(value)).replace(".", "").lstrip("0").rstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1  # one byte per two significant digits, plus one
    if isinstance(value, Mapping):
        return 3 + sum(1 + _utf8(str(k)) + value_size(v) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return sum(value_size(v) for v in value)
    if isinstance(value, list | tuple):
        return 3 + sum(1 + value_size(v) for v in value)
    raise TypeError(f"not a DynamoDB value: {type(value).__name__}")


def item_size(item: Mapping[str, Any]) -> int:
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def _shown(item: Mapping[str, Any], key_names: tuple[str, ...]) -> str:
    return "/".join(str(item.get(name, ""))[:KEY_SHOWN_CHARS] for name in key_names if name in item)


def check_key(key: Mapping[str, Any], partition: str = "pk", sort: str = "sk") -> Mapping[str, Any]:
    for name, limit in ((partition, PARTITION_KEY_BYTES), (sort, SORT_KEY_BYTES)):
        if name in key:
            size = value_size(key[name])
            if size > limit:
                raise ItemTooLargeError(f"the {name} of {_shown(key, (partition, sort))} is {size:,} bytes, over "
                                        f"DynamoDB's {limit:,}", size=size, limit=limit)
    return key


def check_item(item: Mapping[str, Any], partition: str = "pk", sort: str = "sk") -> Mapping[str, Any]:
    """The item itself, when DynamoDB would store it; else ItemTooLargeError, naming the key (cut) and the sizes."""
    check_key(item, partition, sort)
    size = item_size(item)
    if size > ITEM_BYTES:
        raise ItemTooLargeError(f"item {_shown(item, (partition, sort))} is {size:,} bytes, over DynamoDB's "
                                f"{ITEM_BYTES:,}", size=size, limit=ITEM_BYTES)
    return item


def check_transaction(items: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    checked = [check_item(item) for item in items]
    total = sum(item_size(item) for item in checked)
    if len(checked) > TRANSACTION_ITEMS or total > TRANSACTION_BYTES:
        raise ItemTooLargeError(f"a transaction of {len(checked)} items and {total:,} bytes is over DynamoDB's "
                                f"{TRANSACTION_ITEMS} items / {TRANSACTION_BYTES:,} bytes", size=total,
                                limit=TRANSACTION_BYTES)
    return checked
