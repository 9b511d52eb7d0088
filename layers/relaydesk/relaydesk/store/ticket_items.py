"""The items of the tickets table, as DynamoDB stores them: built here for the DynamoDB adapter and for the in-memory
fake alike, so both check the same items against DynamoDB's limits (`item_budget`).

A ticket's META item keeps the ticket as created in `doc`, and what changes as attributes of their own beside it
(`status`, `assignee` and its `assignee_email`, `ccs`, `followers` and `flags` as string sets, `updated_at`), each
changed in place by an UpdateItem (`store/dynamodb.py`), never by rewriting the item. Its comments and notification
records are items of their own (`COMMENT#...`, `NOTIF#...`), so a long thread never meets the item limit.
"""

from __future__ import annotations

from typing import Any

from relaydesk.tickets.model import Agent, Comment, NotificationRecord, Ticket, TicketStatus, sort_stamp


def status_partition(account_id: str, status: TicketStatus) -> str:
    return f"ACCOUNT#{account_id}#STATUS#{status.value}"


def meta_item(ticket: Ticket) -> dict[str, Any]:
    meta = ticket.model_copy(update={"comments": [], "notifications": []})
    stamp = sort_stamp(ticket.updated_at)
    item: dict[str, Any] = {
        "pk": f"TICKET#{ticket.ticket_id}", "sk": "META", "doc": meta.model_dump_json(),
        "gsi1pk": f"ACCOUNT#{ticket.account_id}", "gsi1sk": f"TICKET#{stamp}#{ticket.ticket_id}",
        "gsi2pk": status_partition(ticket.account_id, ticket.status), "gsi2sk": f"{stamp}#{ticket.ticket_id}",
        "status": ticket.status.value, "requester": ticket.requester, "updated_at": stamp}
    for name in ("ccs", "followers", "flags"):  # DynamoDB has no empty set: an absent one is empty
        if getattr(ticket, name):
            item[name] = set(getattr(ticket, name))
    if ticket.assignee is not None:
        item.update(assignee_attributes(ticket.assignee))
    return item


def assignee_attributes(agent: Agent) -> dict[str, str]:
    """The assignee, and its address apart (lower case) so a ticket page can be filtered by it."""
    attributes = {"assignee": agent.model_dump_json()}
    if agent.email:
        attributes["assignee_email"] = agent.email.lower()
    return attributes


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
