"""Header rules in isolation: forwarding hops and manual forwards, never-answer signals, charsets."""

from __future__ import annotations

import pytest
from relaydesk.inbound.charset import decode_bytes
from relaydesk.inbound.forwarding import analyse
from relaydesk.inbound.loops import auto_generated_reason
from relaydesk.inbound.parse import parse

SYSTEM = {"support@acme.mail.relaydesk.test"}


def mail(headers: str, body: str = "Hello") -> bytes:
    return (headers.strip() + "\nFrom: Jane <jane@example.net>\nTo: support@acme.test\n\n" + body).encode()


@pytest.mark.parametrize(("headers", "kinds", "hops"), [
    ("X-MS-Exchange-Organization-AutoForwarded: true\nX-MS-Exchange-ForwardingLoop: support@acme.test;abc",
     ["exchange"], 1),
    ("X-MS-Exchange-Transport-Rules-Loop: 1", ["exchange"], 1),
    ("X-Forwarded-To: support@acme.mail.relaydesk.test\n"
     "X-Forwarded-For: support@acme.test support@acme.mail.relaydesk.test\nDelivered-To: support@acme.test",
     ["google", "delivered-to"], 1),
    ("Delivered-To: support@acme.mail.relaydesk.test\nDelivered-To: support@acme.test", ["delivered-to"], 1),
    ("Resent-From: support@acme.test\nResent-To: support@acme.mail.relaydesk.test", ["resent"], 1),
    ("Delivered-To: support@acme.test\nDelivered-To: helpdesk@acme-group.test", ["delivered-to"], 2),
    ("X-Forwarded-For: jane.private@gmail.com support@acme.test\n"
     "X-MS-Exchange-ForwardingLoop: support@acme.test;abc", ["exchange", "google"], 2),
    ("X-MS-Exchange-Inbox-Rules-Loop: jane@example.net\nX-MS-Exchange-ForwardingLoop: support@acme.test;x",
     ["exchange"], 1),  # jane's own out-of-office rule is not a forwarding hop
    ("Return-Path: <SRS0=k3Jd=QX=example.net=jane@acme.test>", ["srs"], 1),
    ("Return-Path: <SRS1=a1b2=acme.test==k3Jd=QX=example.net=jane@group.test>", ["srs"], 2),
    ("Return-Path: <support+caf_=support=acme.mail.relaydesk.test@acme.test>", ["srs"], 1),
    ("Subject: hello", [], 0),
])
def test_server_level_forwards_are_recognised_and_their_hops_counted(headers, kinds, hops):
    result = analyse(parse(mail(headers)), SYSTEM)
    assert (sorted(result.kinds), result.hops, result.multiple) == (sorted(kinds), hops, hops > 1)


@pytest.mark.parametrize(("subject", "body", "manual"), [
    ("FW: Invoice", "see below", True),
    ("Fwd: Invoice", "see below", True),
    ("WG: Rechnung", "siehe unten", True),
    ("TR: Facture", "voir ci-dessous", True),
    ("Re: Fwd: Invoice", "ok", True),
    ("Invoice", "FYI\n\nBegin forwarded message:\n\nFrom: Carol", True),
    ("Invoice", "FYI\n\n-------- Forwarded Message --------\nSubject: x", True),
    ("Re: Invoice", "Thanks!\n\n________________________________\nFrom: Acme Support\nSent: Monday", False),
    ("Re: Invoice", "Thanks!\n\n-----Original Message-----\nFrom: Acme Support", False),
    ("Forward planning meeting", "Agenda attached", False),
])
def test_a_manual_forward_is_told_apart_from_a_reply(subject, body, manual):
    assert analyse(parse(mail(f"Subject: {subject}", body)), SYSTEM).manual is manual


def test_an_auto_forwarded_fwd_subject_is_not_a_manual_forward():
    headers = "Subject: Fwd: Invoice\nX-MS-Exchange-Organization-AutoForwarded: true"
    assert analyse(parse(mail(headers)), SYSTEM).manual is False


@pytest.mark.parametrize(("headers", "sender", "reason"), [
    ("Auto-Submitted: auto-replied", "jane@example.net", "auto_submitted:auto-replied"),
    ("Auto-Submitted: auto-generated; owner-email=x@y", "jane@example.net", "auto_submitted:auto-generated"),
    ("X-Auto-Response-Suppress: OOF", "jane@example.net", "x_auto_response_suppress"),
    ("Precedence: junk", "jane@example.net", "precedence:junk"),
    ("X-Autorespond: yes", "jane@example.net", "x_autoreply"),
    ("List-Id: <announce.example.org>", "jane@example.net", "mailing_list"),
    ("Subject: x", "MAILER-DAEMON@example.net", "mailer_daemon"),
    ("Subject: x", "postmaster@example.net", "mailer_daemon"),
    ("Auto-Submitted: no", "jane@example.net", None),
    ("Precedence: first-class", "jane@example.net", None),
])
def test_mail_that_must_never_be_answered_is_recognised(headers, sender, reason):
    assert auto_generated_reason(parse(mail(headers)), sender) == reason


@pytest.mark.parametrize(("data", "declared", "expected"), [
    ("Grüße".encode(), "iso-8859-1", "Grüße"),  # UTF-8 labelled Latin-1
    ("Grüße".encode("cp1252"), "utf-8", "Grüße"),  # Latin-1 labelled UTF-8
    ("Grüße".encode("cp1252"), "x-no-such-charset", "Grüße"),
    ("“quoted”".encode("cp1252"), "us-ascii", "“quoted”"),
    ("한국어".encode("cp949"), "ks_c_5601-1987", "한국어"),
    ("中文".encode("gb18030"), "gb2312", "中文"),
    ("日本語".encode("iso-2022-jp"), "iso-2022-jp", "日本語"),
    (b"\xff\xfe\xfd", None, "ÿþý"),
])
def test_text_in_any_declared_charset_is_read(data, declared, expected):
    assert decode_bytes(data, declared) == expected


def test_encoded_words_in_an_unknown_charset_still_read():
    parsed = parse(b"Subject: =?x-bogus?Q?Caf=E9?= ok\nFrom: a@b.example\n\nx")
    assert parsed.subject == "Café ok"
