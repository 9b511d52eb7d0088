"""SQS adapter for the notifications dead-letter queue: read what waits there, and send it back to the queue."""

from __future__ import annotations

from typing import Any

from relaydesk.store.ports import DeadLetter
from relaydesk.store.sqs import group_of_body

MAX_BATCH = 10  # SQS ReceiveMessage upper bound
PEEK_HIDE_SECONDS = 30  # what a look has seen stays out of its next receives, then is made visible again at once
PEEK_LIMIT = 5000
EMPTY_RECEIVES = 3  # SQS samples its servers: an empty answer is only believed after a few


REASON_LIMIT = 1000  # characters of the reason kept in the message's attribute (the ticket has it whole)


class SqsDeadLetters:
    def __init__(self, client: Any, dlq_url: str, queue_url: str) -> None:
        self._client = client
        self._dlq_url = dlq_url
        self._queue_url = queue_url

    def _receive(self, visibility: int) -> list[DeadLetter]:
        messages = self._client.receive_message(QueueUrl=self._dlq_url, MaxNumberOfMessages=MAX_BATCH,
                                                VisibilityTimeout=visibility, WaitTimeSeconds=0,
                                                AttributeNames=["ApproximateReceiveCount"],
                                                MessageAttributeNames=["All"]).get("Messages", [])
        return [_letter(m) for m in messages]

    def peek(self) -> list[DeadLetter]:
        """Everything in the DLQ, left there: each receive hides what it returned (so the next one returns other
        messages), and at the end every message seen is made visible again."""
        seen: dict[str, DeadLetter] = {}
        empty = 0
        while len(seen) < PEEK_LIMIT and empty < EMPTY_RECEIVES:
            batch = self._receive(visibility=PEEK_HIDE_SECONDS)
            empty = 0 if batch else empty + 1
            seen.update((m.message_id, m) for m in batch)
        for letter in seen.values():
            self.release(letter)
        return list(seen.values())

    def take(self, visibility: int = 60) -> list[DeadLetter]:
        """A batch held for `visibility` seconds while the caller redrives or leaves it."""
        return self._receive(visibility=visibility)

    def bury(self, body: str, *, reason: str, notification_id: str | None, receive_count: int) -> None:
        """The relay's move of a notification out of attempts: the body unchanged, the reason beside it."""
        attributes = {"reason": {"DataType": "String", "StringValue": (reason or "unknown")[:REASON_LIMIT]},
                      "attempts": {"DataType": "Number", "StringValue": str(receive_count)}}
        if notification_id:
            attributes["notification_id"] = {"DataType": "String", "StringValue": notification_id}
        self._client.send_message(QueueUrl=self._dlq_url, MessageBody=body, MessageAttributes=attributes,
                                  **group_of_body(body))

    def discard(self, letter: DeadLetter) -> None:
        """Out of the DLQ for good (a notification found delivered)."""
        self._client.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle)

    def redrive(self, letter: DeadLetter, notification_id: str | None) -> None:
        """Back to the notifications queue with its body unchanged, then out of the DLQ."""
        attributes = {"notification_id": {"DataType": "String", "StringValue": notification_id}} \
            if notification_id else {}
        self._client.send_message(QueueUrl=self._queue_url, MessageBody=letter.body, MessageAttributes=attributes,
                                  **group_of_body(letter.body))
        self._client.delete_message(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle)

    def release(self, letter: DeadLetter) -> None:
        """Leave it in the DLQ, visible again now."""
        self._client.change_message_visibility(QueueUrl=self._dlq_url, ReceiptHandle=letter.receipt_handle,
                                               VisibilityTimeout=0)


def _letter(message: dict) -> DeadLetter:
    attributes = message.get("MessageAttributes", {})

    def text(name: str) -> str:
        return attributes.get(name, {}).get("StringValue", "")

    return DeadLetter(message["MessageId"], message["ReceiptHandle"], message["Body"],
                      int(message.get("Attributes", {}).get("ApproximateReceiveCount", "0")), reason=text("reason"),
                      attempts=int(text("attempts") or 0))
