"""SQS adapter for the notifications queue. Every message's MessageGroupId is its account: on a standard queue that
makes it an SQS fair queue, where one account's backlog does not hold back the others' (docs/DELIVERY.md)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.notification import Notification
from relaydesk.store.ports import CARRY_ATTRIBUTES, QueueCarry, Requeued

MAX_DELAY_SECONDS = 900  # SQS DelaySeconds upper bound
MAX_BATCH = 10  # SQS SendMessageBatch upper bound
GROUP_ID = re.compile(r"[!-~]{1,128}")  # SQS MessageGroupId: 1-128 printable ASCII characters


def group_id(notification: Notification) -> str:
    return account_group(notification.account_id)


def account_group(account: str) -> str:
    return account if GROUP_ID.fullmatch(account) else hashlib.sha256(account.encode()).hexdigest()


def group_of_body(body: str) -> dict[str, str]:
    """`MessageGroupId` for a message body as the queue holds it (its account), or nothing when it is unreadable."""
    try:
        account = json.loads(body).get("account_id")
    except (ValueError, AttributeError):
        return {}
    return {"MessageGroupId": account_group(account)} if isinstance(account, str) and account else {}


def attributes(notification: Notification, carry: QueueCarry | None = None) -> dict[str, dict[str, str]]:
    found = {"notification_id": {"DataType": "String", "StringValue": notification.notification_id}}
    for field, name in CARRY_ATTRIBUTES.items():
        value = getattr(carry, field) if carry is not None else None
        if value:
            found[name] = {"DataType": "Number", "StringValue": repr(value)}
    return found


def _delay(seconds: int) -> int:
    return min(max(int(seconds), 0), MAX_DELAY_SECONDS)


class SqsNotificationQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, notification: Notification, delay_seconds: int = 0) -> None:
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=notification.model_dump_json(),
                                  DelaySeconds=_delay(delay_seconds), MessageGroupId=group_id(notification),
                                  MessageAttributes=attributes(notification))

    def requeue(self, entries: list[Requeued]) -> set[str]:
        failed: set[str] = set()
        for start in range(0, len(entries), MAX_BATCH):
            chunk = entries[start:start + MAX_BATCH]
            batch = [{"Id": str(i), "MessageBody": entry.notification.model_dump_json(),
                      "DelaySeconds": _delay(entry.delay_seconds), "MessageGroupId": group_id(entry.notification),
                      "MessageAttributes": attributes(entry.notification, entry.carry)}
                     for i, entry in enumerate(chunk)]
            try:
                response = self._client.send_message_batch(QueueUrl=self._queue_url, Entries=batch)
            except (ClientError, BotoCoreError):
                failed.update(entry.notification.notification_id for entry in chunk)
                continue
            failed.update(chunk[int(item["Id"])].notification.notification_id for item in response.get("Failed", []))
        return failed
