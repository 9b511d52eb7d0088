"""The notifications inbound sends: an acknowledgement of a new request, and the news of a comment."""

from __future__ import annotations

from relaydesk import markers
from relaydesk.inbound.outcome import Decision
from relaydesk.notification import Notification, NotificationKind
from relaydesk.tickets import render

QUOTED_LINES = 30  # enough of the request to recognise it, not the whole thread
QUOTED_CHARS = 4000  # SQS messages are at most 256 KB; one long line must not get near it


def _quote(text: str) -> str:
    lines = (text or "")[:QUOTED_CHARS].strip().splitlines()
    quoted = [f"> {line}".rstrip() for line in lines[:QUOTED_LINES]]
    if len(lines) > QUOTED_LINES or len(text or "") > QUOTED_CHARS:
        quoted.append("> [...]")
    return "\n".join(quoted) or "> (no text)"


def subject_for(ticket_id: str, subject: str) -> str:
    token = markers.subject_token(ticket_id)
    clean = " ".join((subject or "").split())[:200] or "(no subject)"
    return clean if token in clean else f"{token} {clean}"


def ticket_created(decision: Decision, subject: str, body: str, account_name: str,
                   in_reply_to: str | None, html: str | None = None) -> Notification:
    greeting = f"Hello {decision.requester_name}," if decision.requester_name else "Hello,"
    news = f"We received your request and opened ticket {decision.ticket_id}. Reply to this email to add to it."
    text = f"{greeting}\n\n{news}\n\nYour request:\n{_quote(body)}\n\n-- \n{account_name} support\n"
    request = render.Message(author=decision.requester_name or decision.requester or "You",
                             at=decision.received_at, text=body, html=html)
    markup = render.html_part(f"{greeting} {news}", None, [request], f"{account_name} support")
    return _notification(decision, NotificationKind.TICKET_CREATED, subject, text, in_reply_to, markup)


def comment_added(decision: Decision, subject: str, body: str, author: str, account_name: str,
                  in_reply_to: str | None, html: str | None = None) -> Notification:
    news = f"{author} added to ticket {decision.ticket_id}:"
    text = f"{news}\n\n{_quote(body)}\n\nReply to this email to answer.\n\n-- \n{account_name} support\n"
    comment = render.Message(author=author, at=decision.received_at, text=body, html=html)
    markup = render.html_part(news, comment, [], f"Reply to this email to answer.\n\n{account_name} support")
    return _notification(decision, NotificationKind.COMMENT_ADDED, subject, text, in_reply_to, markup)


def _notification(decision: Decision, kind: NotificationKind, subject: str, text: str,
                  in_reply_to: str | None, html: str | None = None) -> Notification:
    assert decision.notification_id and decision.ticket_id and decision.account_id and decision.support_address
    return Notification(notification_id=decision.notification_id, kind=kind, account_id=decision.account_id,
                        ticket_id=decision.ticket_id, support_address=decision.support_address,
                        recipients=decision.notify_to, cc=decision.notify_cc,
                        subject=subject_for(decision.ticket_id, subject), text_body=text, html_body=html,
                        in_reply_to=in_reply_to, references=[in_reply_to] if in_reply_to else [],
                        created_at=decision.received_at)
