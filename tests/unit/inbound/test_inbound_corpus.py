"""Every message of the corpus (tests/data/inbound, expected.json) ends in the outcome written beside it."""

from __future__ import annotations

import json

import pytest
from relaydesk.tickets.model import DeliveryStatus

from .conftest import CORPUS, SEEDED_TICKET, corpus

CASES = json.loads((CORPUS / "expected.json").read_text())["cases"]


def _case_id(case: dict) -> str:
    return case["file"].removesuffix(".eml") + (f" [{case['case']}]" if "case" in case else "")


def test_every_corpus_message_has_an_expected_outcome():
    covered = {c["file"] for c in CASES}
    on_disk = {p.name for p in CORPUS.glob("*.eml")}
    assert on_disk == covered


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_corpus_message_ends_in_its_expected_outcome(world, case):
    # Given the account and its seeded ticket; when SES delivers the message
    receipt = dict(case.get("receipt", {}))
    if "recipients" in case:
        receipt["recipients"] = case["recipients"]
    result = world.deliver(corpus(case["file"]), **receipt)

    # Then it ends in exactly the outcome the corpus says, and the raw mail is still there
    assert result.outcome.value == case["outcome"]
    assert result.reason == case.get("reason")
    assert world.stores.blobs.exists(f"inbound/{result.ses_message_id}")

    if "notify" in case:
        sent_to = [a for n in world.sent for a in [*n.recipients, *n.cc]]
        assert sent_to == case["notify"]
    if case["outcome"] in ("new_ticket", "suspended"):
        ticket = world.ticket(result.ticket_id)
        assert ticket.ticket_id != SEEDED_TICKET
        comment = ticket.comments[0]
        if case["outcome"] == "suspended":
            assert ticket.status.value == "suspended"
            assert ticket.suspension_reason.value == case["reason"]
            assert ticket.suspension_explanation
        for key, actual in (("requester", ticket.requester), ("subject", ticket.subject),
                            ("support_address", ticket.support_address)):
            if key in case:
                assert actual == case[key]
        if "ccs" in case:
            assert ticket.ccs == case["ccs"]
        for flag in case.get("flags", []):
            assert flag in ticket.flags
        if "explanation_contains" in case:
            assert case["explanation_contains"] in ticket.suspension_explanation
    if case["outcome"] == "comment":
        ticket = world.ticket(case["ticket"])
        assert result.ticket_id == case["ticket"]
        comment = next(c for c in ticket.comments if c.comment_id == result.comment_id)
        assert comment.public is case.get("public", True)
        for flag in case.get("flags", []):
            assert flag in ticket.flags
    if case["outcome"] in ("new_ticket", "suspended", "comment"):
        names = [a.filename for a in comment.attachments]
        assert names == case.get("attachments", names)
        if "inline" in case:
            assert [a.filename for a in comment.attachments if a.inline and a.content_id] == case["inline"]
        for attachment in comment.attachments:
            assert world.stores.blobs.exists(attachment.s3_key)
            assert attachment.s3_key.startswith(f"attachments/{world.account.account_id}/{result.ticket_id}/")
            assert attachment.size == len(world.stores.blobs.get(attachment.s3_key)) > 0
        if "text_contains" in case:
            assert case["text_contains"] in comment.body
        if "text_excludes" in case:
            assert case["text_excludes"] not in comment.body
    if case["outcome"] == "dsn_recorded":
        record = world.stores.tickets.get_notification(SEEDED_TICKET, case["notification"])
        assert record.status.value == case["dsn_status"]
        assert record.reports and record.reports[0]["ses_message_id"] == result.ses_message_id
        if "diagnostic_contains" in case:
            assert case["diagnostic_contains"] in record.reports[0]["diagnostic_code"]
    if case["outcome"] == "verification":
        call = world.verifications[-1]
        assert call["token"] == case["token"]
        assert call["recipient"] == "support@acme.mail.relaydesk.test"
        if "hops" in case:
            assert call["forwarding_hops"] == case["hops"]
        assert result.verified is True
    if case["outcome"] in ("dropped", "dsn_recorded", "verification"):
        assert [t.ticket_id for t in world.stores.tickets.list_tickets(world.account.account_id)] == [SEEDED_TICKET]
        assert world.ticket(SEEDED_TICKET).comments == world.ticket(SEEDED_TICKET).comments[:1]


def test_a_bounce_marks_the_notification_bounced_and_never_delivered_again(world):
    world.deliver(corpus("dsn_exchange_ndr.eml"))
    record = world.stores.tickets.get_notification(SEEDED_TICKET, "N01M8000000000000AA")
    assert record.status is DeliveryStatus.BOUNCED
    assert record.reports[0]["recipient"] == "jane@example.net"
    assert record.reports[0]["status"] == "5.1.1"
