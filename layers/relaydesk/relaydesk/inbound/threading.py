"""Threading: which existing ticket a reply belongs to (our Message-IDs, the subject token, the hidden body marker).

A reply from someone who is neither the requester nor a CC becomes a private comment (see docs/INBOUND.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from relaydesk import markers
from relaydesk.inbound.parse import ParsedMail
from relaydesk.store.ports import TicketStore
from relaydesk.tickets.model import Ticket

MAX_REFERENCES_LOOKED_UP = 20  # a long thread's References; the newest are the most telling


@dataclass
class ThreadMatch:
    ticket: Ticket
    by: str  # in-reply-to | references | subject-token | body-marker


def find_thread(tickets: TicketStore, mail: ParsedMail, account_id: str) -> ThreadMatch | None:
    """The ticket of this account the mail replies to, or None for a new request."""
    candidates: list[tuple[str, str]] = [("in-reply-to", m) for m in mail.in_reply_to]
    candidates += [("references", m) for m in reversed(mail.references[-MAX_REFERENCES_LOOKED_UP:])]
    for by, message_id in candidates:
        ticket_id = tickets.find_ticket_by_message_id(message_id)
        match = _ticket_of_account(tickets, ticket_id, account_id)
        if match:
            return ThreadMatch(match, by)
    for by, ticket_id in (("subject-token", markers.ticket_id_from_subject(mail.subject)),
                          ("body-marker", markers.ticket_id_from_body(mail.text[:200000]))):
        match = _ticket_of_account(tickets, ticket_id, account_id)
        if match:
            return ThreadMatch(match, by)
    return None


def _ticket_of_account(tickets: TicketStore, ticket_id: str | None, account_id: str) -> Ticket | None:
    if not ticket_id:
        return None
    ticket = tickets.get_ticket(ticket_id)
    return ticket if ticket is not None and ticket.account_id == account_id else None


def is_participant(ticket: Ticket, sender: str | None) -> bool:
    return bool(sender) and (sender == ticket.requester.lower() or sender in {c.lower() for c in ticket.ccs})
