"""The items of the tickets table, as DynamoDB stores them: built here for the DynamoDB adapter and for the in-memory
fake alike, so both check the same items against DynamoDB's limits (`item_budget`).

A ticket's META item keeps what never changes in `doc` (JSON) and what changes concurrently as attributes of their
own, updated in place (`UpdateExpression`) and never by rewriting the item: `ccs` and `flags` (lists), `status`,
`updated_at` (ISO 8601 UTC, so that strings compare as times). Its comments and notification records are items of
their own (`COMMENT#...`, `NOTIF#...`), so a long thread never meets the item limit.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from relaydesk.tickets.model import Comment, NotificationRecord, Ticket

MUTABLE_FIELDS = ("ccs", "flags", "status", "updated_at")


def ticket_key(ticket_id: str) -> dict[str, str]:
    return {"pk": f"TICKET#{ticket_id}", "sk": "META"}


def stamp(at: datetime) -> str:
    """A time as the table keeps it: UTC, microseconds, so that comparing two strings compares two times."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def meta_item(ticket: Ticket) -> dict[str, Any]:
    doc = ticket.model_dump_json(exclude={"comments", "notifications", *MUTABLE_FIELDS})
    return {**ticket_key(ticket.ticket_id), "gsi1pk": f"ACCOUNT#{ticket.account_id}",
            "gsi1sk": f"TICKET#{ticket.created_at.isoformat()}", "doc": doc, "ccs": list(ticket.ccs),
            "flags": list(ticket.flags), "status": ticket.status.value, "updated_at": stamp(ticket.updated_at)}


def ticket_from_meta(item: dict[str, Any]) -> Ticket:
    """The ticket of a META item: `doc`, with the attributes updated since laid over it (an item written before
    the attributes existed keeps its values in `doc`)."""
    fields = json.loads(item["doc"])
    fields.update({name: item[name] for name in MUTABLE_FIELDS if name in item})
    return Ticket.model_validate(fields)


def ticket_with_children(ticket: Ticket) -> list[dict[str, Any]]:
    """What creating a ticket writes in one transaction: its META item first, then its comments and records."""
    return [meta_item(ticket), *(comment_item(ticket.ticket_id, c) for c in ticket.comments),
            *(notification_item(ticket.ticket_id, r) for r in ticket.notifications)]


def comment_item(ticket_id: str, comment: Comment) -> dict[str, Any]:
    return {"pk": f"TICKET#{ticket_id}", "sk": f"COMMENT#{comment.created_at.isoformat()}#{comment.comment_id}",
            "doc": comment.model_dump_json()}


def notification_item(ticket_id: str, record: NotificationRecord) -> dict[str, Any]:
    return {"pk": f"TICKET#{ticket_id}", "sk": f"NOTIF#{record.notification_id}", "doc": record.model_dump_json()}


def message_link_item(message_id: str, ticket_id: str) -> dict[str, Any]:
    return {"pk": f"MSGID#{message_id.strip().lower()}", "sk": "LINK", "ticket_id": ticket_id}


def ledger_key(ses_message_id: str) -> dict[str, str]:
    return {"pk": f"INBOUND#{ses_message_id}", "sk": "DECISION"}


def ledger_item(ses_message_id: str, decision_json: str) -> dict[str, Any]:
    return {**ledger_key(ses_message_id), "doc": decision_json, "done": False}
