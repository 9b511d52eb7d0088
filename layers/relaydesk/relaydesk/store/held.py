"""DynamoDB adapter for notifications held behind an auth_failed hold, in the directory table beside their address.

Items: pk `HELD#<email>`, sk `NOTIF#<notification id>`, `doc` = the full Notification (everything needed to send it
again). No GSI attributes: they never show up in the account or address listings.
"""

from __future__ import annotations

from typing import Any

from relaydesk.notification import Notification
from relaydesk.store.dynamodb import _query_all


class DynamoHeld:
    def __init__(self, table: Any) -> None:
        self._table = table

    def park(self, email: str, notification: Notification) -> None:
        self._table.put_item(Item={"pk": f"HELD#{email.lower()}", "sk": f"NOTIF#{notification.notification_id}",
                                   "doc": notification.model_dump_json()})

    def list(self, email: str) -> list[Notification]:
        items = _query_all(self._table, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": f"HELD#{email.lower()}"})
        return [Notification.model_validate_json(item["doc"]) for item in items]

    def list_after(self, email: str, after: str | None, limit: int) -> list[Notification]:
        """One Query of the address's partition from the sort key after `after`, read on only while DynamoDB stops
        a page short (its 1 MB page)."""
        kwargs: dict[str, Any] = {"KeyConditionExpression": "pk = :p AND sk > :s", "ExpressionAttributeValues": {
            ":p": f"HELD#{email.lower()}", ":s": f"NOTIF#{after or ''}"}}
        found: list[Notification] = []
        while len(found) < limit:
            page = self._table.query(Limit=limit - len(found), **kwargs)
            found.extend(Notification.model_validate_json(item["doc"]) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return found

    def remove(self, email: str, notification_id: str) -> None:
        self._table.delete_item(Key={"pk": f"HELD#{email.lower()}", "sk": f"NOTIF#{notification_id}"})
