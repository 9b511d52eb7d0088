"""The relay's once guard on the idempotency table (`relaydesk.store.ports.OnceGuard` says what it promises).

One item per notification, `id` = `notification#<id>`, with the attribute names of powertools' idempotency records:
`status` (INPROGRESS or COMPLETED), `in_progress_expiration` (epoch ms, the end of the claim's window), `data` (the
stored outcome, JSON), `expiration` (epoch s, the table's TTL attribute), and `owner` (the claim's random token):
every write after the claim is conditional on it, so a claim taken over is never completed by its old holder.
Conditions compare times themselves: DynamoDB deletes expired items lazily.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.errors import AlreadyInProgress, ClaimLost
from relaydesk.store.ports import ONCE_EXPIRY_SECONDS, ONCE_IN_PROGRESS_SECONDS, Claim, new_claim_token

TRANSACTION_LIMIT = 100  # items in one TransactWriteItems
CLAIM_TRIES = 4  # a put that failed or lost its answer is tried again with the same token; a vanished item re-read
IN_PROGRESS = "INPROGRESS"
COMPLETED = "COMPLETED"
_NAMES = {"#status": "status", "#owner": "owner", "#data": "data"}


def _condition_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class DynamoOnce:
    def __init__(self, table: Any, *, in_progress_seconds: float = ONCE_IN_PROGRESS_SECONDS,
                 expiry_seconds: int = ONCE_EXPIRY_SECONDS, now: Callable[[], float] = time.time) -> None:
        self._table = table
        self.in_progress_seconds = in_progress_seconds
        self.expiry_seconds = expiry_seconds
        self._now = now

    @staticmethod
    def key(notification_id: str) -> dict[str, str]:
        return {"id": f"notification#{notification_id}"}

    def _get(self, notification_id: str) -> dict | None:
        return self._table.get_item(Key=self.key(notification_id), ConsistentRead=True).get("Item")

    def claim(self, notification_id: str) -> Claim:
        token = new_claim_token()
        failures = 0
        for _ in range(CLAIM_TRIES):
            now = self._now()
            try:
                response = self._table.put_item(
                    Item={**self.key(notification_id), "status": IN_PROGRESS, "owner": token,
                          "in_progress_expiration": int((now + self.in_progress_seconds) * 1000),
                          "expiration": int(now + self.expiry_seconds)},
                    ConditionExpression="attribute_not_exists(id) OR expiration < :now OR "
                                        "(#status = :in_progress AND in_progress_expiration < :now_ms)",
                    ExpressionAttributeNames={"#status": "status"},
                    ExpressionAttributeValues={":now": int(now), ":now_ms": int(now * 1000),
                                               ":in_progress": IN_PROGRESS},
                    ReturnValues="ALL_OLD")
            except ClientError as error:
                if not _condition_failed(error):
                    failures += 1  # tried again with the same token: if the first put landed, it is ours
                    if failures >= CLAIM_TRIES - 1:
                        raise
                    continue
            except BotoCoreError:  # no answer (a lost response): the same
                failures += 1
                if failures >= CLAIM_TRIES - 1:
                    raise
                continue
            else:
                old = response.get("Attributes") or {}
                taken_over = old.get("status") == IN_PROGRESS and int(old.get("expiration", 0)) >= int(now)
                return Claim(notification_id, token, taken_over=taken_over)
            item = self._get(notification_id)
            if item is None:
                continue
            if item.get("status") == COMPLETED:
                return Claim(notification_id, stored=json.loads(item["data"]))
            if item.get("owner") == token:  # an earlier try of this very claim landed, its response was lost
                return Claim(notification_id, token, taken_over=True)  # what it replaced is unknown: look
            raise AlreadyInProgress(notification_id, float(item.get("in_progress_expiration", 0)) / 1000 - now)
        raise AlreadyInProgress(notification_id, 1)

    @property
    def table(self) -> Any:
        return self._table

    def completion(self, claim: Claim, outcome: dict) -> dict[str, Any]:
        """The write that stores a final outcome, conditional on the claim's token: UpdateItem's parameters, and
        with TableName one part of a TransactWriteItems (`store/outcome_writes.py`)."""
        return dict(TableName=self._table.name, Key=self.key(claim.notification_id),
                    UpdateExpression="SET #status = :completed, #data = :data, expiration = :expiration "
                                     "REMOVE in_progress_expiration",
                    ConditionExpression="#owner = :token",
                    ExpressionAttributeNames=_NAMES,
                    ExpressionAttributeValues={":completed": COMPLETED, ":data": json.dumps(outcome),
                                               ":token": claim.token,
                                               ":expiration": int(self._now() + self.expiry_seconds)})

    def claim_fresh(self, notification_ids: list[str]) -> dict[str, Claim] | None:
        """One TransactWriteItems of conditional puts (at most 100): all claimed, or None when any of them has a
        record (in progress, taken over, completed: the one-by-one claim says which) or the write was refused. A
        lost answer is asked again with the same request token, which DynamoDB answers as the first time."""
        if not notification_ids or len(notification_ids) > TRANSACTION_LIMIT:
            return None
        now = self._now()
        claims = {notification_id: Claim(notification_id, new_claim_token()) for notification_id in notification_ids}
        puts = [{"Put": {"TableName": self._table.name, "Item": {
            **self.key(notification_id), "status": IN_PROGRESS, "owner": claim.token,
            "in_progress_expiration": int((now + self.in_progress_seconds) * 1000),
            "expiration": int(now + self.expiry_seconds)},
            "ConditionExpression": "attribute_not_exists(id) OR expiration < :now",
            "ExpressionAttributeValues": {":now": int(now)}}} for notification_id, claim in claims.items()]
        request = secrets.token_hex(16)  # TransactWriteItems' idempotency token
        for _ in range(CLAIM_TRIES):
            try:
                self._table.meta.client.transact_write_items(TransactItems=puts, ClientRequestToken=request)
                return claims
            except ClientError:  # a record, a conflict, throttled: nothing was written
                return None
            except BotoCoreError:  # no answer: the same request again (idempotent by its token)
                continue
        return None

    def release_all(self, claims: list[Claim]) -> None:
        for start in range(0, len(claims), TRANSACTION_LIMIT):
            part = claims[start:start + TRANSACTION_LIMIT]
            deletes = [{"Delete": {"TableName": self._table.name, "Key": self.key(claim.notification_id),
                                   "ConditionExpression": "#owner = :token AND #status = :in_progress",
                                   "ExpressionAttributeNames": {"#owner": "owner", "#status": "status"},
                                   "ExpressionAttributeValues": {":token": claim.token,
                                                                 ":in_progress": IN_PROGRESS}}} for claim in part]
            try:
                self._table.meta.client.transact_write_items(TransactItems=deletes)
            except ClientError:  # one of them is no longer ours as it was: each on its own
                for claim in part:
                    self.release(claim)

    def complete(self, claim: Claim, outcome: dict) -> None:
        update = self.completion(claim, outcome)
        del update["TableName"]
        try:
            self._table.update_item(**update)
        except ClientError as error:
            if not _condition_failed(error):
                raise
            raise ClaimLost(claim.notification_id) from error

    def release(self, claim: Claim) -> None:
        try:
            self._table.delete_item(Key=self.key(claim.notification_id),
                                    ConditionExpression="#owner = :token AND #status = :in_progress",
                                    ExpressionAttributeNames={"#owner": "owner", "#status": "status"},
                                    ExpressionAttributeValues={":token": claim.token, ":in_progress": IN_PROGRESS})
        except ClientError as error:
            if not _condition_failed(error):
                raise

    def stored(self, notification_id: str) -> dict | None:
        item = self._get(notification_id)
        if item is None or item.get("status") != COMPLETED or int(item.get("expiration", 0)) < int(self._now()):
            return None
        return json.loads(item["data"])


def dynamo_once(table_name: str, *, in_progress_seconds: float = ONCE_IN_PROGRESS_SECONDS,
                expiry_seconds: int = ONCE_EXPIRY_SECONDS, session: Any = None) -> DynamoOnce:
    import boto3

    resource = (session or boto3.session.Session()).resource("dynamodb")
    return DynamoOnce(resource.Table(table_name), in_progress_seconds=in_progress_seconds,
                      expiry_seconds=expiry_seconds)
