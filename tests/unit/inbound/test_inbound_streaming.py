"""Inbound reads the raw mail as a stream (never whole): every corpus message parses to exactly what it parsed to
from whole bytes, whatever the chunk size, and a stream that breaks fails the invocation instead of making a
half-read mail into a ticket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from relaydesk.errors import NotFoundError
from relaydesk.inbound.parse import ParsedMail, parse
from relaydesk.store.memory import MemoryBlobs

from .conftest import CORPUS
from .test_inbound_large import big_message

CORPUS_FILES = sorted(path.name for path in Path(CORPUS).glob("*.eml"))


def everything_read(mail: ParsedMail) -> dict:
    """All a parse produced, attachments decoded (the payloads are read on demand)."""
    return {"headers": mail.headers, "content_type": mail.content_type, "text": mail.text, "html": mail.html,
            "report": mail.report, "report_type": mail.report_type, "size": mail.size, "defects": mail.defects,
            "attachments": [(a.filename, a.content_type, a.inline, a.content_id, a.payload())
                            for a in mail.attachments]}


def in_chunks(raw: bytes, size: int) -> Iterator[bytes]:
    return (raw[start:start + size] for start in range(0, len(raw), size))


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_every_corpus_message_streamed_in_chunks_parses_as_it_does_whole(name):
    raw = (CORPUS / name).read_bytes()
    whole = everything_read(parse(raw))

    for size in (1, 13, 1024, 1 << 16):  # 1 byte: every header and boundary line split across feeds
        assert everything_read(parse(in_chunks(raw, size))) == whole, f"chunks of {size} bytes"


def test_the_bucket_streams_the_raw_mail_as_it_was_stored():
    blobs = MemoryBlobs()
    raw = (CORPUS / "apple_mail_pdf_postfix_forward.eml").read_bytes()
    blobs.put("inbound/ses1", raw)

    chunks = list(blobs.chunks("inbound/ses1", size=100))

    assert b"".join(chunks) == raw and {len(c) for c in chunks[:-1]} == {100}
    assert everything_read(parse(blobs.chunks("inbound/ses1"))) == everything_read(parse(raw))


def test_a_missing_raw_mail_is_reported_before_any_reading():
    with pytest.raises(NotFoundError):
        MemoryBlobs().chunks("inbound/never-stored")


def test_a_stream_that_breaks_midway_fails_instead_of_parsing_half_a_mail():
    raw = big_message(b"\x00" * 300_000)

    def breaking() -> Iterator[bytes]:
        yield raw[:65536]
        raise ConnectionResetError("S3 closed the connection")

    with pytest.raises(ConnectionResetError):
        parse(breaking())


def test_a_stream_error_that_looks_like_a_parse_error_still_fails():
    """The parser's own errors become defects; the same exception types raised by the stream must not."""

    def breaking() -> Iterator[bytes]:
        yield b"From: kim@example.net\r\n"
        raise LookupError("the object vanished")

    with pytest.raises(LookupError):
        parse(breaking())


def test_a_large_mail_streamed_keeps_its_attachment_and_its_size():
    payload = bytes(range(256)) * 4096  # 1 MiB
    raw = big_message(payload)

    mail = parse(in_chunks(raw, 1 << 16))

    assert mail.size == len(raw)
    [attachment] = mail.attachments
    assert attachment.payload() == payload
