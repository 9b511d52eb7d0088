"""DynamoDB adapters: accounts and addresses in the directory table, tickets and their children in the tickets table.

Both tables key on (pk, sk) with one GSI `gsi1` on (gsi1pk, gsi1sk); each item holds the model as JSON in `doc`.
A ticket's comments and notification records are items of their own, so a long thread never meets the 400 KB item
limit; what changes on a ticket concurrently is updated as attributes, never by rewriting the item
(`store/ticket_items.py`). Every item goes through `item_budget` before it is sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.store import ticket_items
from relaydesk.store.item_budget import check_item, check_key, check_transaction
from relaydesk.tickets.model import (
    Comment,
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    Ticket,
    TicketStatus,
)

GSI = "gsi1"


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"ConditionalCheckFailedException",
                                                           "TransactionCanceledException"}


def _condition_failed(error: ClientError) -> bool:
    """A conditional write refused because of its condition (not throttling, not a conflicting transaction)."""
    code = error.response.get("Error", {}).get("Code")
    if code == "ConditionalCheckFailedException":
        return True
    reasons = [r.get("Code") for r in error.response.get("CancellationReasons", [])]
    return code == "TransactionCanceledException" and reasons[:1] == ["ConditionalCheckFailed"]


def _query_all(table: Any, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    while True:
        page = table.query(**kwargs)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


class DynamoDirectory:
    def __init__(self, table: Any) -> None:
        self._table = table
        self._client = table.meta.client

    def create_account(self, account: Account) -> None:
        try:
            self._client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table.name, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": {"pk": f"SUBDOMAIN#{account.subdomain}", "sk": "CLAIM",
                                  "account_id": account.account_id}}},
                {"Put": {"TableName": self._table.name, "ConditionExpression": "attribute_not_exists(pk)",
                         "Item": self._account_item(account)}},
            ])
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConflictError(f"subdomain {account.subdomain!r} is taken") from None
            raise

    def put_account(self, account: Account) -> None:
        self._table.put_item(Item=self._account_item(account))

    def get_account(self, account_id: str) -> Account:
        item = self._table.get_item(Key={"pk": f"ACCOUNT#{account_id}", "sk": "META"}).get("Item")
        if not item:
            raise NotFoundError(f"no account {account_id!r}")
        return Account.model_validate_json(item["doc"])

    def find_account_by_subdomain(self, subdomain: str) -> Account | None:
        claim = self._table.get_item(Key={"pk": f"SUBDOMAIN#{subdomain.lower()}", "sk": "CLAIM"}).get("Item")
        return self.get_account(claim["account_id"]) if claim else None

    def list_accounts(self) -> list[Account]:
        items = _query_all(self._table, IndexName=GSI,
                           KeyConditionExpression="gsi1pk = :p", ExpressionAttributeValues={":p": "ACCOUNTS"})
        return [Account.model_validate_json(i["doc"]) for i in items]

    def create_address(self, address: SupportAddress) -> None:
        try:
            self._table.put_item(Item=self._address_item(address), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConflictError(f"{address.email} is already a support address") from None
            raise

    def put_address(self, address: SupportAddress) -> None:
        self._table.put_item(Item=self._address_item(address))

    def get_address(self, email: str) -> SupportAddress | None:
        item = self._table.get_item(Key={"pk": f"ADDRESS#{email.lower()}", "sk": "META"}).get("Item")
        return SupportAddress.model_validate_json(item["doc"]) if item else None

    def list_addresses(self, account_id: str) -> list[SupportAddress]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": f"ACCOUNT#{account_id}"})
        return [SupportAddress.model_validate_json(i["doc"]) for i in items]

    def delete_address(self, email: str) -> None:
        self._table.delete_item(Key={"pk": f"ADDRESS#{email.lower()}", "sk": "META"})

    @staticmethod
    def _account_item(account: Account) -> dict:
        return {"pk": f"ACCOUNT#{account.account_id}", "sk": "META", "gsi1pk": "ACCOUNTS",
                "gsi1sk": account.account_id, "doc": account.model_dump_json()}

    @staticmethod
    def _address_item(address: SupportAddress) -> dict:
        return {"pk": f"ADDRESS#{address.email}", "sk": "META", "gsi1pk": f"ACCOUNT#{address.account_id}",
                "gsi1sk": f"ADDRESS#{address.email}", "doc": address.model_dump_json()}


class DynamoTickets:
    def __init__(self, table: Any) -> None:
        self._table = table
        self._client = table.meta.client  # the resource's own client: it takes plain Python values

    def create_ticket(self, ticket: Ticket) -> None:
        """The ticket with its comments and notification records in one transaction: all of them or none, so a
        ticket never exists without its first comment. ConflictError when the ticket exists (nothing is written)."""
        items = check_transaction(ticket_items.ticket_with_children(ticket))
        puts = [{"Put": {"TableName": self._table.name, "Item": item}} for item in items]
        puts[0]["Put"]["ConditionExpression"] = "attribute_not_exists(pk)"
        try:
            self._client.transact_write_items(TransactItems=puts)
        except ClientError as error:
            if _condition_failed(error):
                raise ConflictError(f"ticket {ticket.ticket_id} exists") from None
            raise

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        items = _query_all(self._table, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": f"TICKET#{ticket_id}"})
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        ticket = ticket_items.ticket_from_meta(meta)
        ticket.comments = [Comment.model_validate_json(i["doc"]) for i in items if i["sk"].startswith("COMMENT#")]
        ticket.notifications = [_notification_record(i) for i in items if i["sk"].startswith("NOTIF#")]
        return ticket

    def list_tickets(self, account_id: str) -> list[Ticket]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": f"ACCOUNT#{account_id}"})
        tickets = (self.get_ticket(i["pk"].removeprefix("TICKET#")) for i in items)
        return [t for t in tickets if t is not None]

    def add_comment(self, ticket_id: str, comment: Comment) -> None:
        self._table.put_item(Item=check_item(ticket_items.comment_item(ticket_id, comment)))

    def add_ccs(self, ticket_id: str, addresses: Iterable[str], *, limit: int) -> list[str]:
        return self._append_unique(ticket_id, "ccs", addresses, limit)

    def add_flags(self, ticket_id: str, flags: Iterable[str], *, limit: int) -> list[str]:
        return self._append_unique(ticket_id, "flags", flags, limit)

    def change_status(self, ticket_id: str, status: TicketStatus, *, only_from: Iterable[TicketStatus]) -> bool:
        allowed = {f":from{i}": s.value for i, s in enumerate(only_from)}
        if not allowed:
            raise ValueError("change_status needs the statuses it may change from")
        return self._update_if(ticket_id, "SET #status = :to", f"#status IN ({', '.join(allowed)})",
                               {"#status": "status"}, {":to": status.value, **allowed})

    def touch(self, ticket_id: str, at: datetime) -> bool:
        return self._update_if(ticket_id, "SET updated_at = :at",
                               "attribute_not_exists(updated_at) OR updated_at < :at", {},
                               {":at": ticket_items.stamp(at)})

    def _append_unique(self, ticket_id: str, attribute: str, values: Iterable[str], limit: int) -> list[str]:
        """Each value appended unless the list holds it or is full: one conditional UpdateItem per value, so two
        writers adding at the same moment both keep theirs, and a retry adds nothing twice."""
        added = []
        for value in dict.fromkeys(values):
            if self._update_if(ticket_id, "SET #list = list_append(if_not_exists(#list, :none), :one)",
                               "attribute_not_exists(#list) OR (NOT contains(#list, :value) AND size(#list) < :limit)",
                               {"#list": attribute}, {":none": [], ":one": [value], ":value": value, ":limit": limit}):
                added.append(value)
        return added

    def _update_if(self, ticket_id: str, update: str, condition: str, names: dict[str, str],
                   values: dict[str, Any]) -> bool:
        """One UpdateItem of the ticket's META item, only while the ticket exists and `condition` holds; False when
        it did not hold (nothing was changed)."""
        key = check_key(ticket_items.ticket_key(ticket_id))
        names_given = {"ExpressionAttributeNames": names} if names else {}
        try:
            self._table.update_item(Key=key, UpdateExpression=update,
                                    ConditionExpression=f"attribute_exists(pk) AND ({condition})",
                                    ExpressionAttributeValues=values, **names_given)
        except ClientError as error:
            if _condition_failed(error):
                return False
            raise
        return True

    def put_notification(self, ticket_id: str, record: NotificationRecord) -> None:
        # The whole record in `doc`: replacing the item also folds in the attempts `append_attempt` kept beside it.
        self._table.put_item(Item=check_item(ticket_items.notification_item(ticket_id, record)))

    def append_attempt(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt) -> None:
        # Attempts after the record was written go to their own list attribute, so recording one is a single
        # UpdateItem instead of a read and a write of the whole JSON document.
        self._table.update_item(
            Key=check_key({"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{new_record.notification_id}"}),
            UpdateExpression="SET doc = if_not_exists(doc, :doc), "
                             "attempts = list_append(if_not_exists(attempts, :none), :attempt), #status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":doc": new_record.model_dump_json(), ":none": [],
                                       ":attempt": [attempt.model_dump_json()], ":status": attempt.status.value})

    def get_notification(self, ticket_id: str, notification_id: str) -> NotificationRecord | None:
        item = self._table.get_item(Key={"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{notification_id}"}).get("Item")
        return _notification_record(item) if item else None

    def link_message_id(self, message_id: str, ticket_id: str) -> None:
        self._table.put_item(Item=check_item(ticket_items.message_link_item(message_id, ticket_id)))

    def find_ticket_by_message_id(self, message_id: str) -> str | None:
        key = ticket_items.message_link_item(message_id, "")
        item = self._table.get_item(Key=check_key({"pk": key["pk"], "sk": key["sk"]})).get("Item")
        return item["ticket_id"] if item else None


def _notification_record(item: dict) -> NotificationRecord:
    """The record in `doc`, then the attempts `append_attempt` added since, and their latest status."""
    record = NotificationRecord.model_validate_json(item["doc"])
    appended = item.get("attempts") or []
    if appended:
        record.attempts.extend(DeliveryAttempt.model_validate_json(a) for a in appended)
        record.status = DeliveryStatus(item["status"])
    return record
