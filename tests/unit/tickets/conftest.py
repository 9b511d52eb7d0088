"""An account 'acme' with support@acme.test connected, and Jane's ticket: her mail, a CC, and the acknowledgement
that was sent; in memory fakes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relaydesk.accounts import Account, AccountSettings
from relaydesk.addresses.model import AddressKind, SupportAddress
from relaydesk.tickets.model import Agent, Comment, NotificationRecord, Ticket, TicketStatus

ACCOUNT = "A01ACME"
TICKET = "T01M8000000000000TK"
JANE_MESSAGE_ID = "<CAJane.1@mail.example.net>"
ACK_MESSAGE_ID = "<N01M8000000000000AK@acme.test>"
OPENED = datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)
BOB = Agent(agent_id="agent-bob", name="Bob Agent", email="bob@acme.test")


def seed(stores, *, settings: AccountSettings | None = None, status: TicketStatus = TicketStatus.NEW,
         ticket_id: str = TICKET, account_id: str = ACCOUNT) -> Ticket:
    if account_id not in getattr(stores.directory, "accounts", {}):
        stores.directory.put_account(Account(account_id=account_id, subdomain=f"sub{account_id.lower()}",
                                             name="Acme", settings=settings or AccountSettings()))
        stores.directory.put_address(SupportAddress(email="support@acme.test" if account_id == ACCOUNT
                                                    else f"help@{account_id.lower()}.test", account_id=account_id,
                                                    kind=AddressKind.FORWARDING, name="Acme Support",
                                                    is_default=True))
    ticket = Ticket(
        ticket_id=ticket_id, account_id=account_id, support_address="support@acme.test", subject="Printer jammed",
        requester="jane@example.net", ccs=["carol@example.org"], status=status, created_at=OPENED,
        updated_at=OPENED,
        comments=[Comment(comment_id="C01M8000000000000C1", author="jane@example.net",
                          body="The printer on floor 3 shows E-52.", html_body="<p>The printer on <b>floor 3</b></p>",
                          source_message_id=JANE_MESSAGE_ID, created_at=OPENED)],
        notifications=[NotificationRecord(notification_id="N01M8000000000000AK", message_id=ACK_MESSAGE_ID,
                                          recipients=["jane@example.net", "carol@example.org"])])
    stores.tickets.create_ticket(ticket)
    return ticket


@pytest.fixture
def acme(memory_stores):
    seed(memory_stores)
    return memory_stores


def sent(stores):
    return [n for n, _ in stores.queue.sent]
