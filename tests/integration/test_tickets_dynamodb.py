"""The ticket operations against DynamoDB (moto, tables from template.yaml): attribute updates that concurrent
writers all keep, conditional status changes, and pages read from the account's index partitions."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from relaydesk.tickets import participants, queries, replies, status
from relaydesk.tickets.model import Agent, Ticket, TicketStatus
from relaydesk.tickets.participants import Role

from tests.unit.tickets.conftest import ACCOUNT, BOB, JANE_MESSAGE_ID, TICKET, seed

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def acme(aws_stack):
    seed(aws_stack)
    return aws_stack


def queued(stores) -> list[dict]:
    import boto3

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=stores.settings.notifications_queue_url, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_a_reply_status_assignee_and_ccs_are_stored_as_attributes_and_read_back(acme):
    ann = Agent(agent_id="agent-ann", name="Ann")
    posted = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="We are on it.", now=NOW)
    status.assign(acme, ACCOUNT, TICKET, ann, now=NOW)
    participants.add(acme, ACCOUNT, TICKET, Role.CC, ["dave@example.org"], now=NOW)
    participants.add(acme, ACCOUNT, TICKET, Role.FOLLOWER, ["ann@acme.test"], now=NOW)
    participants.remove(acme, ACCOUNT, TICKET, Role.CC, ["carol@example.org"], now=NOW)
    status.change_status(acme, ACCOUNT, TICKET, "pending", agent=BOB, now=NOW + timedelta(minutes=1))

    ticket = acme.tickets.get_ticket(TICKET)
    assert ticket.status is TicketStatus.PENDING and ticket.assignee == ann
    assert ticket.ccs == ["dave@example.org"] and ticket.followers == ["ann@acme.test"]
    assert ticket.updated_at == NOW + timedelta(minutes=1)
    assert [c.comment_id for c in ticket.comments][-1] == posted.comment.comment_id
    [body] = queued(acme)
    assert body["in_reply_to"] == JANE_MESSAGE_ID and body["agent_name"] == "Bob Agent"
    raw = acme.tickets._table.get_item(Key={"pk": f"TICKET#{TICKET}", "sk": "META"})["Item"]
    assert raw["ccs"] == {"dave@example.org"} and raw["status"] == "pending"
    assert json.loads(raw["doc"])["status"] == "new"  # the document is never rewritten by these updates


def test_concurrent_writers_of_different_fields_all_win(acme, atomic_moto_writes):
    ann = Agent(agent_id="agent-ann", name="Ann")
    jobs = [lambda i=i: participants.add(acme, ACCOUNT, TICKET, Role.CC, [f"cc{i}@example.org"]) for i in range(6)]
    jobs += [lambda: status.assign(acme, ACCOUNT, TICKET, ann),
             lambda: status.change_status(acme, ACCOUNT, TICKET, "open", agent=BOB),
             lambda: participants.add(acme, ACCOUNT, TICKET, Role.FOLLOWER, ["ann@acme.test"])]
    threads = [threading.Thread(target=job) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    ticket = acme.tickets.get_ticket(TICKET)
    assert set(ticket.ccs) == {"carol@example.org", *(f"cc{i}@example.org" for i in range(6))}
    assert ticket.assignee == ann and ticket.status is TicketStatus.OPEN and ticket.followers == ["ann@acme.test"]


def test_the_cc_limit_holds_in_the_store_itself(acme):
    assert acme.tickets.add_ccs(TICKET, [f"u{i}@example.org" for i in range(47)], NOW, limit=48)  # with carol: 48
    assert not acme.tickets.add_ccs(TICKET, ["one.more@example.org"], NOW, limit=48)
    assert acme.tickets.add_ccs(TICKET, ["u1@example.org"], NOW, limit=48)  # already there: nothing new
    assert len(acme.tickets.get_ticket(TICKET).ccs) == 48


def test_solving_twice_changes_and_notifies_once(acme):
    first = status.change_status(acme, ACCOUNT, TICKET, "solved", agent=BOB, now=NOW)
    second = status.change_status(acme, ACCOUNT, TICKET, "solved", agent=BOB, now=NOW)
    assert first.changed and not second.changed
    assert [b["kind"] for b in queued(acme)] == ["ticket_solved"]


def test_an_older_comment_never_moves_updated_at_back(acme):
    status.change_status(acme, ACCOUNT, TICKET, "open", agent=BOB, now=NOW)
    from relaydesk.tickets.model import Comment

    acme.tickets.add_comment(TICKET, Comment(comment_id="C01LATE0000000000001", author="jane@example.net", body="x",
                                             created_at=NOW - timedelta(days=1)))
    assert acme.tickets.get_ticket(TICKET).updated_at == NOW
    acme.tickets.add_comment(TICKET, Comment(comment_id="C01LATE0000000000002", author="jane@example.net", body="y",
                                             created_at=NOW + timedelta(hours=1)))
    assert acme.tickets.get_ticket(TICKET).updated_at == NOW + timedelta(hours=1)


def test_pages_come_from_the_index_partitions_with_filters(acme):
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for index in range(12):
        acme.tickets.create_ticket(Ticket(
            ticket_id=f"T01M9{index:014d}", account_id=ACCOUNT, support_address="support@acme.test",
            subject=f"#{index}", requester="ann@example.org" if index % 4 == 0 else "jim@example.org",
            status=TicketStatus.PENDING if index % 2 else TicketStatus.OPEN,
            created_at=start, updated_at=start + timedelta(hours=index)))
    seed(acme, account_id="A02OTHER", ticket_id="T02M8000000000000TK")

    def walk(**filters):
        found, cursor = [], None
        while True:
            tickets, cursor = queries.list_page(acme, ACCOUNT, limit=2, cursor=cursor, **filters)
            found += [t.ticket_id for t in tickets]
            if cursor is None:
                return found

    assert walk()[0] == TICKET and len(walk()) == 13
    assert walk(status=TicketStatus.PENDING) == [f"T01M9{i:014d}" for i in (11, 9, 7, 5, 3, 1)]
    assert walk(requester="ann@example.org") == [f"T01M9{i:014d}" for i in (8, 4, 0)]
    assert walk(status=TicketStatus.OPEN, updated_since=start + timedelta(hours=7)) == \
        ["T01M900000000000010", "T01M900000000000008"]  # Jane's ticket is new, not open
    assert walk(status=TicketStatus.NEW) == [TICKET]
    status.change_status(acme, ACCOUNT, "T01M900000000000001", "open", agent=BOB, now=NOW + timedelta(days=1))
    assert walk(status=TicketStatus.PENDING)[-1] == "T01M900000000000003"  # moved to the open partition
    assert walk(status=TicketStatus.OPEN)[0] == "T01M900000000000001"


def test_the_upload_form_is_an_s3_post_policy_for_one_key_type_and_size(acme):
    import base64

    from relaydesk.tickets import uploads

    form = uploads.upload_form(acme, ACCOUNT, "quote.pdf", "application/pdf", 1234)
    policy = json.loads(base64.b64decode(form.fields["policy"]))

    # moto accepts any POST; real S3 enforces these conditions itself, so they are what is checked here
    assert {"key": form.key} in policy["conditions"]
    assert {"Content-Type": "application/pdf"} in policy["conditions"]
    assert ["content-length-range", 1, 1234] in policy["conditions"]
    expires = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    assert timedelta(0) < expires - datetime.now(UTC) <= timedelta(seconds=uploads.POST_SECONDS + 5)
    assert form.key.startswith(f"attachments/{ACCOUNT}/uploads/")


def test_a_ticket_item_written_without_the_attributes_reads_from_its_document_and_takes_updates(acme):
    table = acme.tickets._table
    item = table.get_item(Key={"pk": f"TICKET#{TICKET}", "sk": "META"})["Item"]
    for name in ("status", "ccs", "followers", "assignee", "requester", "updated_at"):
        item.pop(name, None)
    table.put_item(Item=item)  # as a writer of the whole document alone leaves it
    assert acme.tickets.get_ticket(TICKET).ccs == ["carol@example.org"]

    status.assign(acme, ACCOUNT, TICKET, BOB, now=NOW)

    ticket = acme.tickets.get_ticket(TICKET)
    assert ticket.assignee == BOB and ticket.ccs == ["carol@example.org"] and ticket.updated_at == NOW
