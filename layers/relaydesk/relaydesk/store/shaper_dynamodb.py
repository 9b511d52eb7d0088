"""The shaper's state in the counters table: one item per mailbox (`pk` SHAPER#<hash>), replaced whole by a
conditional PutItem on its version; a lost race returns the winner's item (ReturnValuesOnConditionCheckFailure), so
the shaper computes again without another read. A boto3 client, not a resource: the relay's smarthost threads share
it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.errors import ShaperBusyError
from relaydesk.store.ports import StoredState

KEEP_SECONDS = 3 * 86_400  # an idle mailbox's item goes (TTL `expires_at`) after more than a day window


class DynamoShaperStates:
    def __init__(self, client: Any, table: str, *, wall_clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self._table = table
        self._wall_clock = wall_clock

    def read(self, key: str) -> StoredState:
        try:
            item = self._client.get_item(TableName=self._table, Key={"pk": {"S": key}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as error:
            raise ShaperBusyError(f"reading the sending-limit state failed: {error}") from error
        return _stored(item.get("Item"))

    def write(self, key: str, body: str, version: int) -> StoredState | None:
        item = {"pk": {"S": key}, "state": {"S": body}, "version": {"N": str(version + 1)},
                "expires_at": {"N": str(int(self._wall_clock()) + KEEP_SECONDS)}}
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} if version == 0 else {
            "ConditionExpression": "#version = :version", "ExpressionAttributeNames": {"#version": "version"},
            "ExpressionAttributeValues": {":version": {"N": str(version)}}}
        try:
            self._client.put_item(TableName=self._table, Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD",
                                  **condition)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise ShaperBusyError(f"writing the sending-limit state failed: {error}") from error
            return _stored(error.response.get("Item")) if error.response.get("Item") else self.read(key)
        except BotoCoreError as error:
            raise ShaperBusyError(f"writing the sending-limit state failed: {error}") from error
        return None


def _stored(item: dict | None) -> StoredState:
    if not item:
        return StoredState(None, 0)
    return StoredState(item["state"]["S"], int(item["version"]["N"]))
