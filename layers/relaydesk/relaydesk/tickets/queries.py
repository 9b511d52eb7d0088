"""Reading an account's tickets: one ticket, or a page of them with filters and an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime

from relaydesk.errors import InvalidCursorError, NotFoundError
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import Ticket, TicketPage, TicketPosition, TicketQuery, TicketStatus

TICKET_ID = re.compile(r"^[0-9A-Z]{6,32}$")  # the shape markers.py recognises in mail
_STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
MAX_CURSOR = 200


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
    raw = json.dumps({"u": position.updated, "t": position.ticket_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> TicketPosition:
    """Only a position of the shape this service writes; the account is never in it (the caller's is used)."""
    bad = InvalidCursorError("the page cursor is not valid", action="Start again from the first page.")
    if len(cursor) > MAX_CURSOR:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        updated, ticket_id = data["u"], data["t"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad from None
    if not (isinstance(updated, str) and _STAMP.match(updated) and isinstance(ticket_id, str)
            and TICKET_ID.match(ticket_id)):
        raise bad
    return TicketPosition(updated=updated, ticket_id=ticket_id)
