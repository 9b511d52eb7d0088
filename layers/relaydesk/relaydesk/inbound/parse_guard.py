"""Bounds the work and memory of the stdlib's MIME parser, whatever the mail: it is fed at most MAX_LINES lines and
stops being fed once it has made MAX_PARTS parts; a part keeps at most MAX_HEADER_FIELDS header fields; nesting
deeper than MAX_PARSE_DEPTH is read as text instead of recursed into. What is left out is named in `omitted` (it
ends up on the comment); the raw mail in S3 keeps all of it.

It also repairs the one fault of real mail that loses its sender: a line in the top header block that is not a
header field (an unindented continuation of a long Received line, say) ends the block for the stdlib, so From and
everything after it become body text. Such a line is skipped when a standard header field follows it.
"""

from __future__ import annotations

import re
from email.message import Message
from email.policy import compat32

from relaydesk.inbound.limits import MAX_HEADER_FIELDS, MAX_LINES, MAX_PARSE_DEPTH, MAX_PARTS

MAX_SKIPPED_HEADER_LINES = 5
MAX_PARAMETER_FIELD_CHARS = 16 * 1024  # Content-Type/-Disposition; a long RFC 2231 file name needs ~2.5 KiB
_PARAMETER_FIELDS = {"content-type", "content-disposition"}
ESSENTIAL_FIELDS = {"from", "reply-to", "sender", "to", "cc", "subject", "message-id", "in-reply-to", "references",
                    "mime-version", "content-type", "content-transfer-encoding", "content-disposition", "content-id",
                    "auto-submitted", "x-relaydesk-verification", "x-relaydesk-email-id"}
_HEADER_LINE = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")  # the stdlib feed parser's headerRE, in bytes
_NOT_A_HEADER_LINE = re.compile(rb"^(?!From |[\x21-\x39\x3b-\x7e]*:|[\t ])", re.MULTILINE)
_STANDARD_FIELD = re.compile(
    rb"(?:From|Sender|Reply-To|To|Cc|Bcc|Subject|Date|Message-ID|In-Reply-To|References|MIME-Version|Content-[\w-]+"
    rb"|Received|Return-Path|DKIM-Signature|ARC-[\w-]+|Authentication-Results|Delivered-To|Thread-[\w-]+"
    rb"|List-[\w-]+|Precedence|Auto-Submitted|Importance|X-[\w-]+)[ \t]*:", re.IGNORECASE)
_NESTING_TYPES = re.compile(r"\s*(?:multipart|message)\s*/", re.IGNORECASE)


class FeedGuard:
    """Between the S3 stream and the parser: `admit(chunk)` returns what the parser may read of it (b"" once the
    guard has stopped), `finish()` what it held back, `factory` builds the parser's bounded messages."""

    def __init__(self) -> None:
        self.parts = 0
        self.lines = 0
        self.stopped = False
        self.omitted: list[str] = []
        self._in_top_headers = True
        self._pending: list[bytes] = []  # an incomplete line of the top header block
        self._junk: bytes | None = None  # a non-header line in the top block, waiting to see what follows it
        self._skipped = 0

    def note(self, what: str) -> None:
        if what not in self.omitted:
            self.omitted.append(what)

    def factory(self, policy=compat32) -> Message:
        return BoundedMessage(self, policy=policy)

    def reset_parts(self) -> None:
        """The feed parser makes one message at construction to probe the factory: that one is not a part."""
        self.parts = 0

    def check_parts(self) -> None:
        if self.parts > MAX_PARTS and not self.stopped:
            self.stopped = True
            self.note(f"parts after the first {MAX_PARTS} MIME parts")

    def admit(self, chunk: bytes) -> bytes:
        if self.stopped:
            return b""
        if self._in_top_headers:
            chunk = self._top_headers(chunk)
        return self._count_lines(chunk)

    def finish(self) -> bytes:
        if self.stopped:
            return b""
        held = b"".join(self._pending) + (self._junk or b"")
        self._pending, self._junk = [], None
        return self._count_lines(held)

    def _count_lines(self, data: bytes) -> bytes:
        count = data.count(b"\n")
        if self.lines + count <= MAX_LINES:
            self.lines += count
            return data
        cut = -1
        for _ in range(MAX_LINES - self.lines):
            cut = data.find(b"\n", cut + 1)
        self.lines = MAX_LINES
        self.stopped = True
        self.note(f"everything after the first {MAX_LINES:,} lines")
        return data[:cut + 1]

    def _top_headers(self, chunk: bytes) -> bytes:
        """Until the top header block ends: runs of header lines pass at once (a search in C finds the next line
        that is not one), that line is looked at alone; then the rest of the chunk as it is."""
        out: list[bytes] = []
        start = 0
        while self._in_top_headers:
            if self._pending or self._junk is not None:
                newline = chunk.find(b"\n", start)
                if newline < 0:
                    self._pending.append(chunk[start:])  # nothing held is scanned again: linear for a huge line
                    return b"".join(out)
                line = b"".join(self._pending) + chunk[start:newline + 1]
                self._pending = []
                start = newline + 1
                out.extend(self._header_line(line))
                continue
            other = _NOT_A_HEADER_LINE.search(chunk, start)
            if other is None:  # header lines to the end of the chunk; the last may be incomplete
                last = chunk.rfind(b"\n", start)
                cut = last + 1 if last >= 0 else start
                out.append(chunk[start:cut])
                if cut < len(chunk):
                    self._pending.append(chunk[cut:])
                return b"".join(out)
            out.append(chunk[start:other.start()])
            start = other.start()
            self._pending.append(b"")  # the next pass reads that line alone
        out.append(chunk[start:])
        return b"".join(out)

    def _header_line(self, line: bytes) -> list[bytes]:
        blank = line in (b"\r\n", b"\n")
        if self._junk is not None:
            junk, self._junk = self._junk, None
            if not blank and _STANDARD_FIELD.match(line):
                self._skipped += 1
                self.note("a line of the header block that is not a header field")
                return [line]
            self._in_top_headers = False  # the body began: the parser decides, as it always did
            return [junk, line]
        if blank:
            self._in_top_headers = False
            return [line]
        if _HEADER_LINE.match(line):
            return [line]
        if self._skipped < MAX_SKIPPED_HEADER_LINES:
            self._junk = line
            return []
        self._in_top_headers = False
        return [line]


class BoundedMessage(Message):
    """A compat32 message that counts itself, knows its depth, keeps a bounded number of header fields, and does not
    let the parser recurse below MAX_PARSE_DEPTH (a deeper multipart or message part is read as text)."""

    def __init__(self, guard: FeedGuard, policy=compat32) -> None:
        super().__init__(policy=policy)
        self._guard = guard
        self.depth = 0
        self._fields = 0
        self._names: set[str] = set()  # lower-cased names of the fields kept
        guard.parts += 1

    def attach(self, payload: Message) -> None:
        if isinstance(payload, BoundedMessage):
            payload.depth = self.depth + 1
            if payload.depth >= MAX_PARSE_DEPTH:
                payload.set_default_type("text/plain")  # a digest's parts default to message/rfc822
        super().attach(payload)

    def set_raw(self, name: str, value: str) -> None:
        lowered = name.lower()
        if self._fields >= MAX_HEADER_FIELDS:
            # Past the bound only the first of each field that decides the outcome is kept (a bounded few), so a
            # header bomb above From does not cost the mail its sender.
            if lowered not in ESSENTIAL_FIELDS or lowered in self._names:
                self._guard.note(f"header fields after the first {MAX_HEADER_FIELDS:,} of a part")
                return
        self._fields += 1
        self._names.add(lowered)
        if lowered in _PARAMETER_FIELDS and len(value) > MAX_PARAMETER_FIELD_CHARS:
            # The stdlib reads parameters in time quadratic in their number (email.message._parseparam).
            self._guard.note(f"{name} parameters after the first {MAX_PARAMETER_FIELD_CHARS:,} characters")
            cut = value.rfind(";", 0, MAX_PARAMETER_FIELD_CHARS)
            value = value[:cut if cut > 0 else MAX_PARAMETER_FIELD_CHARS]
        if self.depth >= MAX_PARSE_DEPTH and lowered == "content-type" and _NESTING_TYPES.match(value):
            self._guard.note(f"the structure of parts nested deeper than {MAX_PARSE_DEPTH} levels (read as text)")
            value = "text/plain"
        super().set_raw(name, value)
