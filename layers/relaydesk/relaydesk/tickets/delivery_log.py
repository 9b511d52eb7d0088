"""The delivery log of an account: every notification its tickets sent, with the server's reply and status of each
attempt, filtered by status, recipient, support address or ticket. Read from the tickets' own delivery records, so
the log cannot disagree with what a ticket shows, a page at a time: the notifications of the account's most recently
updated tickets (a ticket's update is when it last sent something: every comment and status change moves it), read
through the ticket list's own index and cursor, so one request reads a bounded number of tickets however many the
account has."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.store.ports import Stores
from relaydesk.tickets import queries
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket

ROWS_WANTED = 50  # a page ends once it has this many notifications (it may hold more: a ticket's are kept together)
TICKETS_PER_READ = 25  # one query of the ticket index
MAX_TICKETS_READ = 100  # per request, whatever the filters match: a page with few matches ends early, with a cursor


@dataclass(frozen=True)
class DeliveryFilter:
    status: DeliveryStatus | None = None
    recipient: str | None = None  # a part of a recipient's address, any case
    address: str | None = None  # the support address that sent it
    ticket_id: str | None = None

    def keeps(self, ticket: Ticket, record: NotificationRecord) -> bool:
        if self.ticket_id and ticket.ticket_id != self.ticket_id:
            return False
        if self.address and ticket.support_address != self.address.strip().lower():
            return False
        if self.status and record.status is not self.status:
            return False
        wanted = (self.recipient or "").strip().lower()
        return not wanted or any(wanted in recipient.lower() for recipient in record.recipients)


@dataclass(frozen=True)
class DeliveryRow:
    ticket_id: str
    subject: str
    support_address: str
    notification_id: str
    recipients: list[str]
    status: DeliveryStatus
    attempts: list[DeliveryAttempt]
    at: datetime | None  # the last attempt's time

    @property
    def last(self) -> DeliveryAttempt | None:
        return self.attempts[-1] if self.attempts else None


@dataclass(frozen=True)
class DeliveryPage:
    rows: list[DeliveryRow]  # newest attempt first; queued ones (no attempt yet) first of all
    next_cursor: str | None  # the ticket list's cursor where the next page starts; None: nothing older
    tickets_read: int


def delivery_page(stores: Stores, account_id: str, wanted: DeliveryFilter = DeliveryFilter(), *,
                  cursor: str | None = None) -> DeliveryPage:
    """One page of the log. A cursor that was not handed out is refused (queries.InvalidCursorError)."""
    if wanted.ticket_id:  # one ticket: another account's is not found, like a missing one
        found = stores.tickets.get_ticket(wanted.ticket_id)
        tickets = [found] if found is not None and found.account_id == account_id else []
        return DeliveryPage(rows=_rows(tickets, wanted), next_cursor=None, tickets_read=len(tickets))
    rows: list[DeliveryRow] = []
    read = 0
    while True:
        listed, cursor = queries.list_page(stores, account_id, limit=TICKETS_PER_READ, cursor=cursor)
        full = [stores.tickets.get_ticket(ticket.ticket_id) for ticket in listed]
        read += len(listed)
        rows.extend(_rows([t for t in full if t is not None and t.account_id == account_id], wanted))
        if cursor is None or len(rows) >= ROWS_WANTED or read >= MAX_TICKETS_READ:
            return DeliveryPage(rows=_sorted(rows), next_cursor=cursor, tickets_read=read)


def _rows(tickets: list[Ticket], wanted: DeliveryFilter) -> list[DeliveryRow]:
    return _sorted([DeliveryRow(ticket_id=ticket.ticket_id, subject=ticket.subject,
                                support_address=ticket.support_address, notification_id=record.notification_id,
                                recipients=list(record.recipients), status=record.status,
                                attempts=list(record.attempts),
                                at=record.attempts[-1].at if record.attempts else None)
                    for ticket in tickets for record in ticket.notifications if wanted.keeps(ticket, record)])


def _sorted(rows: list[DeliveryRow]) -> list[DeliveryRow]:
    return sorted(rows, key=lambda row: row.at.timestamp() if row.at else float("inf"), reverse=True)
