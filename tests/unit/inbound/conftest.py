"""An account 'acme' with two support addresses and one ticket that has sent notifications, in memory fakes;
`deliver` plays SES receiving: stores the raw mail under inbound/<id> and runs the inbound domain entry."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.inbound.classify import email_id_alias
from relaydesk.inbound.service import process_inbound
from relaydesk.store.inbound_ports import InboundPorts
from relaydesk.store.memory import MemoryCounters, MemoryLedger
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import Comment, NotificationRecord, Ticket, TicketStatus

CORPUS = Path(__file__).resolve().parents[2] / "data" / "inbound"
SYSTEM_ADDRESS = "support@acme.mail.relaydesk.test"
SEEDED_TICKET = "T01M8000000000000TK"
SEEDED_NOTIFICATIONS = ("N01M8000000000000AA", "N01M8000000000000BB", "N01M8000000000000CC")
RECEIVED_AT = datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)


def ses_record(message_id: str, *, recipients: list[str] | None = None, **verdicts: str) -> dict:
    receipt = {"timestamp": RECEIVED_AT.isoformat(), "recipients": recipients or [SYSTEM_ADDRESS],
               "spamVerdict": {"status": verdicts.get("spam", "PASS")},
               "virusVerdict": {"status": verdicts.get("virus", "PASS")},
               "spfVerdict": {"status": "PASS"}, "dkimVerdict": {"status": "PASS"},
               "dmarcVerdict": {"status": verdicts.get("dmarc", "PASS")},
               "action": {"type": "Lambda", "invocationType": "Event", "functionArn": "arn:aws:lambda:x"}}
    if "dmarc_policy" in verdicts:
        receipt["dmarcPolicy"] = verdicts["dmarc_policy"]
    return {"eventSource": "aws:ses", "eventVersion": "1.0",
            "ses": {"mail": {"timestamp": RECEIVED_AT.isoformat(), "source": "bounce@acme.test",
                             "messageId": message_id, "destination": recipients or [SYSTEM_ADDRESS]},
                    "receipt": receipt}}


@dataclass
class InboundWorld:
    stores: Stores
    ports: InboundPorts
    account: Account
    verifications: list[dict] = field(default_factory=list)
    known_tokens: set[str] = field(default_factory=lambda: {"VERIFYTOKEN0001", "VERIFYTOKEN0002"})
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def verify(self, stores: Stores, **kwargs) -> bool:
        self.verifications.append(kwargs)
        return kwargs["token"] in self.known_tokens

    def deliver(self, raw: bytes, *, ses_message_id: str | None = None, **receipt):
        ses_message_id = ses_message_id or f"sesmsg{next(self._ids):06d}"
        self.stores.blobs.put(f"inbound/{ses_message_id}", raw)
        return process_inbound(self.stores, ses_record(ses_message_id, **receipt), ports=self.ports,
                               on_verification=self.verify)

    @property
    def sent(self):
        return [n for n, _ in self.stores.queue.sent]

    def ticket(self, ticket_id: str) -> Ticket:
        found = self.stores.tickets.get_ticket(ticket_id)
        assert found is not None, f"no ticket {ticket_id}"
        return found


def memory_stores_for_inbound(**settings_overrides) -> Stores:
    from relaydesk.config import Settings
    from relaydesk.store.memory import MemoryBlobs, MemoryDirectory, MemoryQueue, MemorySecrets, MemoryTickets

    settings = Settings(mail_domain="mail.relaydesk.test", tickets_table="t", directory_table="d",
                        idempotency_table="i", counters_table="c", raw_mail_bucket="b",
                        notifications_queue_url="https://sqs.invalid/q", **settings_overrides)
    return Stores(directory=MemoryDirectory(), tickets=MemoryTickets(), blobs=MemoryBlobs(),
                  secrets=MemorySecrets(), queue=MemoryQueue(), settings=settings)


@pytest.fixture
def world() -> InboundWorld:
    return make_world()


def make_world(stores: Stores | None = None) -> InboundWorld:
    """Also called directly by hypothesis tests, which need a fresh world per example."""
    stores = stores or memory_stores_for_inbound()
    account = Account(account_id="A01M8000000000000AC", subdomain="acme", name="Acme")
    stores.directory.create_account(account)
    stores.directory.create_address(SupportAddress(email="support@acme.test", account_id=account.account_id,
                                                   is_default=True))
    stores.directory.create_address(SupportAddress(email="help@acme.test", account_id=account.account_id))
    records = [NotificationRecord(notification_id=n, message_id=f"<{n}@acme.test>",
                                  recipients=["jane@example.net"]) for n in SEEDED_NOTIFICATIONS]
    stores.tickets.create_ticket(Ticket(
        ticket_id=SEEDED_TICKET, account_id=account.account_id, support_address="support@acme.test",
        subject="Printer on floor 3 is jammed", requester="jane@example.net", ccs=["max@example.net"],
        status=TicketStatus.PENDING,
        comments=[Comment(comment_id="C01M8000000000000C1", author="jane@example.net", body="Printer jammed",
                          source_message_id="<CAF7b2Rq9x1T@mail.example.net>")],
        notifications=records))
    stores.tickets.link_message_id("<CAF7b2Rq9x1T@mail.example.net>", SEEDED_TICKET)
    for record in records:
        stores.tickets.link_message_id(record.message_id, SEEDED_TICKET)
        stores.tickets.link_message_id(email_id_alias(record.notification_id), SEEDED_TICKET)
    return InboundWorld(stores=stores, ports=InboundPorts(ledger=MemoryLedger(), counters=MemoryCounters()),
                        account=account)


def corpus(name: str) -> bytes:
    return (CORPUS / name).read_bytes()
