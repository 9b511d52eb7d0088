"""Our relaxed canonicalization gives exactly dkimpy's bytes, on generated messages full of awkward whitespace."""

from __future__ import annotations

from dkim import rfc822_parse
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.dkim.canonical import relaxed_body, relaxed_headers, split_message

# Bodies built from the characters canonicalization cares about, plus ordinary text.
body_bytes = st.lists(st.sampled_from([b" ", b"\t", b"\r\n", b"\n", b"\r", b"a", b"word", b"  ", b"\xc3\xa9"]),
                      max_size=60).map(b"".join)
header_name = st.sampled_from([b"From", b"To", b"Subject", b"X-Test", b"content-type"])
header_value = st.lists(st.sampled_from([b" ", b"\t", b"\r\n ", b"\r\n\t", b"x", b"value", b"  ", b";"]),
                        min_size=1, max_size=20).map(lambda parts: b" " + b"".join(parts).lstrip(b"\r\n"))


@settings(max_examples=400, deadline=None)
@given(body_bytes)
def test_relaxed_body_matches_dkimpy(body):
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(header_name, header_value), min_size=1, max_size=6))
def test_relaxed_headers_match_dkimpy(headers):
    as_lists = [[name, value + b"\r\n"] for name, value in headers]

    assert relaxed_headers(as_lists) == [tuple(h) for h in Relaxed.canonicalize_headers(as_lists)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(header_name, st.sampled_from([b" a", b" b c", b"  d\t"])), min_size=1, max_size=5),
       st.sampled_from([b"\r\n", b"\n"]), body_bytes)
def test_split_message_matches_dkimpys_parser(headers, newline, body):
    message = b"".join(name + b":" + value + newline for name, value in headers) + newline + body

    ours_headers, ours_body = split_message(message)
    their_headers, their_body = rfc822_parse(message)

    assert ours_headers == their_headers
    assert ours_body == their_body
