"""What a recipient's mail client sees: the header contract, threading, markers, parts, attachments or links, and
no header that a subject, a name or an address could smuggle in."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk import markers
from relaydesk.errors import InvalidAddressError
from relaydesk.notification import AttachmentRef, Notification
from relaydesk.outbound.compose import Sender, compose

SENDER = Sender(address="support@acme.test", display_name="Acme Help", reply_to="support@acme.test",
                message_id_domain="acme.test")
BLOBS = {"att/1": b"%PDF-1.7 invoice"}


def _notification(**overrides) -> Notification:
    values = dict(notification_id="N01M893ZHAE47WP8H66", account_id="A01ACCOUNT", ticket_id="T01M893ZHAE53C4VQC4",
                  support_address="support@acme.test", recipients=["jane@example.net"],
                  subject="Printer on floor 3 is jammed", text_body="We are on it.",
                  html_body="<p>We are on it.</p>", in_reply_to="<CAF7b2Rq9x1T@mail.example.net>",
                  references=["<CAF7b2Rq9x1T@mail.example.net>"])
    values.update(overrides)
    return Notification(**values)


def _wire(notification: Notification, *, inline: bool = True, sender: Sender = SENDER):
    composed = compose(notification, sender, inline_attachments=inline, fetch=BLOBS.__getitem__,
                       link=lambda ref: f"https://files.test/{ref.s3_key}")
    data = composed.to_bytes()
    return composed, data, message_from_bytes(data, policy=default)


def test_every_notification_carries_the_header_contract():
    _, data, parsed = _wire(_notification())
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["X-Auto-Response-Suppress"] == "All"
    assert parsed["X-Mailer"] == "Relaydesk Mailer"
    assert parsed["X-Relaydesk-From-Account-Id"] == "A01ACCOUNT"
    assert parsed["X-Relaydesk-Email-Id"] == "N01M893ZHAE47WP8H66"
    assert b"\r\n" in data and b"\n" not in data.replace(b"\r\n", b"")  # CRLF only, as SMTP wants


def test_from_is_the_support_address_with_the_brand_name_and_replies_go_back_to_it():
    _, _, parsed = _wire(_notification())
    assert parsed["From"].addresses[0].display_name == "Acme Help"
    assert parsed["From"].addresses[0].addr_spec == "support@acme.test"
    assert parsed["Reply-To"].addresses[0].addr_spec == "support@acme.test"


def test_message_id_is_ours_on_the_support_domain_and_threads_to_the_requesters_mail():
    composed, _, parsed = _wire(_notification())
    assert parsed["Message-ID"] == markers.message_id_for("N01M893ZHAE47WP8H66", "acme.test") == composed.message_id
    assert parsed["In-Reply-To"] == "<CAF7b2Rq9x1T@mail.example.net>"
    assert parsed["References"] == "<CAF7b2Rq9x1T@mail.example.net>"


def test_subject_gets_the_ticket_token_only_when_it_is_missing():
    _, _, parsed = _wire(_notification())
    assert parsed["Subject"] == "Printer on floor 3 is jammed [RD#T01M893ZHAE53C4VQC4]"
    _, _, again = _wire(_notification(subject="Re: [RD#T01M893ZHAE53C4VQC4] Printer"))
    assert again["Subject"] == "Re: [RD#T01M893ZHAE53C4VQC4] Printer"


def test_text_and_html_parts_both_carry_the_hidden_thread_marker():
    _, _, parsed = _wire(_notification())
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert markers.ticket_id_from_body(text) == "T01M893ZHAE53C4VQC4"
    assert markers.ticket_id_from_body(html) == "T01M893ZHAE53C4VQC4"
    assert "display:none" in html


def test_attachments_are_attached_when_the_account_includes_them():
    ref = AttachmentRef(filename="invoice.pdf", content_type="application/pdf", size=16, s3_key="att/1")
    _, _, parsed = _wire(_notification(attachments=[ref]), inline=True)
    attached = list(parsed.iter_attachments())
    assert [a.get_filename() for a in attached] == ["invoice.pdf"]
    assert attached[0].get_content() == b"%PDF-1.7 invoice"


def test_attachments_become_links_when_the_account_turned_them_off():
    ref = AttachmentRef(filename="invoice.pdf", content_type="application/pdf", size=16, s3_key="att/1")
    _, _, parsed = _wire(_notification(attachments=[ref]), inline=False)
    assert list(parsed.iter_attachments()) == []
    assert "invoice.pdf: https://files.test/att/1" in parsed.get_body(("plain",)).get_content()
    assert 'href="https://files.test/att/1"' in parsed.get_body(("html",)).get_content()


@pytest.mark.parametrize("evil", ["Hello\r\nBcc: victim@evil.test", "Hello\nBcc: victim@evil.test",
                                  "Hello\rBcc: victim@evil.test", "Hello\u2028Bcc: victim@evil.test"])
def test_a_line_break_in_subject_or_display_name_never_starts_a_header(evil):
    sender = Sender(address="support@acme.test", display_name=evil, reply_to="support@acme.test")
    _, data, parsed = _wire(_notification(subject=evil), sender=sender)
    header_block = data.split(b"\r\n\r\n", 1)[0]
    assert parsed["Bcc"] is None
    assert not any(line.startswith(b"Bcc:") for line in header_block.split(b"\r\n"))
    assert "Bcc: victim@evil.test" in parsed["Subject"]  # kept as text on the one Subject line


@pytest.mark.parametrize("recipient", ["jane@example.net\r\nBcc: victim@evil.test", "jane@example.net, x@evil.test",
                                       "Jane <jane@example.net>", "no-at-sign", ""])
def test_a_recipient_that_is_not_one_plain_address_is_refused(recipient):
    with pytest.raises(InvalidAddressError):
        _wire(_notification(recipients=[recipient]))


def test_a_verification_mail_carries_its_token_in_header_and_body():
    _, _, parsed = _wire(_notification(ticket_id=None, verification_token="VTOKEN12345", html_body=None))
    assert parsed[markers.VERIFICATION_HEADER] == "VTOKEN12345"
    assert markers.verification_token_from_body(parsed.get_body(("plain",)).get_content()) == "VTOKEN12345"
