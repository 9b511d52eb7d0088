"""A delivered or failed notification's two writes in one DynamoDB call: the final outcome in the once guard
(conditional on the claim) and the attempt on its ticket, as one TransactWriteItems (`ports.OutcomeWrites`). Both
land or neither, so the outcome is never stored without the ticket saying so; and it is one round trip to AWS
instead of two. The parts are the very writes `DynamoOnce.complete` and `DynamoTickets.append_attempt` make."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.errors import ClaimLost
from relaydesk.store.dynamodb import DynamoTickets
from relaydesk.store.once_dynamodb import DynamoOnce
from relaydesk.store.ports import Claim
from relaydesk.tickets.model import DeliveryAttempt, NotificationRecord


class DynamoOutcomeWrites:
    def __init__(self, once: DynamoOnce, tickets: DynamoTickets) -> None:
        self._once = once
        self._tickets = tickets
        self._client: Any = once.table.meta.client  # the resource's own client: thread-safe, plain Python values

    def complete_and_record(self, claim: Claim, outcome: dict, ticket_id: str, record: NotificationRecord,
                            attempt: DeliveryAttempt) -> None:
        try:
            self._client.transact_write_items(TransactItems=[
                {"Update": self._once.completion(claim, outcome)},
                {"Update": self._tickets.attempt_update(ticket_id, record, attempt)}])
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if reasons and reasons[0].get("Code") == "ConditionalCheckFailed":  # the claim's token: taken over
                raise ClaimLost(claim.notification_id) from error
            raise
