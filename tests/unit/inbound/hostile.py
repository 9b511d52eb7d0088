"""Hostile mail, generated: one maker per class of attack (or of real mail that once broke inbound), each taking a
scale so that `make test` runs it small and `make hostile` at the size SES lets through (40 MB).

Every maker returns the raw mail; `tests/unit/inbound/test_inbound_hostile.py` says what each must end in.
"""

from __future__ import annotations

import base64
import os

FULL = os.environ.get("RELAYDESK_HOSTILE_SCALE", "fast") == "full"
SES_MAX_BYTES = 40 * 1024 * 1024  # what SES receiving accepts, headers and all
FORWARD = ("X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n")
SEEDED_MESSAGE_ID = "<CAF7b2Rq9x1T@mail.example.net>"  # the seeded ticket's first mail (conftest)


def sized(fast: int, full: int) -> int:
    return full if FULL else fast


def folded(text: str, width: int = 70) -> str:
    """A long value folded into short lines, as any MTA passes it: at its spaces, or every `width` characters of a
    value without any (which then reads back with a space there, as for any reader)."""
    if " " not in text:
        return "\r\n ".join(text[i:i + width] for i in range(0, len(text), width))
    lines, line = [], ""
    for word in text.split(" "):
        if line and len(line) + len(word) >= width:
            lines.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    return "\r\n ".join([*lines, line])


def continued(name: str, value: str, width: int = 60) -> str:
    """A long parameter as RFC 2231 continuations (`name*0="..."; name*1="..."`), each on its own line."""
    pieces = [value[i:i + width] for i in range(0, len(value), width)]
    return ";\r\n ".join(f'{name}*{n}="{piece}"' for n, piece in enumerate(pieces))


def mail(headers: str, body: str = "Please help.", *, sender: str = "Jane <jane@example.net>",
         subject: str = "Help", message_id: str = "<hostile@example.net>", forwarded: bool = True) -> bytes:
    """A forwarded request whose header block ends with `headers` (From first unless `headers` holds one)."""
    from_line = "" if "\nfrom:" in "\n" + headers.lower() else f"From: {sender}\r\n"
    head = (FORWARD if forwarded else "") + from_line + "To: support@acme.test\r\n"
    head += f"Subject: {subject}\r\n" if subject is not None else ""
    head += f"Message-ID: {message_id}\r\n" if message_id else ""
    return (head + headers + ("\r\n" if headers and not headers.endswith("\r\n") else "") + "\r\n" + body
            + "\r\n").encode("utf-8", "surrogateescape")


def multipart(parts: list[str], *, kind: str = "mixed", boundary: str = "b", headers: str = "") -> bytes:
    body = "".join(f"--{boundary}\r\n{part}\r\n" for part in parts) + f"--{boundary}--"
    return mail(f'{headers}MIME-Version: 1.0\r\nContent-Type: multipart/{kind}; boundary="{boundary}"\r\n', body)


def text_part(text: str, extra: str = "") -> str:
    return f"Content-Type: text/plain; charset=utf-8\r\n{extra}\r\n{text}"


# --- fields that used to overflow a DynamoDB item or key ---

def long_display_name() -> bytes:
    name = "Jane " + "Very-Long-Name " * sized(4_000, 35_000)
    return mail("", sender=f"{folded(name)} <jane@example.net>")


def long_encoded_display_name() -> bytes:
    word = "=?utf-8?q?J=C3=B6rg_M=C3=BCller?="
    return mail("", sender=folded(" ".join([word] * sized(3_000, 30_000)), 76) + " <jorg@example.net>")


def long_content_ids() -> bytes:
    cid = "x" * sized(6_000, 6_000)
    images = [f"Content-Type: image/png\r\nContent-Transfer-Encoding: base64\r\nContent-Disposition: inline\r\n"
              f"Content-ID: <{folded(cid + str(i))}>\r\n\r\niVBORw0KGgo=" for i in range(90)]
    return multipart([text_part("See the images."), *images], kind="related")


def long_address() -> bytes:
    return mail("", sender=f"Jane <{'j' * sized(3_000, 30_000)}@example.net>")


def long_filename_and_content_type() -> bytes:
    name = "report-" + "x" * 10_000 + ".pdf"  # within the parameter bound, so the name is whole until it is cut
    ctype = "application/" + "y" * sized(5_000, 50_000)
    return multipart([text_part("Report attached."),
                      f'Content-Type: {folded(ctype)}\r\nContent-Transfer-Encoding: base64\r\n'
                      f'Content-Disposition: attachment;\r\n {continued("filename", name)}\r\n\r\nJVBERi0xLjQ=',
                      'Content-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n'
                      f'Content-Disposition: attachment;\r\n {continued("filename", name)}\r\n\r\nJVBERi0xLjQ='])


def long_message_id() -> bytes:
    return mail("", message_id="<" + "m" * sized(5_000, 50_000) + "@example.net>")


def every_bound_at_once() -> bytes:
    """Each field of a comment at its largest, in 4-byte characters where a sender may choose them."""
    html = "<p>" + "\U0001f600" * 24_900 + "</p>"  # just under the HTML body's 100 KB: it stays on the comment
    clip, cid = "\U0001f4ce" * 200, "c" * 240
    files = [f'Content-Type: image/png\r\nContent-Disposition: inline;\r\n {continued("filename", f"{clip}{i}.png")}'
             f"\r\nContent-ID: <{cid}{i:03d}>\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA" for i in range(150)]
    return multipart(["Content-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\n"
                      + text_part("\U0001f600" * sized(60_000, 2_000_000)) + "\r\n--alt\r\n"
                      + f"Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n--alt--", *files],
                     kind="related")


def many_attachments() -> bytes:
    files = [f'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f{i}.bin"\r\n'
             f"Content-Transfer-Encoding: base64\r\n\r\nAAAA" for i in range(sized(500, 1_500))]
    return multipart([text_part("Many files."), *files])


# --- addresses: what a sender can make the requester or a CC ---

def display_name_is_an_address() -> bytes:
    return mail("", sender="boss@example.com <someone@else.example>")


def encoded_word_smuggles_addresses() -> bytes:
    name = "=?utf-8?q?boss=40example.com_=3Cceo=40example.com=3E=2C_hidden=40cc.example?="
    return mail(f"Reply-To: {name} <real@sender.example>", sender=f"{name} <real@sender.example>")


def encoded_word_as_the_only_address() -> bytes:
    return mail("", sender="=?utf-8?q?ceo=40example.com?=")


def thousands_of_recipients() -> bytes:
    count = sized(5_000, 200_000)
    to = ",\r\n ".join(f"=?utf-8?q?User_{i}?= <user{i}@example.org>" for i in range(count))
    return mail(f"Cc: {to}")


def obsolete_sender_syntax() -> bytes:
    return mail("", sender="Jane Q. Public <@relay.example.org:jane @ example . net> (via the list)")


def unterminated_quote_and_comment_bombs() -> bytes:
    return mail(f'Cc: "{"q" * sized(100_000, 5_000_000)}\r\nReply-To: {"(" * sized(100_000, 2_000_000)}')


def address_like_runs() -> bytes:  # a regular expression scanning for addresses went quadratic on these
    return mail(f"Cc: {'a@' * sized(50_000, 5_000_000)}\r\nX-Note: {'a' * sized(100_000, 5_000_000)}")


# --- decoding time: encoded words, parameters ---

def encoded_word_bomb() -> bytes:
    words = " ".join(["=?utf-8?q?abcdefghij?="] * sized(50_000, 1_700_000))
    return mail("", subject=folded(words, 76))


def unterminated_encoded_words() -> bytes:
    return mail("", subject="=?utf-8?q?" * sized(200_000, 3_800_000))


def parameter_bomb() -> bytes:
    params = "; a=1" * sized(100_000, 6_000_000)
    return mail(f'MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8{params}', "Parameters galore.")


# --- structure: header bombs, depth, breadth, lines ---

def header_bomb() -> bytes:
    return mail("".join(f"X-Filler-{i}: {'z' * 20}\r\n" for i in range(sized(20_000, 1_000_000))))


def header_bomb_above_from() -> bytes:
    bomb = "".join(f"X-Filler-{i}: z\r\n" for i in range(sized(5_000, 1_500_000)))
    return (bomb + "From: Jane <jane@example.net>\r\nTo: support@acme.test\r\nSubject: Help\r\n\r\nPlease help.\r\n"
            ).encode()


def nested(depth: int, text: str) -> bytes:
    """`text` at the bottom of `depth` multiparts, each inside the one before."""
    opens = "".join(f'Content-Type: multipart/mixed; boundary="d{i}"\r\n\r\n--d{i}\r\n' for i in range(depth))
    closes = "".join(f"\r\n--d{i}--" for i in reversed(range(depth)))
    head = FORWARD + "From: Jane <jane@example.net>\r\nTo: support@acme.test\r\nSubject: Deep\r\nMIME-Version: 1.0\r\n"
    return (head + opens + f"Content-Type: text/plain\r\n\r\n{text}" + closes + "\r\n").encode()


def mime_depth_bomb() -> bytes:
    return nested(sized(500, 20_000), "DEEP TEXT")


def nested_25_levels() -> bytes:
    return nested(25, "The text 25 levels down.")


def nested_messages() -> bytes:  # message/rfc822 inside message/rfc822, ..., like a zip bomb of forwards
    inner = "From: a@example.org\r\nSubject: innermost\r\n\r\nthe innermost text\r\n"
    for level in range(sized(300, 5_000)):
        inner = (f"From: l{level}@example.org\r\nSubject: level {level}\r\nMIME-Version: 1.0\r\n"
                 f"Content-Type: message/rfc822\r\n\r\n{inner}")
    return multipart([text_part("Forwarding the whole chain."),
                      "Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n" + inner])


def mime_breadth_bomb() -> bytes:
    return multipart([text_part("First part.")] + ["\r\nx"] * sized(30_000, 2_500_000))


def tiny_lines() -> bytes:
    return mail("", "Logs:\r\n" + "x\r\n" * sized(30_000, 13_000_000))


def huge_base64_line() -> bytes:
    payload = os.urandom(sized(1_000_000, 28_000_000))
    return multipart([text_part("One line of base64."),
                      'Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n'
                      'Content-Disposition: attachment; filename="one-line.zip"\r\n\r\n'
                      + base64.b64encode(payload).decode()])


def huge_text_line() -> bytes:
    return mail("", "A" * sized(2_000_000, 38_000_000))


def pathological_html() -> bytes:
    return mail("MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8",
                "<p>Help</p>" + "<a " * sized(200_000, 10_000_000) + "<!--" * sized(50_000, 2_000_000))


# --- characters: charsets, NUL, CR/LF ---

def bad_charsets() -> bytes:
    label = "x-" + "bogus" * sized(2_000, 200_000)
    return multipart([
        f"Content-Type: text/plain; charset={label}\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\udce9",
        "Content-Type: text/plain; charset=utf-7\r\n\r\n+2D3cAA-lone+2D0- surrogates",
        "Content-Type: text/plain; charset=utf-16\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"\xff\xfe\x00\xd8a\x00").decode(),
        'Content-Type: text/plain; charset=""\r\n\r\nempty charset',
        "Content-Type: application/pdf\r\nContent-Disposition: attachment; filename*=utf-7''%2B2D0-.pdf\r\n\r\nx",
    ], headers="X-Topic: =?x-unknown?B?////?= =?utf-7?Q?+2D0-?=\r\n")


def nul_and_crlf_injection() -> bytes:
    subject = "=?utf-8?q?Invoice=0D=0ABcc:_attacker=40evil.example=00?="
    sender = "=?utf-8?q?Jane=0D=0ABcc:_x=40evil.example?= <jane@example.net>"
    return mail("", "Body with a NUL \x00 and \x1b escape and \ufffe noncharacter.", sender=sender, subject=subject)


def gigantic_references_newest_ours() -> bytes:
    refs = " ".join(f"<ref{i}@example.org>" for i in range(sized(20_000, 700_000)))
    return mail(f"References: {folded(refs + ' ' + SEEDED_MESSAGE_ID, 78)}", "Replying again.",
                sender="Jane <jane@example.net>", subject="Re: Printer on floor 3 is jammed")


# --- real senders that were dropped, text that was lost ---

def junk_line_ends_the_header_block() -> bytes:
    return (FORWARD + "Received: from mail.example.net (mail.example.net [198.51.100.7])\r\n"
            "by mx.acme.test with ESMTPS id 4F2A\r\nFrom: Jane <jane@example.net>\r\nTo: support@acme.test\r\n"
            "Subject: Printer\r\n\r\nThe printer is jammed.\r\n").encode()


def inline_text_with_a_filename() -> bytes:
    return multipart([text_part("Hello,", 'Content-Disposition: inline\r\n'),
                      text_part("the printer on floor 3 is jammed again.",
                                'Content-Disposition: inline; filename="note.txt"\r\n')])


def auto_submitted_bomb() -> bytes:
    return mail("Auto-Submitted: auto-replied-" + "x" * sized(100_000, 5_000_000))


def verification_header_bomb() -> bytes:
    return mail("X-Relaydesk-Verification: " + folded("V" * sized(100_000, 5_000_000)))


def delivery_report_bomb() -> bytes:
    """A report on one of our notifications, naming thousands of recipients with huge diagnostics."""
    per = "".join(f"Final-Recipient: rfc822; r{i}@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
                  f"Diagnostic-Code: smtp; 550 {'d' * 2_000}\r\n\r\n" for i in range(sized(300, 1_500)))
    return (b"From: MAILER-DAEMON@mx.example.org\r\nTo: support@acme.test\r\nSubject: Undelivered Mail\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n"
            b"--r\r\nContent-Type: text/plain\r\n\r\nDelivery failed.\r\n--r\r\n"
            b"Content-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
            + per.encode() + b"--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
            b"Message-ID: <N01M8000000000000AA@acme.test>\r\nSubject: [RD#T01M8000000000000TK] x\r\n\r\n--r--\r\n")
