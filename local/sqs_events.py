"""What the SQS event source mapping does for the relay: receive batches of up to 10 from the notifications queue,
invoke the function with an SQS event, and delete only the records not listed in `batchItemFailures`
(ReportBatchItemFailures). A failed invocation deletes nothing: the messages come back after their visibility
timeout and, past maxReceiveCount, SQS moves them to the DLQ.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

RECEIVE_LIMIT = 10  # SQS ReceiveMessage returns at most 10 messages per call
WAIT_SECONDS = 1  # long poll; short enough that stop() returns quickly


def _message_attributes(attributes: dict) -> dict:
    """SQS API shape -> Lambda event shape (camelCase, list fields present)."""
    return {name: {"stringValue": value.get("StringValue"), "binaryValue": value.get("BinaryValue"),
                   "stringListValues": value.get("StringListValues", []),
                   "binaryListValues": value.get("BinaryListValues", []), "dataType": value["DataType"]}
            for name, value in attributes.items()}


def sqs_event(messages: list[dict], *, queue_arn: str, region: str) -> dict:
    """The event Lambda builds from a receive_message batch."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        records.append({
            "messageId": message["MessageId"], "receiptHandle": message["ReceiptHandle"], "body": message["Body"],
            "attributes": {key: attributes[key] for key in (
                "ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp",
                "MessageGroupId", "MessageDeduplicationId", "SequenceNumber", "AWSTraceHeader") if key in attributes},
            "messageAttributes": _message_attributes(message.get("MessageAttributes", {})),
            "md5OfBody": message.get("MD5OfBody") or hashlib.md5(message["Body"].encode()).hexdigest(),  # noqa: S324
            "eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region,
        })
    return {"Records": records}


class SqsEventSource:
    """A thread polling `queue_url` and invoking `invoke(event) -> {"batchItemFailures": [...]}` per batch."""

    def __init__(self, sqs: Any, queue_url: str, invoke: Callable[[dict], Any], *, region: str = "us-east-1",
                 batch_size: int = RECEIVE_LIMIT,
                 on_batch: Callable[[dict, Any, BaseException | None], None] | None = None) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.invoke = invoke
        self.region = region
        self.on_batch = on_batch
        self.batch_size = min(batch_size, RECEIVE_LIMIT)  # the mapping's BatchSize (template.yaml: 10)
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.batches = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> SqsEventSource:
        self._thread = threading.Thread(target=self._loop, name="sqs-event-source", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=WAIT_SECONDS + 30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception:  # keep polling, as the event source mapping does; the log says what went wrong
                log.exception("SQS event source: a poll failed")
                self._stop.wait(1)

    def poll_once(self) -> int:
        """Receive one batch, invoke, delete the successes; returns how many records were in the batch."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        event = sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
        self.batches += 1
        try:
            response = self.invoke(event)
        except Exception as error:  # the whole batch failed: nothing is deleted
            log.exception("relay function failed for a batch of %d", len(messages))
            if self.on_batch:
                self.on_batch(event, None, error)
            return len(messages)
        failed = {item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])}
        done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages) if m["MessageId"] not in failed]
        if done:
            self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=done)
        if self.on_batch:
            self.on_batch(event, response, None)
        return len(messages)
