"""The tickets store in DynamoDB (moto, built from template.yaml): a ticket and its first comment are written
together or not at all, DynamoDB's limits are enforced before anything is sent, and flags are a set added to in
place (CCs, status and the rest: tests/integration/test_tickets_dynamodb.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relaydesk.errors import ConflictError, ItemTooLargeError
from relaydesk.store import item_budget, ticket_items
from relaydesk.tickets.model import Comment, Ticket

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


def test_flags_are_a_set_that_concurrent_writers_each_add_to_and_old_flags_are_kept(aws_stack, table):
    aws_stack.tickets.create_ticket(ticket(flags=["multiple_forwarding"]))
    tickets = aws_stack.tickets
    assert tickets.add_flags("T01STORE0000000001", ["auto_generated:x_autoreply"], T0, limit=20) is True
    assert tickets.add_flags("T01STORE0000000001", ["reply_from_non_participant", "multiple_forwarding"], T0,
                             limit=20) is True
    assert tickets.get_ticket("T01STORE0000000001").flags == [
        "multiple_forwarding", "auto_generated:x_autoreply", "reply_from_non_participant"]
    assert tickets.add_flags("T01STORE0000000001", [f"f{i}" for i in range(20)], T0, limit=20) is False


def test_a_ticket_whose_flags_were_only_in_its_document_keeps_them(aws_stack, table):
    old = ticket(flags=["multiple_forwarding"])
    item = ticket_items.meta_item(old)
    del item["flags"]  # written before flags were a set
    table.put_item(Item=item)
    aws_stack.tickets.add_flags(old.ticket_id, ["auto_generated:x_autoreply"], T0, limit=20)
    assert aws_stack.tickets.get_ticket(old.ticket_id).flags == ["multiple_forwarding", "auto_generated:x_autoreply"]


def test_the_budget_never_lets_through_what_dynamodb_refuses(table):
    """moto implements DynamoDB's item size rule (its limit: 405,000 bytes); ours is the stricter 400,000."""
    for doc_bytes, fits in ((item_budget.ITEM_BYTES - 100, True), (item_budget.ITEM_BYTES - 20, False),
                            (410_000, False)):
        item = {"pk": "TICKET#T01BUDGET", "sk": f"COMMENT#{doc_bytes}", "doc": "é" * (doc_bytes // 2)}
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
        assert ours is fits, doc_bytes
        assert theirs or not ours, doc_bytes


def test_keys_over_their_limits_are_refused_before_the_call(aws_stack):
    with pytest.raises(ItemTooLargeError):
        aws_stack.tickets.link_message_id("<" + "m" * 2100 + ">", "T01STORE0000000001")
    with pytest.raises(ItemTooLargeError):
        item_budget.check_item({"pk": "p", "sk": "s" * 1025})
