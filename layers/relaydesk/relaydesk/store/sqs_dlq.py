"""SQS adapter for the notifications dead-letter queue: read what waits there, and send it back to the queue."""

from __future__ import annotations

from typing import Any

from relaydesk.store.ports import DeadLetter

MAX_BATCH = 10  # SQS ReceiveMessage upper bound
PEEK_ROUNDS = 20  # SQS samples its servers: a few receives more than one message count's worth see everything


class SqsDeadLetters:
    def __init__(self, client: Any, dlq_url: str, queue_url: str) -> None:
        self._client = client
        self._dlq_url = dlq_url
        self._queue_url = queue_url

    def _receive(self, visibility: int) -> list[DeadLetter]:
        messages = self._client.receive_message(QueueUrl=self._dlq_url, MaxNumberOfMessages=MAX_BATCH,
                                                VisibilityTimeout=visibility, WaitTimeSeconds=0,
                                                AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
        return [DeadLetter(m["MessageId"], m["ReceiptHandle"], m["Body"],
                           int(m.get("Attributes", {}).get("ApproximateReceiveCount", "0"))) for m in messages]

    def peek(self) -> list[DeadLetter]:
        """Everything in the DLQ, left there (each receive makes its messages visible again at once)."""
        seen: dict[str, DeadLetter] = {}
        for _ in range(PEEK_ROUNDS):
            batch = self._receive(visibility=0)
            fresh = [m for m in batch if m.message_id not in seen]
            seen.update((m.message_id, m) for m in fresh)
            if not batch:
                break
        return list(seen.values())

    def take(self, visibility: int = 60) -> list[DeadLetter]:
        """A batch held for `visibility` seconds while the caller redrives or leaves it."""
        return self._receive(visibility=visibility)

    def redrive(self, letter: DeadLetter, notification_id: str | None) -> None:
        """Back to the notifications queue with its body unchanged, then out of the DLQ."""
        attributes = {"notification_id": {"DataType": "String", "StringValue": notification_id}} \
            if notification_id else {}
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=letter.body, MessageAttributes=attributes)
        self._client.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle)

    def release(self, letter: DeadLetter) -> None:
        """Leave it in the DLQ, visible again now."""
        self._client.change_message_visibility(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle,
                                               VisibilityTimeout=0)
