"""What a DynamoDB-stream event source mapping does: read the table's stream shard by shard, keep the records that
match the mapping's FilterCriteria, invoke the function with batches in order, and on a reported failure
(`batchItemFailures`, ReportBatchItemFailures) retry from that record, up to MaximumRetryAttempts; then hand the
batch's description to the on-failure queue, as Lambda does, and move on.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2


def matches(pattern: Any, value: Any) -> bool:
    """EventBridge-style pattern matching, the subset Lambda event filters use here: nested keys, a list of
    allowed values, `{"prefix": ...}`, `{"exists": bool}`."""
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub in pattern.items():
            if isinstance(sub, list) and any(isinstance(s, dict) and "exists" in s for s in sub):
                if (key in value) != next(s["exists"] for s in sub if isinstance(s, dict) and "exists" in s):
                    return False
                continue
            if key not in value or not matches(sub, value[key]):
                return False
        return True
    if isinstance(pattern, list):
        return any(_matches_one(option, value) for option in pattern)
    return pattern == value


def _matches_one(option: Any, value: Any) -> bool:
    if isinstance(option, dict) and "prefix" in option:
        return isinstance(value, str) and value.startswith(option["prefix"])
    return option == value


def _jsonable(record: dict) -> dict:
    """The stream record as Lambda's event carries it (epoch seconds, not a datetime)."""
    dynamodb = dict(record["dynamodb"])
    when = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(when, datetime):
        dynamodb["ApproximateCreationDateTime"] = when.timestamp()
    return {**{k: v for k, v in record.items() if k != "dynamodb"}, "dynamodb": dynamodb}


class DynamoDbStreamSource:
    """A thread reading one table's stream and invoking `invoke(event)` with batches of matching records."""

    def __init__(self, session: Any, table_name: str, invoke: Callable[[dict], Any], *, batch_size: int = 100,
                 filters: list[dict] | None = None, max_retries: int = 3, on_failure_queue_url: str | None = None,
                 on_batch: Callable[[dict, Any, BaseException | None], None] | None = None,
                 region: str = "us-east-1") -> None:
        self.streams = session.client("dynamodbstreams")
        self.sqs = session.client("sqs")
        self.stream_arn = session.client("dynamodb").describe_table(TableName=table_name)["Table"]["LatestStreamArn"]
        self.invoke = invoke
        self.batch_size = batch_size
        self.filters = filters or []
        self.max_retries = max_retries
        self.on_failure_queue_url = on_failure_queue_url
        self.on_batch = on_batch
        self.region = region
        self._iterators: dict[str, str | None] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> DynamoDbStreamSource:
        for shard in self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]["Shards"]:
            self._iterators[shard["ShardId"]] = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST")["ShardIterator"]
        self._thread = threading.Thread(target=self._loop, name="dynamodb-stream-source", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(POLL_SECONDS):
            try:
                self.poll_once()
            except Exception:  # keep polling, as the event source mapping does
                log.exception("DynamoDB stream source: a poll failed")

    def poll_once(self) -> int:
        seen = 0
        for shard_id, iterator in list(self._iterators.items()):
            if iterator is None:
                continue
            page = self.streams.get_records(ShardIterator=iterator, Limit=self.batch_size)
            self._iterators[shard_id] = page.get("NextShardIterator")
            records = [r for r in (_jsonable(r) for r in page.get("Records", []))
                       if not self.filters or any(matches(f, r) for f in self.filters)]
            for start in range(0, len(records), self.batch_size):
                self._deliver(records[start:start + self.batch_size])
            seen += len(records)
        return seen

    def _deliver(self, records: list[dict]) -> None:
        for record in records:
            record.update({"eventSource": "aws:dynamodb", "eventSourceARN": self.stream_arn, "awsRegion": self.region})
        attempts = 0
        while records:
            event = {"Records": records}
            try:
                response, error = self.invoke(event), None
            except Exception as raised:  # the whole batch failed
                response, error = None, raised
                log.exception("stream batch of %d failed", len(records))
            if self.on_batch:
                self.on_batch(event, response, error)
            failed = [item["itemIdentifier"] for item in (response or {}).get("batchItemFailures", [])] \
                if error is None else [records[0]["dynamodb"]["SequenceNumber"]]
            if not failed:
                return
            # Retry from the first failed record (the checkpoint), as Lambda does for streams.
            first = min(int(n) for n in failed)
            records = [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= first]
            attempts += 1
            if attempts > self.max_retries:
                self._give_up(records)
                return

    def _give_up(self, records: list[dict]) -> None:
        log.error("stream records %s..%s failed every retry", records[0]["dynamodb"]["SequenceNumber"],
                  records[-1]["dynamodb"]["SequenceNumber"])
        if self.on_failure_queue_url:
            self.sqs.send_message(QueueUrl=self.on_failure_queue_url, MessageBody=json.dumps({
                "DDBStreamBatchInfo": {"streamArn": self.stream_arn, "batchSize": len(records),
                                       "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
                                       "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"]}}))
