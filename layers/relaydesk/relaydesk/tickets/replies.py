"""An agent answers a ticket: a public reply (mailed to the requester and CCs, and to the followers marked as
their copy) or an internal note (mailed to nobody).

Order of writes, each repeatable: the comment (naming the notifications it sends), then per notification its
record, its thread links and the queue, then the status. A request killed anywhere is finished by sending it
again with the same request id: the ids derive from it, so nothing is written twice and nothing is sent twice
(the relay sends a notification id once). Killed without a retry, the comment stands and its notifications show
on the ticket as never queued."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.clock import utcnow
from relaydesk.errors import RuleViolation
from relaydesk.store.ports import Stores
from relaydesk.tickets import notices, outbox, requests, uploads
from relaydesk.tickets.model import Agent, Comment, Ticket, TicketStatus
from relaydesk.tickets.queries import ticket_of
from relaydesk.tickets.status import check_status

MAX_BODY_CHARS = 20_000  # a long answer is a few thousand; this keeps text + HTML far from SQS's 256 KB
SQS_BUDGET = 240_000  # bytes of one notification as JSON


@dataclass(frozen=True)
class Posted:
    ticket: Ticket
    comment: Comment
    notification_ids: list[str]
    request_id: str


def reply(stores: Stores, account_id: str, ticket_id: str, *, agent: Agent, body: str,
          attachments: list[str] | None = None, status: TicketStatus | str | None = None,
          request_id: str | None = None, now: datetime | None = None) -> Posted:
    return _post(stores, account_id, ticket_id, agent=agent, body=body, attachments=attachments or [],
                 public=True, status=status, request_id=request_id, now=now)


def note(stores: Stores, account_id: str, ticket_id: str, *, agent: Agent, body: str,
         attachments: list[str] | None = None, request_id: str | None = None, now: datetime | None = None) -> Posted:
    return _post(stores, account_id, ticket_id, agent=agent, body=body, attachments=attachments or [],
                 public=False, status=None, request_id=request_id, now=now)


def checked_body(body: str) -> str:
    text = (body or "").replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not text:
        raise RuleViolation("the comment is empty", rule="empty_comment", action="Write something, then send.")
    if len(text) > MAX_BODY_CHARS:
        raise RuleViolation(f"a comment is at most {MAX_BODY_CHARS} characters (this one is {len(text)})",
                            rule="comment_too_long", action="Shorten it, or attach the long part as a file.")
    return text


def _post(stores: Stores, account_id: str, ticket_id: str, *, agent: Agent, body: str, attachments: list[str],
          public: bool, status: TicketStatus | str | None, request_id: str | None,
          now: datetime | None) -> Posted:
    request_id = requests.checked(request_id)
    text = checked_body(body)
    wanted_status = check_status(status) if status is not None else None
    ticket = ticket_of(stores, account_id, ticket_id)
    if ticket.status is TicketStatus.SUSPENDED:
        raise RuleViolation("the ticket is suspended", rule="ticket_suspended",
                            action="A suspended ticket is reviewed and released before anyone answers it.")
    account = stores.directory.get_account(account_id)
    comment_id = requests.derived_id("C", account_id, ticket.ticket_id, request_id, "comment")
    comment = next((c for c in ticket.comments if c.comment_id == comment_id), None)
    notes: list = []
    if comment is None or public:  # a retry rebuilds the same notifications from the comment as first written
        at = comment.created_at if comment else (now or utcnow())
        text = comment.body if comment else text
        refs = comment.attachments if comment else uploads.uploaded(stores, account_id, attachments)
        if public:
            ids = (requests.derived_id("N", account_id, ticket.ticket_id, request_id, "public"),
                   requests.derived_id("N", account_id, ticket.ticket_id, request_id, "followers"))
            who = notices.recipients(ticket, account, agent, outbox.own_addresses(stores, account))
            notes = notices.reply_notices(ticket, account, comment_id=comment_id, agent=agent, body=text, at=at,
                                          attachments=refs, who=who, ids=ids,
                                          support_address=outbox.sending_address(stores, account, ticket))
            for notice in notes:
                if len(notice.model_dump_json().encode()) > SQS_BUDGET:
                    raise RuleViolation("the reply is too long to send with this thread", rule="comment_too_long",
                                        action="Shorten it, or attach the long part as a file.")
        if comment is None:
            comment = Comment(comment_id=comment_id, author=agent.name, agent=agent, body=text, public=public,
                              attachments=refs, notification_ids=[n.notification_id for n in notes],
                              created_at=at)
            stores.tickets.add_comment(ticket.ticket_id, comment)
    for notice in notes:
        if notice.notification_id in comment.notification_ids:
            outbox.send(stores, notice)
    target = wanted_status or (TicketStatus.OPEN if public and ticket.status is TicketStatus.NEW else None)
    if target is not None:
        others = frozenset({TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED} - {target})
        stores.tickets.change_status(ticket.ticket_id, target, comment.created_at, from_statuses=others)
    return Posted(ticket=ticket_of(stores, account_id, ticket_id), comment=comment,
                  notification_ids=list(comment.notification_ids), request_id=request_id)
