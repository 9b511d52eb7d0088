"""The delivery log of an account: every notification its tickets sent, newest first, with the server's reply and
status of each attempt, filtered by status, recipient, support address or ticket. Read from the tickets' own
delivery records: the log cannot disagree with what a ticket shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket
from relaydesk.wiring import Stores

MAX_ROWS = 500  # a page of the log; the filters narrow it


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


def delivery_log(stores: Stores, account_id: str, wanted: DeliveryFilter = DeliveryFilter(), *,
                 limit: int = MAX_ROWS) -> list[DeliveryRow]:
    rows = [DeliveryRow(ticket_id=ticket.ticket_id, subject=ticket.subject, support_address=ticket.support_address,
                        notification_id=record.notification_id, recipients=list(record.recipients),
                        status=record.status, attempts=list(record.attempts),
                        at=record.attempts[-1].at if record.attempts else None)
            for ticket in stores.tickets.list_tickets(account_id) if ticket.account_id == account_id
            for record in ticket.notifications if wanted.keeps(ticket, record)]
    rows.sort(key=lambda row: row.at.timestamp() if row.at else float("inf"), reverse=True)  # queued ones first
    return rows[:limit]
