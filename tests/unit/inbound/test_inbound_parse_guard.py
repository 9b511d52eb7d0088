"""What the parser is fed: every mail as it is, in any chunking, until a bound is reached (then exactly up to it);
only a junk line in the top header block that a standard header field follows is left out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.inbound import parse_guard
from relaydesk.inbound.parse import parse
from relaydesk.inbound.parse_guard import FeedGuard

from .conftest import CORPUS

CORPUS_MESSAGES = sorted(p.read_bytes() for p in CORPUS.glob("*.eml"))
LINES = st.sampled_from([b"From: a@example.net", b"Subject: x", b" folded", b"\tfolded", b"", b"body text",
                         b"X-A: 1", b"--b", b"Content-Type: text/plain", b"\xff\xfe raw", b"no colon here"])


def fed(raw: bytes, size: int) -> tuple[bytes, FeedGuard]:
    guard = FeedGuard()
    out = b"".join(guard.admit(raw[i:i + size]) for i in range(0, len(raw), size)) + guard.finish()
    return out, guard


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CORPUS_MESSAGES), st.integers(1, 300))
def test_every_corpus_mail_is_fed_unchanged_in_any_chunking(raw, size):
    whole, _ = fed(raw, len(raw))
    assert fed(raw, size)[0] == whole
    if b"\nSubject\n" not in raw:  # malformed_headers.eml is the corpus's one junk header line
        assert whole == raw


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, max_size=40), st.sampled_from([b"\n", b"\r\n"]), st.integers(1, 64))
def test_the_chunking_never_changes_what_is_fed(lines, newline, size):
    raw = newline.join(lines)
    assert fed(raw, size)[0] == fed(raw, max(len(raw), 1))[0]


def test_a_junk_line_followed_by_a_header_field_is_left_out_and_noted():
    raw = b"Received: from a\r\nby b with c\r\nFrom: Jane <jane@example.net>\r\n\r\nbody\r\n"
    out, guard = fed(raw, 7)
    assert out == raw.replace(b"by b with c\r\n", b"")
    assert guard.omitted == ["a line of the header block that is not a header field"]


def test_a_missing_blank_line_still_makes_the_rest_the_body():
    raw = b"From: Jane <jane@example.net>\r\nHello Bob,\r\nhow are you\r\n"
    assert fed(raw, 5)[0] == raw
    assert parse(raw).text.replace("\r\n", "\n") == "Hello Bob,\nhow are you"


def test_a_junk_line_before_the_blank_line_stays_in_the_body_as_before():
    raw = b"From: Jane <jane@example.net>\r\nunfinished\r\n\r\nbody\r\n"
    assert fed(raw, 3)[0] == raw


def test_the_line_bound_feeds_exactly_that_many_lines(monkeypatch):
    monkeypatch.setattr(parse_guard, "MAX_LINES", 10)
    raw = b"".join(b"line %d\n" % i for i in range(30))
    out, guard = fed(raw, 16)
    assert out == b"".join(b"line %d\n" % i for i in range(10)) and guard.stopped


def test_a_mail_of_more_parts_than_the_bound_is_cut_and_the_cut_named(monkeypatch):
    monkeypatch.setattr(parse_guard, "MAX_PARTS", 50)
    raw = (b'From: a@example.net\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
           + b"".join(b"--b\r\n\r\npart %d\r\n" % i for i in range(5_000)) + b"--b--\r\n")
    mail = parse(raw)
    assert mail.size == len(raw)  # the stream is read to its end all the same
    assert mail.omitted == ["parts after the first 50 MIME parts"]
    assert mail.text.startswith("part 0")


def test_header_fields_past_the_bound_are_ignored_but_the_first_from_is_kept(monkeypatch):
    monkeypatch.setattr(parse_guard, "MAX_HEADER_FIELDS", 5)
    raw = b"".join(b"X-F%d: v\r\n" % i for i in range(100)) + b"From: Jane <jane@example.net>\r\nFrom: x@y.z\r\n\r\nb"
    mail = parse(raw)
    assert [name for name, _ in mail.headers] == ["X-F0", "X-F1", "X-F2", "X-F3", "X-F4", "From"]
    assert mail.addresses("From") == ["jane@example.net"]


def test_nesting_past_the_parse_bound_is_read_as_text_without_recursion():
    depth = 2_000  # far past Python's recursion limit for the stdlib parser
    opens = b"".join(b'Content-Type: multipart/mixed; boundary="d%d"\r\n\r\n--d%d\r\n' % (i, i) for i in range(depth))
    raw = b"From: a@example.net\r\n" + opens + b"Content-Type: text/plain\r\n\r\nDEEP"
    mail = parse(raw)
    assert "DEEP" in mail.text
    assert any("nested deeper than 50 levels" in note for note in mail.omitted)
