"""A ticket's mail thread: the Message-IDs of its public messages in order, the headers a new notification gets
from them, and the conversation a notification shows."""

from __future__ import annotations

from relaydesk.tickets.model import Comment, Ticket
from relaydesk.tickets.render import Message

REFERENCES_KEPT = 10  # the first message and the newest: what clients need to thread, not the whole history


def message_ids(ticket: Ticket, before: str | None = None) -> list[str]:
    """Every Message-ID of the public conversation, oldest first, up to (not including) comment `before`: a mail's
    own Message-ID, or for an agent's reply the Message-ID of its notification to the requester."""
    public = {ticket.requester.lower(), *(c.lower() for c in ticket.ccs)}
    # the mail the requester and CCs got, not the followers' copy: theirs is the thread they answer
    sent = {record.notification_id: record.message_id for record in ticket.notifications
            if public & {r.lower() for r in record.recipients}}
    found: list[str] = []
    for comment in _public(ticket, before):
        if comment.source_message_id:
            found.append(comment.source_message_id)
        else:
            found += [sent[n] for n in comment.notification_ids if n in sent][:1]
    return list(dict.fromkeys(found))


def headers(ticket: Ticket, before: str | None = None) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) of a new notification: the last message of the thread, and the thread's first
    message plus its newest ones."""
    ids = message_ids(ticket, before)
    if not ids:
        return None, []
    references = ids if len(ids) <= REFERENCES_KEPT else [ids[0], *ids[-(REFERENCES_KEPT - 1):]]
    return ids[-1], references


def conversation(ticket: Ticket, before: str | None = None) -> list[Message]:
    """The public messages before `before`, as a notification shows them (internal notes never)."""
    return [Message(author=_author(c), at=c.created_at, text=c.body, html=c.html_body)
            for c in _public(ticket, before)]


def _public(ticket: Ticket, before: str | None) -> list[Comment]:
    ordered = sorted(ticket.comments, key=lambda c: (c.created_at, c.comment_id))
    if before is not None:
        ordered = ordered[:next((i for i, c in enumerate(ordered) if c.comment_id == before), len(ordered))]
    return [c for c in ordered if c.public]


def _author(comment: Comment) -> str:
    return comment.agent.name if comment.agent is not None else comment.author
