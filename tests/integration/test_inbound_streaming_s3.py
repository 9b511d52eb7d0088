"""The raw mail bucket (moto, from template.yaml) streamed to the inbound parser: the same result as the whole
object, a missing object reported at once."""

from __future__ import annotations

import pytest
from relaydesk.errors import NotFoundError
from relaydesk.inbound.parse import parse

from tests.unit.inbound.test_inbound_streaming import CORPUS_FILES, everything_read

from .test_inbound_handler import CORPUS


def test_every_corpus_message_streamed_from_s3_parses_as_it_does_whole(aws_stack):
    for name in CORPUS_FILES:
        raw = (CORPUS / name).read_bytes()
        aws_stack.blobs.put(f"inbound/{name}", raw)

        streamed = parse(aws_stack.blobs.chunks(f"inbound/{name}", size=512))

        assert everything_read(streamed) == everything_read(parse(raw)), name


def test_the_s3_stream_hands_out_the_object_in_chunks_of_the_size_asked(aws_stack):
    raw = bytes(range(256)) * 1000
    aws_stack.blobs.put("inbound/ses1", raw)

    chunks = list(aws_stack.blobs.chunks("inbound/ses1", size=4096))

    assert b"".join(chunks) == raw and {len(c) for c in chunks[:-1]} == {4096}


def test_a_missing_raw_mail_in_s3_is_reported_before_any_reading(aws_stack):
    with pytest.raises(NotFoundError):
        aws_stack.blobs.chunks("inbound/never-stored")
