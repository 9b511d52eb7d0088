"""AWS adapters for inbound: its ledger (items in the tickets table), the shared counters table, the inbound DLQ."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.inbound.ports import InboundPorts


class DynamoLedger:
    """`INBOUND#<ses message id>` / `DECISION` in the tickets table: a conditional put makes the first decision win."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(ses_message_id: str) -> dict[str, str]:
        return {"pk": f"INBOUND#{ses_message_id}", "sk": "DECISION"}

    def get(self, ses_message_id: str) -> tuple[str, bool] | None:
        item = self._table.get_item(Key=self._key(ses_message_id), ConsistentRead=True).get("Item")
        return (item["doc"], bool(item.get("done"))) if item else None

    def claim(self, ses_message_id: str, decision_json: str) -> str:
        try:
            self._table.put_item(Item={**self._key(ses_message_id), "doc": decision_json, "done": False},
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
        self._table.update_item(Key=self._key(ses_message_id), UpdateExpression="SET done = :t",
                                ExpressionAttributeValues={":t": True})


class DynamoCounters:
    """The counters table: key `pk`, TTL attribute `expires_at`; ADD is atomic across invocations."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def increment(self, key: str, expires_at: int) -> int:
        response = self._table.update_item(
            Key={"pk": key}, UpdateExpression="ADD #c :one SET expires_at = :exp",
            ExpressionAttributeNames={"#c": "count"}, ExpressionAttributeValues={":one": 1, ":exp": expires_at},
            ReturnValues="UPDATED_NEW")
        return int(response["Attributes"]["count"])


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
