"""Our relaxed canonicalization gives exactly dkimpy's bytes, on generated messages full of awkward whitespace."""

from __future__ import annotations

import re

from dkim import rfc822_parse, select_headers
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.dkim.canonical import (
    MalformedMessageError,
    header_end,
    relaxed_body,
    relaxed_headers,
    select_signed,
    split_message,
)

# Bodies built from the characters canonicalization cares about, plus ordinary text.
body_bytes = st.lists(st.sampled_from([b" ", b"\t", b"\r\n", b"\n", b"\r", b"a", b"word", b"  ", b"\xc3\xa9"]),
                      max_size=60).map(b"".join)
header_name = st.sampled_from([b"From", b"To", b"Subject", b"X-Test", b"content-type", b"from", b"Received"])
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


header_line = st.one_of(
    st.tuples(header_name, st.sampled_from([b" a", b" b c", b"  d\t", b"", b":x"])).map(lambda t: t[0] + b":" + t[1]),
    st.sampled_from([b" continued", b"\tcontinued", b"From sender@example.net Mon Jan 1", b"no colon here",
                     b"Bad Name: x", b": empty name"]))


@settings(max_examples=400, deadline=None)
@given(st.lists(header_line, min_size=1, max_size=8), st.sampled_from([b"\r\n", b"\n"]), body_bytes)
def test_odd_header_blocks_parse_as_dkimpy_parses_them_or_fail_as_it_fails(lines, newline, body):
    message = newline.join(lines) + newline + newline + body
    try:
        expected = rfc822_parse(message)
    except Exception as error:  # noqa: BLE001  # dkimpy's verdict on a malformed block: ours must fail alike
        try:
            split_message(message)
        except MalformedMessageError as ours:  # the same refusal, as our typed error
            assert str(error) in str(ours) or not str(error)
        else:
            raise AssertionError("dkimpy refused a header block that ours accepted") from None
        return
    assert split_message(message) == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"\r", b"\n", b"a", b"b:", b" "]), max_size=30).map(b"".join))
def test_header_end_finds_what_the_regular_expression_finds(message):
    found = re.search(rb"\r?\n\r?\n", message)

    assert header_end(message) == ((found.start(), found.end()) if found else (-1, -1))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([b"from", b"to", b"subject", b"received"]), st.just(b"v\r\n")),
                max_size=8),
       st.lists(st.sampled_from([b"from", b"to", b"subject", b"cc"]), max_size=10))
def test_header_selection_matches_dkimpy(headers, include):
    numbered = [(name, value + str(i).encode()) for i, (name, value) in enumerate(headers)]

    assert select_signed(numbered, include) == select_headers(numbered, include)
