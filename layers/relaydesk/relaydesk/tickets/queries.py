"""Reading an account's tickets: one ticket, or a page of them with filters and an opaque cursor."""

from __future__ import annotations

import re
from datetime import datetime

from relaydesk import cursors
from relaydesk.errors import NotFoundError
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import Ticket, TicketPage, TicketPosition, TicketQuery, TicketStatus

TICKET_ID = re.compile(r"^[0-9A-Z]{6,32}$")  # the shape markers.py recognises in mail
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


def ticket_of(stores: Stores, account_id: str, ticket_id: str) -> Ticket:
    """The ticket with its comments and notifications; another account's ticket is not found, like a missing one."""
    ticket = stores.tickets.get_ticket(ticket_id) if TICKET_ID.match(ticket_id or "") else None
    if ticket is None or ticket.account_id != account_id:
        raise NotFoundError(f"no ticket {ticket_id[:40]!r} in this account",
                            action="List the account's tickets to find its id.")
    return ticket


def list_page(stores: Stores, account_id: str, *, status: TicketStatus | None = None, requester: str | None = None,
              assignee: str | None = None, updated_since: datetime | None = None, limit: int = 25,
              cursor: str | None = None) -> tuple[list[Ticket], str | None]:
    """A page of the account's tickets, newest update first, and the cursor of the next page (None: the last).
    `assignee` is an agent's address, or UNASSIGNED ("none") for the tickets nobody has."""
    query = TicketQuery(status=status, requester=(requester or "").strip().lower() or None,
                        assignee=(assignee or "").strip().lower() or None, updated_since=updated_since,
                        limit=limit, after=decode_cursor(cursor) if cursor else None)
    page: TicketPage = stores.tickets.list_ticket_page(account_id, query)
    return page.tickets, encode_cursor(page.next) if page.next else None


def encode_cursor(position: TicketPosition) -> str:
    return cursors.encode({"u": position.updated, "t": position.ticket_id})


def decode_cursor(cursor: str) -> TicketPosition:
    """Only a position of the shape this service writes; the account is never in it (the caller's is used)."""
    position = cursors.decode(cursor, {"u": _STAMP, "t": TICKET_ID})
    return TicketPosition(updated=position["u"], ticket_id=position["t"])
