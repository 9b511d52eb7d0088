"""Listing an account's tickets a page at a time, and attachments uploaded by presigned POST."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from relaydesk.errors import InvalidCursorError, NotFoundError, RuleViolation
from relaydesk.tickets import queries, replies, uploads
from relaydesk.tickets.model import Ticket, TicketStatus

from tests.unit.tickets.conftest import ACCOUNT, BOB, TICKET, seed, sent

START = datetime(2026, 11, 1, tzinfo=UTC)


def many(stores, count: int = 23) -> list[str]:
    seed(stores)
    ids = []
    for index in range(count):
        ticket_id = f"T01M9{index:014d}"
        stores.tickets.create_ticket(Ticket(
            ticket_id=ticket_id, account_id="A01ACME", support_address="support@acme.test", subject=f"#{index}",
            requester="ann@example.org" if index % 3 == 0 else "jim@example.org",
            status=TicketStatus.PENDING if index % 2 else TicketStatus.OPEN,
            created_at=START, updated_at=START + timedelta(hours=index)))
        ids.append(ticket_id)
    return ids


def every_page(stores, **filters) -> list[list[str]]:
    pages, cursor = [], None
    while True:
        tickets, cursor = queries.list_page(stores, ACCOUNT, limit=5, cursor=cursor, **filters)
        pages.append([t.ticket_id for t in tickets])
        if cursor is None:
            return pages


def test_pages_walk_every_ticket_once_newest_update_first(memory_stores):
    ids = many(memory_stores)
    pages = every_page(memory_stores)
    walked = [i for page in pages for i in page]
    assert walked == [TICKET, *reversed(ids)]  # Jane's ticket was updated last and all(len(p) == 5 for p in pages[:-1])


def test_filters_narrow_the_pages(memory_stores):
    ids = many(memory_stores)
    pending = [i for page in every_page(memory_stores, status=TicketStatus.PENDING) for i in page]
    assert pending == [i for n, i in reversed(list(enumerate(ids))) if n % 2]
    ann = [i for page in every_page(memory_stores, requester="ANN@example.org") for i in page]
    assert ann == [i for n, i in reversed(list(enumerate(ids))) if n % 3 == 0]
    recent = [i for page in every_page(memory_stores, updated_since=START + timedelta(hours=20)) for i in page]
    assert recent == [TICKET, *reversed(ids[20:])]


def test_the_assignee_filter_finds_an_agents_tickets_and_the_unassigned_ones(memory_stores):
    from relaydesk.tickets.model import Agent

    ids = many(memory_stores, 6)
    ann = Agent(agent_id="sub-ann", name="Ann", email="ann@acme.test")
    for ticket_id in ids[:2]:
        memory_stores.tickets.assign(ticket_id, ann, START + timedelta(days=1))
    assert [i for page in every_page(memory_stores, assignee="ANN@acme.test") for i in page] == ids[1::-1]
    unassigned = [i for page in every_page(memory_stores, assignee="none") for i in page]
    assert sorted(unassigned) == sorted([TICKET, *ids[2:]])
    assert every_page(memory_stores, assignee="bob@acme.test") == [[]]


def test_a_reply_moves_its_ticket_to_the_top(memory_stores):
    many(memory_stores)
    replies.reply(memory_stores, ACCOUNT, TICKET, agent=BOB, body="hi", now=START + timedelta(days=30))
    assert queries.list_page(memory_stores, ACCOUNT, limit=1)[0][0].ticket_id == TICKET


@pytest.mark.parametrize("cursor", ["", "garbage", "x" * 500,
                                    base64.urlsafe_b64encode(b'{"u":"2026","t":"T1"}').decode(),
                                    base64.urlsafe_b64encode(json.dumps({"u": 1, "t": []}).encode()).decode()])
def test_a_cursor_that_was_not_handed_out_is_refused(memory_stores, cursor):
    many(memory_stores, 3)
    if cursor == "":
        assert queries.list_page(memory_stores, ACCOUNT, cursor=cursor)[0]  # empty means the first page
        return
    with pytest.raises(InvalidCursorError):
        queries.list_page(memory_stores, ACCOUNT, cursor=cursor)


def test_another_accounts_tickets_never_show(memory_stores):
    many(memory_stores, 3)
    seed(memory_stores, account_id="A02OTHER", ticket_id="T02M8000000000000TK")
    assert all(t.account_id == ACCOUNT for t in queries.list_page(memory_stores, ACCOUNT, limit=100)[0])
    with pytest.raises(NotFoundError):
        queries.ticket_of(memory_stores, ACCOUNT, "T02M8000000000000TK")


def test_an_upload_lands_under_the_accounts_prefix_and_a_reply_attaches_it(acme):
    form = uploads.upload_form(acme, ACCOUNT, "../../Quote 2026.pdf", "application/pdf", 4)
    assert form.key.startswith("attachments/A01ACME/uploads/U") and form.key.endswith("/Quote_2026.pdf")
    assert form.fields["Content-Type"] == "application/pdf" and form.expires_in == 300
    acme.blobs.upload(form.key, b"%PDF", "application/pdf")  # as S3 takes the browser's POST

    posted = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Quote attached.", attachments=[form.key])

    [ref] = posted.comment.attachments
    assert (ref.filename, ref.size, ref.content_type) == ("Quote_2026.pdf", 4, "application/pdf")
    assert sent(acme)[0].attachments == [ref]


def test_s3_refuses_an_upload_that_breaks_the_form(acme):
    form = uploads.upload_form(acme, ACCOUNT, "a.pdf", "application/pdf", 4)
    with pytest.raises(PermissionError):
        acme.blobs.upload(form.key, b"%PDF-longer", "application/pdf")
    with pytest.raises(PermissionError):
        acme.blobs.upload(form.key, b"<svg", "image/svg+xml")


@pytest.mark.parametrize(("kind", "size"), [("text/html", 10), ("image/svg+xml", 10), ("application/pdf", 0),
                                            ("application/pdf", uploads.MAX_ATTACHMENT_BYTES + 1)])
def test_dangerous_types_and_sizes_get_no_upload_form(acme, kind, size):
    with pytest.raises(RuleViolation):
        uploads.upload_form(acme, ACCOUNT, "x", kind, size)


def test_a_reply_cannot_attach_another_accounts_or_a_missing_or_a_raw_mail_object(acme):
    acme.blobs.put("attachments/A02OTHER/uploads/U01M8000000000000UP/x.pdf", b"%PDF", "application/pdf")
    acme.blobs.put("inbound/ses-raw-1", b"From: x", "message/rfc822")
    for key in ("attachments/A02OTHER/uploads/U01M8000000000000UP/x.pdf", "inbound/ses-raw-1",
                "attachments/A01ACME/uploads/U01M8000000000000UP/missing.pdf",
                "attachments/A01ACME/uploads/U01M8000000000000UP/../../../inbound/ses-raw-1"):
        with pytest.raises(NotFoundError):
            replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="see attached", attachments=[key])
    assert sent(acme) == [] and len(acme.tickets.get_ticket(TICKET).comments) == 1
