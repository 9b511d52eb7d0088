"""DynamoDB adapter of the suppression list, in the directory table: pk `SUPPRESS#<account id>`, sk `RCPT#<address>`,
`doc` = the Suppression as JSON. No GSI attributes: they stay out of the account and address listings."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.outbound.suppression import Suppression
from relaydesk.store.dynamodb import _is_conditional_failure, _query_all


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
