"""The tickets store in DynamoDB (moto, built from template.yaml): a ticket and its first comment are written
together or not at all, DynamoDB's limits are enforced before anything is sent, and what changes on a ticket
concurrently (CCs, flags, status, updated_at) changes in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from relaydesk.errors import ConflictError, ItemTooLargeError
from relaydesk.store import item_budget, ticket_items
from relaydesk.tickets.model import Comment, Ticket, TicketStatus

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def ticket(ticket_id: str = "T01STORE0000000001", body: str = "Printer jammed", **fields) -> Ticket:
    return Ticket(ticket_id=ticket_id, account_id="A01", support_address="support@acme.test", subject="Printer",
                  requester="jane@example.net", created_at=T0, updated_at=T0,
                  comments=[Comment(comment_id="C01", author="jane@example.net", body=body, created_at=T0)],
                  **fields)


@pytest.fixture
def table(aws_stack):
    import boto3

    return boto3.resource("dynamodb").Table(aws_stack.settings.tickets_table)


def items_of(table, ticket_id: str) -> list[dict]:
    return table.query(KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": f"TICKET#{ticket_id}"})["Items"]


def test_a_ticket_and_its_first_comment_are_one_write(aws_stack, table):
    aws_stack.tickets.create_ticket(ticket())
    assert sorted(i["sk"][:8] for i in items_of(table, "T01STORE0000000001")) == ["COMMENT#", "META"]


def test_a_comment_over_the_item_limit_writes_nothing_at_all(aws_stack, table):
    with pytest.raises(ItemTooLargeError) as refused:
        aws_stack.tickets.create_ticket(ticket(body="x" * 500_000))
    assert items_of(table, "T01STORE0000000001") == []  # no ticket without its comment
    assert "x" * 100 not in str(refused.value)  # the error names the key, never the content


def test_creating_an_existing_ticket_is_a_conflict_that_changes_nothing(aws_stack):
    aws_stack.tickets.create_ticket(ticket())
    with pytest.raises(ConflictError):
        aws_stack.tickets.create_ticket(ticket(body="another first comment"))
    assert [c.body for c in aws_stack.tickets.get_ticket("T01STORE0000000001").comments] == ["Printer jammed"]


def test_ccs_are_appended_once_each_up_to_the_limit(aws_stack):
    aws_stack.tickets.create_ticket(ticket(ccs=["max@example.net"]))
    tickets = aws_stack.tickets
    assert tickets.add_ccs("T01STORE0000000001", ["ann@example.net", "max@example.net"], limit=3) == [
        "ann@example.net"]
    assert tickets.add_ccs("T01STORE0000000001", ["bob@example.net", "cy@example.net"], limit=3) == [
        "bob@example.net"]
    assert tickets.get_ticket("T01STORE0000000001").ccs == ["max@example.net", "ann@example.net", "bob@example.net"]


def test_field_updates_of_a_missing_ticket_create_nothing(aws_stack, table):
    tickets = aws_stack.tickets
    assert tickets.add_ccs("T01NOSUCHTICKET000", ["ann@example.net"], limit=48) == []
    assert tickets.add_flags("T01NOSUCHTICKET000", ["x"], limit=20) == []
    assert tickets.change_status("T01NOSUCHTICKET000", TicketStatus.OPEN, only_from=[TicketStatus.PENDING]) is False
    assert tickets.touch("T01NOSUCHTICKET000", T0) is False
    assert items_of(table, "T01NOSUCHTICKET000") == []


def test_status_changes_only_from_the_statuses_named(aws_stack):
    aws_stack.tickets.create_ticket(ticket(status=TicketStatus.SUSPENDED))
    tickets = aws_stack.tickets
    reopen = {"only_from": [TicketStatus.PENDING, TicketStatus.SOLVED]}
    assert tickets.change_status("T01STORE0000000001", TicketStatus.OPEN, **reopen) is False
    assert tickets.get_ticket("T01STORE0000000001").status is TicketStatus.SUSPENDED
    assert tickets.change_status("T01STORE0000000001", TicketStatus.PENDING,
                                 only_from=[TicketStatus.SUSPENDED]) is True
    assert tickets.change_status("T01STORE0000000001", TicketStatus.OPEN, **reopen) is True
    assert tickets.get_ticket("T01STORE0000000001").status is TicketStatus.OPEN


def test_updated_at_only_moves_forward(aws_stack):
    aws_stack.tickets.create_ticket(ticket())
    tickets = aws_stack.tickets
    assert tickets.touch("T01STORE0000000001", T0 + timedelta(minutes=5)) is True
    assert tickets.touch("T01STORE0000000001", T0 + timedelta(minutes=1)) is False  # a late, older mail
    assert tickets.get_ticket("T01STORE0000000001").updated_at == T0 + timedelta(minutes=5)


def test_a_ticket_written_before_its_fields_were_attributes_still_reads(aws_stack, table):
    old = ticket(ccs=["max@example.net"], status=TicketStatus.PENDING)
    table.put_item(Item={**ticket_items.ticket_key(old.ticket_id), "gsi1pk": "ACCOUNT#A01", "gsi1sk": "TICKET#x",
                         "doc": old.model_copy(update={"comments": []}).model_dump_json()})
    read = aws_stack.tickets.get_ticket(old.ticket_id)
    assert (read.ccs, read.status) == (["max@example.net"], TicketStatus.PENDING)


@pytest.mark.parametrize(("doc_bytes", "fits"), [(item_budget.ITEM_BYTES - 100, True),
                                                 (item_budget.ITEM_BYTES - 20, False), (410_000, False)])
def test_the_budget_never_lets_through_what_dynamodb_refuses(table, doc_bytes, fits):
    """moto implements DynamoDB's item size rule (its limit: 405,000 bytes); ours is the stricter 400,000."""
    item = {"pk": "TICKET#T01BUDGET", "sk": "COMMENT#x", "doc": "é" * (doc_bytes // 2)}
    ours = True
    try:
        item_budget.check_item(item)
    except ItemTooLargeError:
        ours = False
    try:
        table.put_item(Item=item)
        theirs = True
    except Exception:  # noqa: BLE001 - moto's ValidationException, whatever its class
        theirs = False
    assert ours is fits
    assert theirs or not ours


def test_keys_over_their_limits_are_refused_before_the_call(aws_stack):
    with pytest.raises(ItemTooLargeError):
        aws_stack.tickets.link_message_id("<" + "m" * 2100 + ">", "T01STORE0000000001")
    with pytest.raises(ItemTooLargeError):
        item_budget.check_item({"pk": "p", "sk": "s" * 1025})
