"""What the SQS event source mapping does for the relay: receive batches of up to 10 from the notifications queue,
invoke the function with an SQS event, and delete only the records not listed in `batchItemFailures`
(ReportBatchItemFailures). A failed invocation deletes nothing: the messages come back after their visibility
timeout and, past maxReceiveCount, SQS moves them to the DLQ.

Like the mapping it runs several pollers at once, one per function instance it is given (each a container of its
own), and with a batching window (MaximumBatchingWindowInSeconds) it gathers up to a full batch for that long
before invoking. The records carry MessageGroupId; the order they come in is SQS's (local/fair_queues.py gives
moto the fair queues' order).
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
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
    """Threads polling `queue_url`, one per function instance in `invoke` (one callable, or several), each invoking
    its instance with `invoke(event) -> {"batchItemFailures": [...]}` per batch."""

    def __init__(self, sqs: Any, queue_url: str, invoke: Callable[[dict], Any] | Sequence[Callable[[dict], Any]], *,
                 region: str = "us-east-1", batch_size: int = RECEIVE_LIMIT, batching_window: float = 0.0,
                 on_batch: Callable[[dict, Any, BaseException | None], None] | None = None) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.instances = list(invoke) if isinstance(invoke, Sequence) else [invoke]
        self.invoke = self.instances[0]
        self.region = region
        self.on_batch = on_batch
        self.batch_size = min(batch_size, RECEIVE_LIMIT)  # the mapping's BatchSize (template.yaml: 10)
        self.batching_window = batching_window
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        self.batches = 0
        self._count_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> SqsEventSource:
        self._threads = [threading.Thread(target=self._loop, args=(invoke,), name=f"sqs-event-source-{i}",
                                          daemon=True) for i, invoke in enumerate(self.instances)]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WAIT_SECONDS + 30)
        self._threads = []

    def _loop(self, invoke: Callable[[dict], Any]) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once(invoke)
            except Exception:  # keep polling, as the event source mapping does; the log says what went wrong
                log.exception("SQS event source: a poll failed")
                self._stop.wait(1)

    def _receive(self) -> list[dict]:
        """One batch: what one receive returns, or with a batching window, receives until the batch is full or the
        window has passed since the first message."""
        messages = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=WAIT_SECONDS,
            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        deadline = time.monotonic() + self.batching_window
        while messages and len(messages) < self.batch_size and time.monotonic() < deadline \
                and not self._stop.is_set():
            wait = max(0, min(WAIT_SECONDS, round(deadline - time.monotonic())))
            messages += self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size - len(messages), WaitTimeSeconds=wait,
                AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        return messages

    def poll_once(self, invoke: Callable[[dict], Any] | None = None) -> int:
        """Receive one batch, invoke, delete the successes; returns how many records were in the batch."""
        invoke = invoke or self.invoke
        messages = self._receive()
        if not messages:
            return 0
        event = sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
        with self._count_lock:
            self.batches += 1
        try:
            response = invoke(event)
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
