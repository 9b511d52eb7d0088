"""DynamoDB adapters: accounts and addresses in the directory table, tickets and their children in the tickets table.

Both tables key on (pk, sk) with one GSI `gsi1` on (gsi1pk, gsi1sk); each item holds the model as JSON in `doc`.
A ticket's comments and notification records are items of their own, so a long thread never meets the 400 KB item
limit.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.tickets.model import Comment, DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket

GSI = "gsi1"


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in {"ConditionalCheckFailedException",
                                                           "TransactionCanceledException"}


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
                raise ConflictError(f"subdomain {account.subdomain!r} is taken") from error
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
                raise ConflictError(f"{address.email} is already a support address") from error
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

    def create_ticket(self, ticket: Ticket) -> None:
        try:
            self._table.put_item(Item=self._ticket_item(ticket), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConflictError(f"ticket {ticket.ticket_id} exists") from error
            raise
        for comment in ticket.comments:
            self.add_comment(ticket.ticket_id, comment)
        for record in ticket.notifications:
            self.put_notification(ticket.ticket_id, record)

    def update_ticket(self, ticket: Ticket) -> None:
        self._table.put_item(Item=self._ticket_item(ticket))

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        items = _query_all(self._table, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": f"TICKET#{ticket_id}"})
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        ticket = Ticket.model_validate_json(meta["doc"])
        ticket.comments = [Comment.model_validate_json(i["doc"]) for i in items if i["sk"].startswith("COMMENT#")]
        ticket.notifications = [_notification_record(i) for i in items if i["sk"].startswith("NOTIF#")]
        return ticket

    def list_tickets(self, account_id: str) -> list[Ticket]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": f"ACCOUNT#{account_id}"})
        tickets = (self.get_ticket(i["pk"].removeprefix("TICKET#")) for i in items)
        return [t for t in tickets if t is not None]

    def add_comment(self, ticket_id: str, comment: Comment) -> None:
        sort_key = f"COMMENT#{comment.created_at.isoformat()}#{comment.comment_id}"
        self._table.put_item(Item={"pk": f"TICKET#{ticket_id}", "sk": sort_key, "doc": comment.model_dump_json()})

    def put_notification(self, ticket_id: str, record: NotificationRecord) -> None:
        # The whole record in `doc`: replacing the item also folds in the attempts `append_attempt` kept beside it.
        self._table.put_item(Item={"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{record.notification_id}",
                                   "doc": record.model_dump_json()})

    def append_attempt(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt) -> None:
        # Attempts after the record was written go to their own list attribute, so recording one is a single
        # UpdateItem instead of a read and a write of the whole JSON document.
        self._table.update_item(
            Key={"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{new_record.notification_id}"},
            UpdateExpression="SET doc = if_not_exists(doc, :doc), "
                             "attempts = list_append(if_not_exists(attempts, :none), :attempt), #status = :status",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":doc": new_record.model_dump_json(), ":none": [],
                                       ":attempt": [attempt.model_dump_json()], ":status": attempt.status.value})

    def get_notification(self, ticket_id: str, notification_id: str) -> NotificationRecord | None:
        item = self._table.get_item(Key={"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{notification_id}"}).get("Item")
        return _notification_record(item) if item else None

    def link_message_id(self, message_id: str, ticket_id: str) -> None:
        self._table.put_item(Item={"pk": f"MSGID#{message_id.strip().lower()}", "sk": "LINK",
                                   "ticket_id": ticket_id})

    def find_ticket_by_message_id(self, message_id: str) -> str | None:
        item = self._table.get_item(Key={"pk": f"MSGID#{message_id.strip().lower()}", "sk": "LINK"}).get("Item")
        return item["ticket_id"] if item else None

    @staticmethod
    def _ticket_item(ticket: Ticket) -> dict:
        meta = ticket.model_copy(update={"comments": [], "notifications": []})
        return {"pk": f"TICKET#{ticket.ticket_id}", "sk": "META", "gsi1pk": f"ACCOUNT#{ticket.account_id}",
                "gsi1sk": f"TICKET#{ticket.created_at.isoformat()}", "doc": meta.model_dump_json()}


def _notification_record(item: dict) -> NotificationRecord:
    """The record in `doc`, then the attempts `append_attempt` added since, and their latest status."""
    record = NotificationRecord.model_validate_json(item["doc"])
    appended = item.get("attempts") or []
    if appended:
        record.attempts.extend(DeliveryAttempt.model_validate_json(a) for a in appended)
        record.status = DeliveryStatus(item["status"])
    return record
