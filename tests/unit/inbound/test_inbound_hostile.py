"""The hostile-mail suite: every generated mail of `hostile.py` ends in exactly one outcome (a ticket, a comment, a
suspended ticket, a delivery report, a verification, or a refusal recorded in the ledger), keeps its raw mail,
writes nothing DynamoDB or SQS would refuse, and finishes under the inbound function's timeout. `make test` runs it
small (the parser's line and part bounds lowered to match); `make hostile` runs it at SES's size with the real
bounds and also holds every mail to the function's memory budget (tracemalloc)."""

from __future__ import annotations

import re
import time
import tracemalloc
from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.inbound import parse_guard
from relaydesk.inbound.outcome import Decision, Outcome
from relaydesk.inbound.service import process_inbound
from relaydesk.outbound.compose import Sender, compose

from . import hostile
from .conftest import SEEDED_TICKET, make_world, ses_record

FUNCTION_TIMEOUT_SECONDS = 120  # template.yaml, InboundFunction (checked below)
MEMORY_BUDGET_BYTES = 600 * 1024 * 1024  # of the function's 1024 MB: the rest is the runtime and its libraries
SQS_MESSAGE_BYTES = 256 * 1024
# What an SQS message body may hold (SendMessage: #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | ...).
SQS_TEXT = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
HEADERS_WE_WRITE = {"from", "reply-to", "to", "cc", "subject", "date", "message-id", "in-reply-to", "references",
                    "mime-version", "content-type", "content-transfer-encoding", "auto-submitted",
                    "x-auto-response-suppress", "x-mailer", "x-relaydesk-from-account-id", "x-relaydesk-email-id"}


@pytest.fixture(autouse=True)
def bounds_to_scale(monkeypatch):
    """Small mails meet the same bounds, lowered in proportion (the full run keeps the real ones)."""
    if not hostile.FULL:
        monkeypatch.setattr(parse_guard, "MAX_LINES", 20_000)
        monkeypatch.setattr(parse_guard, "MAX_PARTS", 1_000)


def deliver(raw: bytes, **receipt):
    """The mail through process_inbound (a fresh world), timed; in the full run a second time under tracemalloc (it
    slows allocation-heavy code several times, so the time is the first run's) for the memory budget."""
    world, result, elapsed = _process(raw, receipt)
    peak = 0
    if hostile.FULL:
        tracemalloc.start()
        try:
            _process(raw, receipt)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        print(f"\n  {len(raw) / 2**20:6.1f} MiB {elapsed:6.1f} s  peak {peak / 2**20:5.0f} MiB  {result.outcome.value}")
    assert elapsed < FUNCTION_TIMEOUT_SECONDS, f"{elapsed:.0f} s"
    assert peak <= MEMORY_BUDGET_BYTES, f"peak {peak / 2**20:.0f} MiB for a {len(raw) / 2**20:.1f} MiB mail"
    ends_in_exactly_one_outcome(world, result, raw)
    return world, result


def _process(raw: bytes, receipt: dict):
    world = make_world()
    world.stores.blobs.put("inbound/hostile0001", raw)
    started = time.perf_counter()
    result = process_inbound(world.stores, ses_record("hostile0001", **receipt), ports=world.ports,
                             on_verification=world.verify)
    return world, result, time.perf_counter() - started


def ends_in_exactly_one_outcome(world, result, raw: bytes) -> None:
    decision_json, done = world.ports.ledger.records[result.ses_message_id]
    assert done and Decision.model_validate_json(decision_json).outcome is result.outcome
    assert world.stores.blobs.get(f"inbound/{result.ses_message_id}") == raw  # the full view
    new = [t for t in world.stores.tickets.list_tickets(world.account.account_id) if t.ticket_id != SEEDED_TICKET]
    seeded = world.ticket(SEEDED_TICKET)
    if result.outcome in (Outcome.NEW_TICKET, Outcome.SUSPENDED):
        assert [(t.ticket_id, len(t.comments)) for t in new] == [(result.ticket_id, 1)]
        assert new[0].comments[0].ses_message_id == result.ses_message_id
    else:
        assert new == []
    assert len(seeded.comments) == (2 if result.outcome is Outcome.COMMENT else 1)
    if result.outcome is Outcome.DROPPED:
        assert result.reason and world.sent == []
    for notification in world.sent:
        body = notification.model_dump_json()
        assert len(body.encode()) <= SQS_MESSAGE_BYTES and SQS_TEXT.fullmatch(body)
        assert set(composed_headers(notification)) <= HEADERS_WE_WRITE


def composed_headers(notification) -> list[str]:
    """The header names of the notification as the relay would put it on the wire."""
    sender = Sender(address=notification.support_address, display_name="Acme", reply_to=notification.support_address,
                    message_id_domain="acme.test")
    composed = compose(notification, sender, inline_attachments=False, fetch=lambda key: b"",
                       link=lambda ref: "https://files.invalid/x")
    return [name.lower() for name in message_from_bytes(composed.to_bytes(), policy=default).keys()]


def only_ticket(world, result):
    ticket = world.ticket(result.ticket_id)
    return ticket, ticket.comments[0]


def decision(world, result) -> Decision:
    return Decision.model_validate_json(world.ports.ledger.records[result.ses_message_id][0])


def test_the_timeout_and_memory_here_are_the_inbound_functions():
    from pathlib import Path

    template = (Path(__file__).resolve().parents[3] / "template.yaml").read_text()
    start = template.index("\n  InboundFunction:")
    function = template[start:re.compile(r"\n  \w+:\n").search(template, start + 1).start()]
    assert f"Timeout: {FUNCTION_TIMEOUT_SECONDS}" in function and "MemorySize: 1024" in function


# --- fields that used to overflow a DynamoDB item or key ---


def test_a_long_folded_display_name_is_cut_and_the_ticket_made():
    world, result = deliver(hostile.long_display_name())
    ticket, _ = only_ticket(world, result)
    assert (result.outcome, ticket.requester) == (Outcome.NEW_TICKET, "jane@example.net")
    assert decision(world, result).requester_name.startswith("Jane Very-Long-Name")
    assert 190 < len(decision(world, result).requester_name) <= 200


def test_a_long_encoded_display_name_is_decoded_and_cut():
    world, result = deliver(hostile.long_encoded_display_name())
    assert world.ticket(result.ticket_id).requester == "jorg@example.net"
    # RFC 2047 6.2: the space between two encoded words is not text
    assert decision(world, result).requester_name.startswith("Jörg MüllerJörg Müller")


def test_long_content_ids_are_dropped_and_every_image_kept_on_the_one_comment():
    world, result = deliver(hostile.long_content_ids())
    _, comment = only_ticket(world, result)
    assert len(comment.attachments) == 90 and {a.content_id for a in comment.attachments} == {None}


def test_an_address_longer_than_smtp_allows_is_no_sender_and_recorded():
    _, result = deliver(hostile.long_address())
    assert (result.outcome, result.reason) == (Outcome.DROPPED, "no_sender")


def test_a_long_file_name_keeps_its_extension_and_a_long_content_type_becomes_octet_stream():
    world, result = deliver(hostile.long_filename_and_content_type())
    _, comment = only_ticket(world, result)
    assert [len(a.filename) for a in comment.attachments] == [255, 255]
    assert all(a.filename.endswith(".pdf") for a in comment.attachments)
    assert [a.content_type for a in comment.attachments] == ["application/octet-stream", "application/pdf"]


def test_a_message_id_longer_than_its_bound_is_not_taken():
    world, result = deliver(hostile.long_message_id())
    assert only_ticket(world, result)[1].source_message_id is None


def test_a_comment_with_every_field_at_its_bound_still_fits_its_item():
    from relaydesk.store import item_budget, ticket_items

    world, result = deliver(hostile.every_bound_at_once())
    _, comment = only_ticket(world, result)
    assert len(comment.attachments) == 100 and comment.html_body is not None
    assert item_budget.item_size(ticket_items.comment_item(result.ticket_id, comment)) < 370_000


def test_past_100_attachments_the_comment_says_how_many_were_left_in_the_original():
    world, result = deliver(hostile.many_attachments())
    _, comment = only_ticket(world, result)
    assert len(comment.attachments) == 100
    assert any("attachments after the first 100" in note for note in comment.omitted)


# --- addresses ---


def test_a_display_name_that_is_an_address_never_becomes_the_requester():
    world, result = deliver(hostile.display_name_is_an_address())
    assert world.ticket(result.ticket_id).requester == "someone@else.example"


def test_an_encoded_word_cannot_smuggle_a_requester_or_a_hidden_cc():
    world, result = deliver(hostile.encoded_word_smuggles_addresses())
    ticket = world.ticket(result.ticket_id)
    assert (ticket.requester, ticket.ccs) == ("real@sender.example", [])
    assert [(n.recipients, n.cc) for n in world.sent] == [(["real@sender.example"], [])]
    assert decision(world, result).requester_name == "boss@example.com <ceo@example.com>, hidden@cc.example"


def test_an_encoded_word_is_never_decoded_into_an_address():
    _, result = deliver(hostile.encoded_word_as_the_only_address())
    assert (result.outcome, result.reason) == (Outcome.DROPPED, "no_sender")


def test_thousands_of_recipients_make_at_most_48_ccs():
    world, result = deliver(hostile.thousands_of_recipients())
    assert world.ticket(result.ticket_id).ccs == [f"user{i}@example.org" for i in range(48)]
    assert len(world.sent[0].cc) == 48


def test_obsolete_address_syntax_still_names_the_requester():
    world, result = deliver(hostile.obsolete_sender_syntax())
    assert world.ticket(result.ticket_id).requester == "jane@example.net"
    assert decision(world, result).requester_name == "Jane Q. Public"


@pytest.mark.parametrize("maker", [hostile.unterminated_quote_and_comment_bombs, hostile.address_like_runs])
def test_address_headers_that_never_parse_still_leave_the_ticket(maker):
    world, result = deliver(maker())
    assert (result.outcome, world.ticket(result.ticket_id).ccs) == (Outcome.NEW_TICKET, [])


# --- decoding ---


def test_an_encoded_word_bomb_is_decoded_and_the_subject_cut():
    world, result = deliver(hostile.encoded_word_bomb())
    subject = world.ticket(result.ticket_id).subject
    assert len(subject) == 500 and subject.startswith("abcdefghijabcdefghij")


def test_unterminated_encoded_words_stay_as_written():
    world, result = deliver(hostile.unterminated_encoded_words())
    assert world.ticket(result.ticket_id).subject.startswith("=?utf-8?q?=?utf-8?q?")


def test_a_content_type_with_a_flood_of_parameters_still_gives_its_text():
    world, result = deliver(hostile.parameter_bomb())
    _, comment = only_ticket(world, result)
    assert comment.body == "Parameters galore."
    assert any("Content-Type parameters" in note for note in comment.omitted)


# --- structure ---


def test_a_header_bomb_keeps_the_first_fields_and_says_so():
    world, result = deliver(hostile.header_bomb())
    _, comment = only_ticket(world, result)
    assert any("header fields after the first 1,000" in note for note in comment.omitted)


def test_a_header_bomb_above_from_does_not_cost_the_sender():
    world, result = deliver(hostile.header_bomb_above_from())
    assert world.ticket(result.ticket_id).requester == "jane@example.net"


def test_a_mime_depth_bomb_keeps_the_deepest_text_as_text_and_says_so():
    world, result = deliver(hostile.mime_depth_bomb())
    _, comment = only_ticket(world, result)
    assert "DEEP TEXT" in comment.body or "DEEP TEXT" in world.stores.blobs.get(comment.attachments[-1].s3_key).decode()
    assert any("nested deeper than 50 levels" in note for note in comment.omitted)


def test_text_25_levels_down_reaches_the_comment_and_the_flattening_is_noted():
    world, result = deliver(hostile.nested_25_levels())
    _, comment = only_ticket(world, result)
    assert comment.body == "The text 25 levels down."
    assert any("nested deeper than 20 levels" in note for note in comment.omitted)


def test_nested_forwards_are_kept_as_one_attached_message():
    world, result = deliver(hostile.nested_messages())
    _, comment = only_ticket(world, result)
    assert comment.body == "Forwarding the whole chain."
    assert [a.filename for a in comment.attachments] == ["forwarded-message.eml"]


def test_a_mime_breadth_bomb_is_cut_at_the_part_bound():
    world, result = deliver(hostile.mime_breadth_bomb())
    _, comment = only_ticket(world, result)
    assert comment.body.startswith("First part.")
    assert any("parts after the first" in note for note in comment.omitted)


def test_a_flood_of_tiny_lines_is_cut_at_the_line_bound():
    world, result = deliver(hostile.tiny_lines())
    _, comment = only_ticket(world, result)
    assert comment.body.replace("\r\n", "\n").startswith("Logs:\nx\nx")
    assert any("lines" in note for note in comment.omitted)


def test_a_huge_base64_line_is_decoded_whole():
    raw = hostile.huge_base64_line()
    world, result = deliver(raw)
    _, comment = only_ticket(world, result)
    [attachment] = comment.attachments
    assert attachment.filename == "one-line.zip" and attachment.size == (hostile.sized(1_000_000, 28_000_000))


def test_a_huge_text_line_is_cut_on_the_comment_and_attached_whole():
    world, result = deliver(hostile.huge_text_line())
    _, comment = only_ticket(world, result)
    [attachment] = comment.attachments
    assert attachment.filename == "message.txt" and attachment.size == hostile.sized(2_000_000, 38_000_000)


def test_pathological_html_becomes_text():
    world, result = deliver(hostile.pathological_html())
    assert only_ticket(world, result)[1].body.startswith("Help")


# --- characters ---


def test_bad_charsets_and_lone_surrogates_are_read_and_stored():
    world, result = deliver(hostile.bad_charsets())
    _, comment = only_ticket(world, result)
    assert "café" in comment.body and "empty charset" in comment.body
    assert not re.search("[\ud800-\udfff]", comment.model_dump_json())


def test_nul_and_encoded_line_breaks_never_reach_a_header():
    world, result = deliver(hostile.nul_and_crlf_injection())
    ticket, comment = only_ticket(world, result)
    assert ticket.subject == "Invoice Bcc: attacker@evil.example\ufffd"
    assert "\r" not in decision(world, result).requester_name and "\n" not in decision(world, result).requester_name
    assert "\x00" not in comment.body and "\ufffe" not in comment.body
    assert "bcc" not in composed_headers(world.sent[0])


def test_gigantic_references_still_thread_by_the_newest():
    _, result = deliver(hostile.gigantic_references_newest_ours())
    assert (result.outcome, result.ticket_id) == (Outcome.COMMENT, SEEDED_TICKET)


# --- real senders, lost text ---


def test_one_junk_line_no_longer_ends_the_header_block():
    world, result = deliver(hostile.junk_line_ends_the_header_block())
    ticket, comment = only_ticket(world, result)
    assert (ticket.requester, ticket.subject, comment.body) == ("jane@example.net", "Printer",
                                                                "The printer is jammed.")
    assert any("not a header field" in note for note in comment.omitted)


def test_inline_text_with_a_file_name_reaches_the_comment_and_the_file_is_kept():
    world, result = deliver(hostile.inline_text_with_a_filename())
    _, comment = only_ticket(world, result)
    assert comment.body == "Hello,\n\nthe printer on floor 3 is jammed again."
    assert [a.filename for a in comment.attachments] == ["note.txt"]


def test_a_huge_auto_submitted_value_is_a_short_flag_and_nobody_is_answered():
    world, result = deliver(hostile.auto_submitted_bomb())
    ticket, _ = only_ticket(world, result)
    assert [len(f) for f in ticket.flags] == [100] and world.sent == []


def test_a_huge_verification_header_is_an_unknown_token():
    world, result = deliver(hostile.verification_header_bomb())
    assert (result.outcome, result.verified) == (Outcome.VERIFICATION, False)
    assert len(world.verifications[0]["token"]) == 64


def test_a_delivery_report_bomb_keeps_a_bounded_record():
    world, result = deliver(hostile.delivery_report_bomb())
    assert result.outcome is Outcome.DSN_RECORDED
    record = world.stores.tickets.get_notification(SEEDED_TICKET, "N01M8000000000000AA")
    assert record.status.value == "bounced" and len(record.reports) == 50
    assert max(len(v) for r in record.reports for v in r.values()) <= 500
