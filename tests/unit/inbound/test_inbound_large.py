"""A 30 MB attachment (generated here, not committed) arrives whole in S3 under its ticket."""

from __future__ import annotations

import base64
import hashlib
import os

from relaydesk.inbound.outcome import Outcome

ATTACHMENT_BYTES = 22 * 1024 * 1024  # about 30 MB once base64-encoded in the message


def big_message(payload: bytes) -> bytes:
    head = (b"X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n"
            b"From: Designer <design@example.net>\r\nTo: support@acme.test\r\nSubject: Print files for the fair\r\n"
            b"Message-ID: <print-files-1@example.net>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"==big==\"\r\n\r\n--==big==\r\n"
            b"Content-Type: text/plain; charset=utf-8\r\n\r\nThe print files are attached.\r\n--==big==\r\n"
            b"Content-Type: application/zip; name=\"print-files.zip\"\r\nContent-Transfer-Encoding: base64\r\n"
            b"Content-Disposition: attachment; filename=\"print-files.zip\"\r\n\r\n")
    return head + base64.encodebytes(payload).replace(b"\n", b"\r\n") + b"--==big==--\r\n"


def test_a_30_mb_attachment_is_stored_whole_under_its_ticket(world):
    payload = os.urandom(ATTACHMENT_BYTES)
    raw = big_message(payload)
    assert len(raw) > 30_000_000

    result = world.deliver(raw)

    assert result.outcome is Outcome.NEW_TICKET
    [attachment] = world.ticket(result.ticket_id).comments[0].attachments
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "print-files.zip", "application/zip", ATTACHMENT_BYTES)
    stored = world.stores.blobs.get(attachment.s3_key)
    assert hashlib.sha256(stored).digest() == hashlib.sha256(payload).digest()
    assert world.stores.blobs.get(f"inbound/{result.ses_message_id}") == raw
