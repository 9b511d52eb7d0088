"""DynamoDB adapter of the hold-alert ledger, in the directory table beside the addresses.

Items: pk `HOLDALERT#<email>`, sk `META`, `version` (the compare-and-set counter), `doc` = the HoldAlert as JSON;
gsi1pk `HOLDALERTS` lists every open alert in one query (held addresses are few).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.alerts.model import HoldAlert
from relaydesk.store.dynamodb import GSI, _is_conditional_failure, _query_all

LISTING = "HOLDALERTS"


class DynamoHoldAlerts:
    def __init__(self, table: Any) -> None:
        self._table = table

    @staticmethod
    def _key(email: str) -> dict[str, str]:
        return {"pk": f"HOLDALERT#{email.lower()}", "sk": "META"}

    def get(self, email: str) -> HoldAlert | None:
        item = self._table.get_item(Key=self._key(email), ConsistentRead=True).get("Item")
        return HoldAlert.model_validate_json(item["doc"]) if item else None

    def list(self) -> list[HoldAlert]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": LISTING})
        return [HoldAlert.model_validate_json(item["doc"]) for item in items]

    def put_if(self, alert: HoldAlert, expected_version: int | None) -> bool:
        stored = alert.model_copy(update={"version": (expected_version or 0) + 1})
        item = {**self._key(alert.email), "gsi1pk": LISTING, "gsi1sk": alert.email.lower(),
                "version": stored.version, "doc": stored.model_dump_json()}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} if expected_version is None \
            else {"ConditionExpression": "version = :v", "ExpressionAttributeValues": {":v": expected_version}}
        return self._conditional(lambda: self._table.put_item(Item=item, **condition))

    def delete_if(self, email: str, expected_version: int) -> bool:
        return self._conditional(lambda: self._table.delete_item(
            Key=self._key(email), ConditionExpression="version = :v",
            ExpressionAttributeValues={":v": expected_version}))

    @staticmethod
    def _conditional(write) -> bool:
        try:
            write()
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True
