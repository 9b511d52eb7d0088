"""DynamoDB adapters: accounts and addresses in the directory table, tickets and their children in the tickets table.

Both tables key on (pk, sk) with one GSI `gsi1` on (gsi1pk, gsi1sk); each item holds the model as JSON in `doc`.
A ticket's comments and notification records are items of their own, so a long thread never meets the 400 KB item
limit. The tickets table's items are built by `store/ticket_items.py` and every one goes through `item_budget` before
it is sent: nothing DynamoDB would refuse is half-written.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.store import ticket_items
from relaydesk.store.item_budget import check_item, check_key, check_transaction
from relaydesk.store.ports import created_verified, resolve_claims
from relaydesk.store.ticket_items import status_partition as _status_partition
from relaydesk.tickets.model import (
    UNASSIGNED,
    Agent,
    Comment,
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    Ticket,
    TicketPage,
    TicketPosition,
    TicketQuery,
    TicketStatus,
    sort_stamp,
)

GSI = "gsi1"
STATUS_GSI = "gsi2"  # tickets table only: an account's tickets in one status, by update time
OWNER = "OWNER"  # sort key of the item naming the account that verified an address first


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
        put = {"TableName": self._table.name, "ConditionExpression": "attribute_not_exists(pk)",
               "Item": self._address_item(address)}
        writes = [{"Put": put}]
        if created_verified(address):
            writes.append({"Put": {"TableName": self._table.name, "ConditionExpression": "attribute_not_exists(pk)",
                                   "Item": _owner_item(address.email, address.account_id)}})
        try:
            self._client.transact_write_items(TransactItems=writes)
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConflictError(f"{address.email} is already a support address") from error
            raise

    def put_address(self, address: SupportAddress) -> None:
        self._table.put_item(Item=self._address_item(address))

    def get_account_address(self, account_id: str, email: str) -> SupportAddress | None:
        item = self._table.get_item(Key=_address_key(email, account_id), ConsistentRead=True).get("Item")
        return SupportAddress.model_validate_json(item["doc"]) if item else None

    def list_addresses(self, account_id: str) -> list[SupportAddress]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": f"ACCOUNT#{account_id}"})
        return [SupportAddress.model_validate_json(i["doc"]) for i in items]

    def delete_address(self, account_id: str, email: str) -> None:
        self._table.delete_item(Key=_address_key(email, account_id))
        try:  # its ownership too, when this account had it
            self._table.delete_item(Key=_owner_key(email), ConditionExpression="account_id = :a",
                                    ExpressionAttributeValues={":a": account_id})
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def _claims(self, email: str) -> tuple[list[SupportAddress], str | None]:
        items = _query_all(self._table, KeyConditionExpression="pk = :p", ConsistentRead=True,
                           ExpressionAttributeValues={":p": f"ADDRESS#{email.lower()}"})
        owner = next((i["account_id"] for i in items if i["sk"] == OWNER), None)
        return [SupportAddress.model_validate_json(i["doc"]) for i in items if i["sk"] != OWNER], owner

    def list_claims(self, email: str) -> list[SupportAddress]:
        return self._claims(email)[0]

    def owner_of(self, email: str) -> str | None:
        item = self._table.get_item(Key=_owner_key(email), ConsistentRead=True).get("Item")
        return item["account_id"] if item else None

    def claim_address(self, account_id: str, email: str) -> None:
        try:
            self._table.put_item(Item=_owner_item(email, account_id),
                                 ConditionExpression="attribute_not_exists(pk) OR account_id = :a",
                                 ExpressionAttributeValues={":a": account_id})
        except ClientError as error:
            if _is_conditional_failure(error):
                raise ConflictError(f"{email} is owned by another account") from None
            raise

    def get_address(self, email: str) -> SupportAddress | None:
        return resolve_claims(*self._claims(email))

    @staticmethod
    def _account_item(account: Account) -> dict:
        return {"pk": f"ACCOUNT#{account.account_id}", "sk": "META", "gsi1pk": "ACCOUNTS",
                "gsi1sk": account.account_id, "doc": account.model_dump_json()}

    @staticmethod
    def _address_item(address: SupportAddress) -> dict:
        return {**_address_key(address.email, address.account_id), "gsi1pk": f"ACCOUNT#{address.account_id}",
                "gsi1sk": f"ADDRESS#{address.email}", "doc": address.model_dump_json()}


def _address_key(email: str, account_id: str) -> dict:
    """Each account's record of an address is an item of its own, beside its owner marker: pk ADDRESS#<email>."""
    return {"pk": f"ADDRESS#{email.lower()}", "sk": f"ACCOUNT#{account_id}"}


def _owner_key(email: str) -> dict:
    return {"pk": f"ADDRESS#{email.lower()}", "sk": OWNER}


def _owner_item(email: str, account_id: str) -> dict:
    return {**_owner_key(email), "account_id": account_id}


class DynamoTickets:
    """A ticket is its META item plus one item per comment and per notification record. META keeps the ticket as
    created in `doc`, and the fields that change as attributes of their own beside it (status, assignee, ccs and
    followers as string sets, updated_at), each changed by an UpdateItem that touches only them: two agents (or an
    agent and inbound) changing different things at once both win. `get_ticket` reads `doc`, then the attributes."""

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
                raise ConflictError(f"ticket {ticket.ticket_id} exists") from error
            raise

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        items = _query_all(self._table, KeyConditionExpression="pk = :p",
                           ExpressionAttributeValues={":p": f"TICKET#{ticket_id}"})
        meta = next((i for i in items if i["sk"] == "META"), None)
        if meta is None:
            return None
        ticket = _ticket_of(meta)
        ticket.comments = [Comment.model_validate_json(i["doc"]) for i in items if i["sk"].startswith("COMMENT#")]
        ticket.notifications = [_notification_record(i) for i in items if i["sk"].startswith("NOTIF#")]
        return ticket

    def list_tickets(self, account_id: str) -> list[Ticket]:
        items = _query_all(self._table, IndexName=GSI, KeyConditionExpression="gsi1pk = :p",
                           ExpressionAttributeValues={":p": f"ACCOUNT#{account_id}"})
        tickets = (self.get_ticket(i["pk"].removeprefix("TICKET#")) for i in items)
        return [t for t in tickets if t is not None]

    def delete_ticket(self, ticket_id: str) -> None:
        # META first: a ticket without it is gone for every reader, even if the delete of its children stops here.
        self._table.delete_item(Key={"pk": f"TICKET#{ticket_id}", "sk": "META"})
        items = _query_all(self._table, KeyConditionExpression="pk = :p", ProjectionExpression="pk, sk",
                           ExpressionAttributeValues={":p": f"TICKET#{ticket_id}"})
        for item in items:  # a suspended ticket has one comment: no batch (and no BatchWriteItem grant) needed
            self._table.delete_item(Key={"pk": item["pk"], "sk": item["sk"]})

    def list_ticket_page(self, account_id: str, query: TicketQuery) -> TicketPage:
        """A Query of one index partition: gsi1 (the account) or, with a status, gsi2 (the account's tickets in
        that status); both sorted by `<updated_at>#<ticket id>`, newest first. The requester and the assignee are
        filters on that query, so DynamoDB may return short pages: they are read on until the page is full."""
        index, partition = (GSI, f"ACCOUNT#{account_id}") if query.status is None else \
            (STATUS_GSI, _status_partition(account_id, query.status))
        pk_name, sk_name = ("gsi1pk", "gsi1sk") if index == GSI else ("gsi2pk", "gsi2sk")
        prefix = "TICKET#" if index == GSI else ""
        kwargs: dict[str, Any] = {
            "IndexName": index, "ScanIndexForward": False,
            "KeyConditionExpression": f"{pk_name} = :p AND {sk_name} BETWEEN :low AND :high",
            "ExpressionAttributeValues": {
                ":p": partition, ":high": f"{prefix}\uffff",
                ":low": prefix + (sort_stamp(query.updated_since) if query.updated_since else "0")}}
        filters = []
        if query.requester:
            filters.append("requester = :r")
            kwargs["ExpressionAttributeValues"][":r"] = query.requester
        if query.assignee == UNASSIGNED:
            filters.append("attribute_not_exists(assignee)")
        elif query.assignee:
            filters.append("assignee_email = :a")
            kwargs["ExpressionAttributeValues"][":a"] = query.assignee
        if filters:
            kwargs["FilterExpression"] = " AND ".join(filters)
        if query.after is not None:
            # Built from the position and the caller's own account, never from the caller's bytes: a cursor
            # cannot reach another account's partition.
            sort_value = f"{prefix}{query.after.updated}#{query.after.ticket_id}"
            kwargs["ExclusiveStartKey"] = {"pk": f"TICKET#{query.after.ticket_id}", "sk": "META",
                                           pk_name: partition, sk_name: sort_value}
        found: list[Ticket] = []
        while True:
            kwargs["Limit"] = query.limit + 1 - len(found)
            page = self._table.query(**kwargs)
            found.extend(_ticket_of(item) for item in page.get("Items", []))
            if len(found) > query.limit:
                last = found[query.limit - 1]
                return TicketPage(tickets=found[:query.limit],
                                  next=TicketPosition(updated=sort_stamp(last.updated_at), ticket_id=last.ticket_id))
            if "LastEvaluatedKey" not in page:
                return TicketPage(tickets=found)
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def add_comment(self, ticket_id: str, comment: Comment) -> None:
        self._put_comment(ticket_id, comment)
        self._touch(ticket_id, comment.created_at)

    def _put_comment(self, ticket_id: str, comment: Comment) -> None:
        self._table.put_item(Item=check_item(ticket_items.comment_item(ticket_id, comment)))

    def _touch(self, ticket_id: str, at: datetime) -> None:
        """updated_at moves forward only: a retried, older write must not make the ticket look untouched."""
        stamp = sort_stamp(at)
        try:
            self._table.update_item(
                Key=self._meta_key(ticket_id),
                UpdateExpression="SET updated_at = :u, gsi1sk = :s1, gsi2sk = :s2",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(updated_at) OR updated_at < :u)",
                ExpressionAttributeValues={":u": stamp, ":s1": f"TICKET#{stamp}#{ticket_id}",
                                           ":s2": f"{stamp}#{ticket_id}"})
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise

    def change_status(self, ticket_id: str, status: TicketStatus, at: datetime, *,
                      from_statuses: frozenset[TicketStatus]) -> bool:
        allowed = {f":from{i}": s.value for i, s in enumerate(sorted(from_statuses))}
        account_id = self._account_of(ticket_id)
        try:
            self._update(ticket_id, at, "#status = :status, gsi2pk = :g2",
                         condition=f"#status IN ({', '.join(allowed)})", names={"#status": "status"},
                         values={":status": status.value, ":g2": _status_partition(account_id, status), **allowed})
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            self._account_of(ticket_id)  # NotFoundError if the ticket went away; otherwise the status was not one
            return False
        return True

    def assign(self, ticket_id: str, agent: Agent | None, at: datetime) -> None:
        if agent is None:
            self._update(ticket_id, at, "", remove="assignee, assignee_email")
            return
        attributes = ticket_items.assignee_attributes(agent)
        self._update(ticket_id, at, ", ".join(f"{name} = :{name}" for name in attributes),
                     values={f":{name}": value for name, value in attributes.items()},
                     remove="" if "assignee_email" in attributes else "assignee_email")

    def add_ccs(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool:
        return self._add_to_set(ticket_id, "ccs", addresses, at, limit)

    def remove_ccs(self, ticket_id: str, addresses: list[str], at: datetime) -> None:
        self._remove_from_set(ticket_id, "ccs", addresses, at)

    def add_flags(self, ticket_id: str, flags: list[str], at: datetime, *, limit: int) -> bool:
        return self._add_to_set(ticket_id, "flags", flags, at, limit)

    def add_followers(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool:
        return self._add_to_set(ticket_id, "followers", addresses, at, limit)

    def remove_followers(self, ticket_id: str, addresses: list[str], at: datetime) -> None:
        self._remove_from_set(ticket_id, "followers", addresses, at)

    def _add_to_set(self, ticket_id: str, name: str, addresses: list[str], at: datetime, limit: int) -> bool:
        """ADD to a string set: concurrent adds all land. The limit holds even then, because the condition counts
        the set as stored at the write: at most `limit - len(addresses)` before adding (stricter than needed when
        some are already there, so such a call is retried knowing which are new)."""
        if not addresses:
            return True
        wanted = set(addresses)
        for _ in range(2):
            try:
                self._update(ticket_id, at, "", add="#set :new", names={"#set": name},
                             condition="attribute_not_exists(#set) OR size(#set) <= :room",
                             values={":new": wanted, ":room": limit - len(wanted)})
                return True
            except ClientError as error:
                if not _is_conditional_failure(error):
                    raise
            item = self._table.get_item(Key=self._meta_key(ticket_id), ConsistentRead=True).get("Item")
            if item is None:
                raise NotFoundError(f"no ticket {ticket_id!r}")
            present = set(item.get(name) or ())
            if len(present | set(addresses)) > limit:
                return False
            wanted = set(addresses) - present
            if not wanted:
                return True
        return False

    def _remove_from_set(self, ticket_id: str, name: str, addresses: list[str], at: datetime) -> None:
        if addresses:
            self._update(ticket_id, at, "", delete="#set :gone", names={"#set": name},
                         values={":gone": set(addresses)})

    def _update(self, ticket_id: str, at: datetime, assignments: str, *, condition: str = "",
                names: dict[str, str] | None = None, values: dict[str, Any] | None = None, add: str = "",
                delete: str = "", remove: str = "") -> None:
        """One UpdateItem of the META item: the given clauses plus updated_at; NotFoundError for no ticket."""
        stamp = sort_stamp(at)
        sets = ", ".join(filter(None, [assignments, "updated_at = :u, gsi1sk = :s1, gsi2sk = :s2"]))
        expression = f"SET {sets}" + (f" ADD {add}" if add else "") + (f" DELETE {delete}" if delete else "") + \
            (f" REMOVE {remove}" if remove else "")
        kwargs: dict[str, Any] = {
            "Key": self._meta_key(ticket_id), "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)" + (f" AND ({condition})" if condition else ""),
            "ExpressionAttributeValues": {":u": stamp, ":s1": f"TICKET#{stamp}#{ticket_id}",
                                          ":s2": f"{stamp}#{ticket_id}", **(values or {})}}
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._table.update_item(**kwargs)
        except ClientError as error:
            if _is_conditional_failure(error) and not condition:
                raise NotFoundError(f"no ticket {ticket_id!r}") from error
            raise

    def _account_of(self, ticket_id: str) -> str:
        item = self._table.get_item(Key=self._meta_key(ticket_id), ProjectionExpression="gsi1pk").get("Item")
        if item is None:
            raise NotFoundError(f"no ticket {ticket_id!r}")
        return str(item["gsi1pk"]).removeprefix("ACCOUNT#")

    def put_notification(self, ticket_id: str, record: NotificationRecord) -> None:
        # The whole record in `doc`: replacing the item also folds in the attempts `append_attempt` kept beside it.
        self._table.put_item(Item=check_item(ticket_items.notification_item(ticket_id, record)))

    def append_attempt(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt) -> None:
        update = self.attempt_update(ticket_id, new_record, attempt)
        del update["TableName"]
        self._table.update_item(**update)

    def attempt_update(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt,
                       ) -> dict[str, Any]:
        """The write that records a delivery attempt: UpdateItem's parameters, and with TableName one part of a
        TransactWriteItems (`store/outcome_writes.py`). Attempts after the record was written go to their own list
        attribute, so recording one is a single UpdateItem instead of a read and a write of the whole document."""
        return dict(
            TableName=self._table.name,
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
        link = ticket_items.message_link_item(message_id, "")
        item = self._table.get_item(Key=check_key({"pk": link["pk"], "sk": link["sk"]})).get("Item")
        return item["ticket_id"] if item else None

    @staticmethod
    def _meta_key(ticket_id: str) -> dict[str, str]:
        return {"pk": f"TICKET#{ticket_id}", "sk": "META"}


def _ticket_of(meta: dict) -> Ticket:
    """The ticket as created (`doc`), with the attributes written since on top. An item written with its
    attributes (it has `status`) is authoritative for them all: a set emptied by DELETE is absent, not unknown."""
    ticket = Ticket.model_validate_json(meta["doc"])
    complete = "status" in meta
    if complete:
        ticket.status = TicketStatus(meta["status"])
    if "updated_at" in meta:
        ticket.updated_at = datetime.strptime(meta["updated_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    for name in ("ccs", "followers"):
        if complete or name in meta:
            setattr(ticket, name, _ordered(getattr(ticket, name), meta.get(name)))
    # Flags are only ever added: those of `doc` (an item from before they were a set) and those of the set.
    ticket.flags = _ordered(ticket.flags, set(ticket.flags) | set(meta.get("flags") or ()))
    if complete or "assignee" in meta:
        ticket.assignee = Agent.model_validate_json(meta["assignee"]) if meta.get("assignee") else None
    return ticket


def _ordered(first: list[str], stored: Any) -> list[str]:
    """A set as stored, in the order the ticket first had them, then the rest sorted."""
    current = set(stored or ())
    return [a for a in first if a in current] + sorted(current - set(first))


def _notification_record(item: dict) -> NotificationRecord:
    """The record in `doc`, then the attempts `append_attempt` added since, and their latest status."""
    record = NotificationRecord.model_validate_json(item["doc"])
    appended = item.get("attempts") or []
    if appended:
        record.attempts.extend(DeliveryAttempt.model_validate_json(a) for a in appended)
        record.status = DeliveryStatus(item["status"])
    return record
