"""DynamoDB adapter of the suppression list, in the directory table: pk `SUPPRESS#<account id>`, sk `RCPT#<address>`,
`doc` = the Suppression as JSON. No GSI attributes: they stay out of the account and address listings."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.outbound.suppression import Suppression
from relaydesk.store.dynamodb import _is_conditional_failure, _query_all

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem takes at most 100 keys
UNPROCESSED_TRIES = 3


class DynamoSuppressions:
    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(account_id: str, recipient: str) -> dict[str, str]:
        return {"pk": f"SUPPRESS#{account_id}", "sk": f"RCPT#{recipient.lower()}"}

    def suppressed(self, account_id: str, recipients: list[str]) -> dict[str, Suppression]:
        found = {}
        for recipient in dict.fromkeys(r.lower() for r in recipients):
            item = self._table.get_item(Key=self._key(account_id, recipient)).get("Item")
            if item:
                found[recipient] = Suppression.model_validate_json(item["doc"])
        return found

    def suppressed_many(self, wanted: dict[str, list[str]]) -> dict[str, dict[str, Suppression]]:
        """One BatchGetItem per 100 addresses for a whole batch (a relay batch is 10 notifications: one call)."""
        keys = [self._key(account_id, recipient) for account_id, recipients in wanted.items()
                for recipient in dict.fromkeys(r.lower() for r in recipients)]
        found: dict[str, dict[str, Suppression]] = {account_id: {} for account_id in wanted}
        client, name = self._table.meta.client, self._table.name
        for start in range(0, len(keys), BATCH_GET_LIMIT):
            pending: dict[str, Any] = {name: {"Keys": keys[start:start + BATCH_GET_LIMIT]}}
            for _ in range(UNPROCESSED_TRIES):
                response = client.batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(name, []):
                    suppression = Suppression.model_validate_json(item["doc"])
                    found.setdefault(suppression.account_id, {})[item["sk"].removeprefix("RCPT#")] = suppression
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                raise RuntimeError("the suppression list did not answer every address; asked one by one instead")
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
