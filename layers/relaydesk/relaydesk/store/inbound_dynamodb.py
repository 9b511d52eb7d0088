"""AWS adapters for inbound: its ledger (items in the tickets table), the shared counters table, the inbound DLQ."""

from __future__ import annotations

import os
import random
import time
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.errors import ConflictError
from relaydesk.inbound.ports import InboundPorts
from relaydesk.store.item_budget import check_item, check_key
from relaydesk.store.ticket_items import ledger_item, ledger_key


class DynamoLedger:
    """`INBOUND#<ses message id>` / `DECISION` in the tickets table: a conditional put makes the first decision win."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, ses_message_id: str) -> tuple[str, bool] | None:
        item = self._table.get_item(Key=ledger_key(ses_message_id), ConsistentRead=True).get("Item")
        return (item["doc"], bool(item.get("done"))) if item else None

    def claim(self, ses_message_id: str, decision_json: str) -> str:
        try:
            self._table.put_item(Item=check_item(ledger_item(ses_message_id, decision_json)),
                                 ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            stored = self.get(ses_message_id)
            if stored is None:  # cannot happen: the condition failed because the item exists
                raise
            return stored[0]
        return decision_json

    def complete(self, ses_message_id: str) -> None:
        self._table.update_item(Key=ledger_key(ses_message_id), UpdateExpression="SET done = :t",
                                ExpressionAttributeValues={":t": True})


class DynamoCounters:
    """The counters table: key `pk`, TTL attribute `expires_at`, shared by every invocation. Each event counts once:
    one transaction puts the event's marker item (`counted#<key>#<event id>`, holding the value the event got) only
    if it is missing, and moves the counter from the value just read to the next only if nobody moved it meanwhile.
    A marker that exists means the event was counted: its value is returned, nothing is added. A counter that moved
    (another event, counted concurrently) is read again and the transaction retried."""

    MAX_ATTEMPTS = 8  # each lost race means another event was counted: progress is never stalled, only shared
    BACKOFF_SECONDS = 0.01

    def __init__(self, table: Any) -> None:
        self._table = table
        self._client = table.meta.client  # the resource's own client: it takes plain Python values, as the table does

    @staticmethod
    def marker_key(key: str, event_id: str) -> str:
        return f"counted#{key}#{event_id}"

    def count_once(self, key: str, event_id: str, expires_at: int) -> int:
        marker = self.marker_key(key, event_id)
        check_key({"pk": marker})  # the longer of the two keys
        for attempt in range(self.MAX_ATTEMPTS):
            seen = self._read(key)
            try:
                self._client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": self._table.name, "ConditionExpression": "attribute_not_exists(pk)",
                             "Item": {"pk": marker, "count": seen + 1, "expires_at": expires_at}}},
                    {"Update": {"TableName": self._table.name, "Key": {"pk": key},
                                "UpdateExpression": "SET #c = :next, expires_at = :exp",
                                "ConditionExpression": "#c = :seen" if seen else "attribute_not_exists(#c)",
                                "ExpressionAttributeNames": {"#c": "count"},
                                "ExpressionAttributeValues": {":next": seen + 1, ":exp": expires_at,
                                                              **({":seen": seen} if seen else {})}}}])
                return seen + 1
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
                if reasons[:1] == ["ConditionalCheckFailed"]:  # the marker exists: this event was counted
                    return self._counted(marker, error)
            time.sleep(random.uniform(0, self.BACKOFF_SECONDS * 2 ** attempt))  # jitter: racers spread out
        raise ConflictError(f"counter {key} kept moving for {self.MAX_ATTEMPTS} attempts",
                            action="Nothing to do: the invocation fails and Lambda retries it.")

    def _read(self, key: str) -> int:
        item = self._table.get_item(Key={"pk": key}, ConsistentRead=True).get("Item")
        return int(item["count"]) if item and "count" in item else 0

    def _counted(self, marker: str, error: ClientError) -> int:
        item = self._table.get_item(Key={"pk": marker}, ConsistentRead=True).get("Item")
        if item is None:  # the marker's condition failed, so it existed: only its TTL can have removed it since
            raise error
        return int(item["count"])


class SqsDeadLetters:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def receive(self, max_messages: int = 10) -> list[tuple[str, str]]:
        response = self._client.receive_message(QueueUrl=self._queue_url, MaxNumberOfMessages=min(max_messages, 10),
                                                WaitTimeSeconds=1, VisibilityTimeout=300)
        return [(m["ReceiptHandle"], m["Body"]) for m in response.get("Messages", [])]

    def delete(self, receipt_handle: str) -> None:
        self._client.delete_message(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle)

    def release(self, receipt_handle: str) -> None:
        self._client.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle,
                                               VisibilityTimeout=0)


def aws_inbound_ports() -> InboundPorts:
    """Built once per container, and again whenever the settings or the endpoint change (the local stack)."""
    from relaydesk.config import get_settings

    settings = get_settings()
    return _ports(settings.tickets_table, settings.counters_table, os.environ.get("AWS_ENDPOINT_URL", ""))


@lru_cache(maxsize=4)
def _ports(tickets_table: str, counters_table: str, endpoint: str) -> InboundPorts:
    import boto3

    dynamodb = boto3.session.Session().resource("dynamodb")
    return InboundPorts(ledger=DynamoLedger(dynamodb.Table(tickets_table)),
                        counters=DynamoCounters(dynamodb.Table(counters_table)))


def aws_dead_letters(queue_url: str) -> SqsDeadLetters:
    import boto3

    return SqsDeadLetters(boto3.session.Session().client("sqs"), queue_url)
