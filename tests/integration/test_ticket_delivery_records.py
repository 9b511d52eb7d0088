"""A notification's delivery record on its ticket, in the DynamoDB tickets table: every attempt the relay records is
kept in order, with the latest status, whoever wrote the record before or after; recording one costs one write."""

from __future__ import annotations

import pytest
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket

TICKET = "T01DELIVERYRECORDS"


def _record(**overrides) -> NotificationRecord:
    values = dict(notification_id="N01RECORD", message_id="<N01RECORD@acme.test>", recipients=["jane@example.net"])
    return NotificationRecord(**{**values, **overrides})


def _attempt(status: DeliveryStatus, reply: str) -> DeliveryAttempt:
    return DeliveryAttempt(status=status, route="smtp.acme.test:587", reply=reply)


@pytest.fixture
def tickets(aws_stack):
    aws_stack.tickets.create_ticket(Ticket(ticket_id=TICKET, account_id="A01", requester="jane@example.net",
                                           subject="Printer jammed", support_address="support@acme.test"))
    return aws_stack.tickets


def test_attempts_land_on_the_record_inbound_queued_in_order_with_the_latest_status(tickets):
    tickets.put_notification(TICKET, _record())

    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.DEFERRED, "451 4.3.0 try again later"))
    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.DELIVERED, "250 2.0.0 Ok: queued as 4F2A"))

    record = tickets.get_notification(TICKET, "N01RECORD")
    assert [a.reply for a in record.attempts] == ["451 4.3.0 try again later", "250 2.0.0 Ok: queued as 4F2A"]
    assert record.status is DeliveryStatus.DELIVERED
    assert tickets.get_ticket(TICKET).notifications == [record]  # the ticket view shows the same record


def test_an_attempt_without_a_queued_record_creates_it(tickets):
    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.FAILED, "550 5.1.1 no such user"))

    record = tickets.get_notification(TICKET, "N01RECORD")
    assert record.message_id == "<N01RECORD@acme.test>"
    assert record.status is DeliveryStatus.FAILED
    assert [a.reply for a in record.attempts] == ["550 5.1.1 no such user"]


def test_a_later_rewrite_of_the_record_keeps_every_attempt(tickets):
    # inbound attaches a delivery report by reading the record and writing it whole
    tickets.put_notification(TICKET, _record())
    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.DELIVERED, "250 2.0.0 Ok"))
    record = tickets.get_notification(TICKET, "N01RECORD")
    record.status = DeliveryStatus.BOUNCED
    record.reports.append({"action": "failed", "status": "5.2.2"})
    tickets.put_notification(TICKET, record)

    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.DELIVERED, "250 2.0.0 Ok again"))

    again = tickets.get_notification(TICKET, "N01RECORD")
    assert [a.reply for a in again.attempts] == ["250 2.0.0 Ok", "250 2.0.0 Ok again"]
    assert again.reports == [{"action": "failed", "status": "5.2.2"}]
    assert again.status is DeliveryStatus.DELIVERED


def test_recording_an_attempt_is_one_write_and_no_read(tickets):
    calls: list[str] = []
    client = tickets._table.meta.client
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.append(model.name))
    tickets.put_notification(TICKET, _record())
    calls.clear()

    tickets.append_attempt(TICKET, _record(), _attempt(DeliveryStatus.DELIVERED, "250 2.0.0 Ok"))

    assert calls == ["UpdateItem"]
