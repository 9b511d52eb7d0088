"""Whatever bytes arrive, the inbound path ends in one of its outcomes, keeps the raw mail and raises nothing."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relaydesk.inbound.outcome import Outcome
from relaydesk.inbound.parse import parse

from .conftest import CORPUS, make_world

CORPUS_MESSAGES = sorted(p.read_bytes() for p in CORPUS.glob("*.eml"))
HEADER_LINES = [b"Content-Type: multipart/mixed; boundary=\"x\"\r\n", b"Content-Transfer-Encoding: base64\r\n",
                b"Subject: =?utf-8?B?####?=\r\n", b"From: <@>\r\n", b"In-Reply-To: <N01M8000000000000AA@acme.test>\r\n",
                b"Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n",
                b"X-Relaydesk-Verification: \r\n", b"Auto-Submitted: auto-replied\r\n", b"\xff\xfe: \x00\r\n",
                b"Content-Type: text/plain; charset=\"utf-16\"\r\n", b"Content-Type: message/rfc822\r\n"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated_corpus_message(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS_MESSAGES)))
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert_header", "insert_bytes", "duplicate"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if action == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:at + draw(st.integers(1, 400))]
        elif action == "insert_header":
            data[0:0] = draw(st.sampled_from(HEADER_LINES))
        elif action == "insert_bytes":
            data[at:at] = draw(st.binary(max_size=64))
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
    return bytes(data)


def _delivered_ends_in_an_outcome(raw: bytes, **receipt) -> None:
    world = make_world()
    result = world.deliver(raw, **receipt)
    assert result.outcome in set(Outcome)
    assert world.stores.blobs.get(f"inbound/{result.ses_message_id}") == raw  # the raw mail is kept, unchanged
    if result.outcome in (Outcome.NEW_TICKET, Outcome.SUSPENDED, Outcome.COMMENT):
        ticket = world.stores.tickets.get_ticket(result.ticket_id)
        # what the DynamoDB adapter stores: every item serializes and fits DynamoDB's 400 KB
        for item in [ticket.model_copy(update={"comments": [], "notifications": []}), *ticket.comments]:
            assert len(item.model_dump_json().encode()) < 400_000
    for notification, _ in world.stores.queue.sent:
        assert len(notification.model_dump_json().encode()) < 256 * 1024  # SQS's message size limit
    # a second delivery of the same SES message changes nothing
    tickets_before = world.stores.tickets.list_tickets(world.account.account_id)
    again = world.deliver(raw, ses_message_id=result.ses_message_id, **receipt)
    assert (again.outcome, again.ticket_id) == (result.outcome, result.ticket_id)
    assert world.stores.tickets.list_tickets(world.account.account_id) == tickets_before


@FAST
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_end_in_an_outcome_and_the_raw_mail_is_kept(raw):
    _delivered_ends_in_an_outcome(raw)


@FAST
@given(mutated_corpus_message(), st.sampled_from(["PASS", "FAIL", "GRAY"]))
def test_mutated_corpus_messages_end_in_an_outcome_and_the_raw_mail_is_kept(raw, spam):
    _delivered_ends_in_an_outcome(raw, spam=spam)


@FAST
@given(st.text(max_size=2000))
def test_parsing_any_text_never_raises(text):
    mail = parse(text.encode("utf-8", "surrogatepass"))
    assert isinstance(mail.text, str)
    assert all(isinstance(a.payload(), bytes) for a in mail.attachments)
