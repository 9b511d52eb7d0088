"""DynamoDB adapter of the suppression list, in the directory table: pk `SUPPRESS#<account id>`, sk `RCPT#<address>`,
`doc` = the Suppression as JSON. No GSI attributes: they stay out of the account and address listings."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.outbound.suppression import Suppression
from relaydesk.store.dynamodb import _is_conditional_failure, _query_all

BATCH_KEYS = 100  # BatchGetItem's most keys a call
BATCH_TRIES = 3


class DynamoSuppressions:
    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(account_id: str, recipient: str) -> dict[str, str]:
        return {"pk": f"SUPPRESS#{account_id}", "sk": f"RCPT#{recipient.lower()}"}

    def suppressed(self, account_id: str, recipients: list[str]) -> dict[str, Suppression]:
        """One BatchGetItem per 100 recipients (a notification to ten people is one call, not ten: every receive of a
        burst's notification pays it). Keys DynamoDB leaves unprocessed are asked again; the ones still left after
        `BATCH_TRIES` are read one by one, so no recipient goes unchecked."""
        keys = [self._key(account_id, r) for r in dict.fromkeys(r.lower() for r in recipients)]
        items: list[dict] = []
        for start in range(0, len(keys), BATCH_KEYS):
            items += self._batch_get(keys[start:start + BATCH_KEYS])
        return {item["sk"].removeprefix("RCPT#"): Suppression.model_validate_json(item["doc"]) for item in items}

    def _batch_get(self, keys: list[dict[str, str]]) -> list[dict]:
        client, name = self._table.meta.client, self._table.name  # the resource's client: plain values in and out
        items: list[dict] = []
        for attempt in range(BATCH_TRIES):
            if not keys:
                return items
            if attempt:
                time.sleep(0.05 * 2 ** attempt)
            answer = client.batch_get_item(RequestItems={name: {"Keys": keys}})
            items += answer.get("Responses", {}).get(name, [])
            keys = answer.get("UnprocessedKeys", {}).get(name, {}).get("Keys", [])
        for key in keys:
            item = self._table.get_item(Key=key).get("Item")
            if item:
                items.append(item)
        return items

    def suppressed_many(self, wanted: dict[str, list[str]]) -> dict[str, dict[str, Suppression]]:
        """A whole relay batch's accounts and recipients in one BatchGetItem per 100 addresses (a batch of ten
        notifications is one call), with `_batch_get`'s retries of unprocessed keys."""
        keys = [self._key(account_id, recipient) for account_id, recipients in wanted.items()
                for recipient in dict.fromkeys(r.lower() for r in recipients)]
        items: list[dict] = []
        for start in range(0, len(keys), BATCH_KEYS):
            items += self._batch_get(keys[start:start + BATCH_KEYS])
        found: dict[str, dict[str, Suppression]] = {account_id: {} for account_id in wanted}
        for item in items:
            suppression = Suppression.model_validate_json(item["doc"])
            found.setdefault(suppression.account_id, {})[item["sk"].removeprefix("RCPT#")] = suppression
        return found

    def add(self, suppression: Suppression) -> None:
        item = {**self._key(suppression.account_id, suppression.recipient),
                "doc": suppression.model_copy(update={"recipient": suppression.recipient.lower()}).model_dump_json()}
        try:  # the first report says when and why it started; later ones add nothing
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def list(self, account_id: str) -> list[Suppression]:
        items = _query_all(self._table, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": f"SUPPRESS#{account_id}"})
        return [Suppression.model_validate_json(item["doc"]) for item in items]

    def remove(self, account_id: str, recipient: str) -> bool:
        gone = self._table.delete_item(Key=self._key(account_id, recipient), ReturnValues="ALL_OLD")
        return "Attributes" in gone
