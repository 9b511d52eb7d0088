"""SQS adapter for the notifications queue."""

from __future__ import annotations

from typing import Any

from relaydesk.notification import Notification

MAX_DELAY_SECONDS = 900  # SQS DelaySeconds upper bound


class SqsNotificationQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, notification: Notification, delay_seconds: int = 0) -> None:
        self._client.send_message(
            QueueUrl=self._queue_url,
            MessageBody=notification.model_dump_json(),
            DelaySeconds=min(max(delay_seconds, 0), MAX_DELAY_SECONDS),
            MessageAttributes={"notification_id": {"DataType": "String",
                                                   "StringValue": notification.notification_id}},
        )
