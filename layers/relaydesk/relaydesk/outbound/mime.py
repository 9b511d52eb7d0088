"""The wire format of the one message shape we send, written directly as CRLF bytes: header fields (RFC 5322
folding, RFC 2047 encoded words), quoted-printable text parts, base64 attachments and multipart bodies.

Safe by construction: every header value is split on whitespace (CR, LF and every other line break are whitespace
to `str.split`) and each word is either printable ASCII written as is or an encoded word, so no value can end a
line. The only line breaks in a header are the folds written here (CRLF + space), which never start a field.
"""

from __future__ import annotations

import os
from binascii import b2a_base64, b2a_qp
from collections.abc import Sequence
from datetime import datetime

CRLF = "\r\n"
LINE = 78  # RFC 5322 2.1.1: a line SHOULD be at most 78 characters
WORD = 900  # longer printable words are encoded (and so split): RFC 5322 2.1.1 caps a line at 998
ENCODED_WORD = 75  # RFC 2047 2: an encoded word is at most 75 characters
BASE64_LINE = 76  # RFC 2045 6.8
_Q_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")  # RFC 2047 5 (3)
SPECIALS = frozenset('()<>[]:;@\\,."')  # RFC 5322 3.2.3: a phrase holding one of these is quoted
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def plain(word: str) -> bool:
    """A word that goes on the wire as it is: printable ASCII, not mistakable for an encoded word, not too long."""
    return word.isascii() and word.isprintable() and "=?" not in word and len(word) <= WORD


def _q(char: str) -> str:
    if char in _Q_SAFE:
        return char
    if char == " ":
        return "_"
    return "".join(f"={byte:02X}" for byte in char.encode())


class Field:
    """One header field being folded: words joined by single spaces, a fold (CRLF + space) before a word that does
    not fit on the line any more."""

    def __init__(self, name: str) -> None:
        self.lines: list[str] = []
        self.line = f"{name}:"
        self.empty = True  # nothing after the name yet: the first word stays on the name's line

    def word(self, text: str) -> None:
        if not self.empty and len(self.line) + 1 + len(text) > LINE:
            self.lines.append(self.line)
            self.line = ""
        self.line += " " + text
        self.empty = False

    def encoded(self, text: str, prefix: str = "", suffix: str = "") -> None:
        """`text` as encoded words (UTF-8; Q or B, whichever is shorter), each sized to the room left on its line.
        Decoders drop the space between two encoded words, so the text is cut anywhere between two characters."""
        utf8 = len(text.encode())
        quoted = [_q(char) for char in text]
        use_q = sum(map(len, quoted)) <= 4 * -(-utf8 // 3)
        lead, tail = prefix + ("=?utf-8?q?" if use_q else "=?utf-8?b?"), "?=" + suffix
        start, total = 0, len(text)
        while start < total:
            room = min(LINE - len(self.line) - 1, ENCODED_WORD + len(prefix) + len(suffix)) - len(lead) - len(tail)
            if room < 16 and not self.empty:
                self.lines.append(self.line)
                self.line = ""
                room = min(LINE - 1, ENCODED_WORD + len(prefix) + len(suffix)) - len(lead) - len(tail)
            end, size = start, 0
            if use_q:
                while end < total and (end == start or size + len(quoted[end]) <= room):
                    size += len(quoted[end])
                    end += 1
                chunk = "".join(quoted[start:end])
            else:
                while end < total and (end == start or 4 * -(-(size + len(text[end].encode())) // 3) <= room):
                    size += len(text[end].encode())
                    end += 1
                chunk = b2a_base64(text[start:end].encode(), newline=False).decode()
            self.line += " " + (lead if start == 0 else lead[len(prefix):]) + chunk + \
                (tail if end == total else "?=")
            self.empty = False
            start = end

    def text(self) -> str:
        return CRLF.join([*self.lines, self.line]) + CRLF


def unstructured(name: str, value: str) -> str:
    """An unstructured field (RFC 5322 3.2.5): words as they are, runs of words that are not plain ASCII as
    encoded words (with the spaces between them inside, so a decoder gives back single spaces)."""
    field = Field(name)
    run: list[str] = []
    for word in value.split():
        if plain(word):
            if run:
                field.encoded(" ".join(run))
                run = []
            field.word(word)
        else:
            run.append(word)
    if run:
        field.encoded(" ".join(run))
    return field.text()


def phrase(field: Field, name: str) -> None:
    """A display name (RFC 5322 3.2.5 phrase): atoms, one quoted string, or encoded words."""
    words = name.split()
    if not words:
        return
    if all(plain(word) and len(word) <= LINE // 2 for word in words):
        text = " ".join(words)
        if SPECIALS.isdisjoint(text):
            for word in words:
                field.word(word)
            return
        quoted = '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if len(quoted) <= LINE // 2:
            field.word(quoted)
            return
    field.encoded(" ".join(words))


def addresses(name: str, mailboxes: Sequence[tuple[str, str]]) -> str:
    """An address-list field: `(display name, addr-spec)` pairs, each addr-spec already checked to be one plain
    address (see `compose.mailbox`, which turns an internationalised domain into its A-label). A non-ASCII domain
    that reaches here anyway is written as one encoded word rather than raw UTF-8."""
    field = Field(name)
    for index, (display, spec) in enumerate(mailboxes):
        comma = "," if index < len(mailboxes) - 1 else ""
        local, _, domain = spec.rpartition("@")
        if not plain(local):
            raise ValueError("an address's local part must be printable ASCII")
        if not plain(domain):
            spec = f"{local}@{encoded_word(domain)}"
        if display.split():
            phrase(field, display)
            field.word(f"<{spec}>{comma}")
        else:
            field.word(spec + comma)
    return field.text()


def encoded_word(text: str) -> str:
    """`text` as one encoded word, however long (for a domain: at most 253 octets, so well within a line)."""
    quoted = "".join(map(_q, text))
    data = text.encode()
    if len(quoted) <= 4 * -(-len(data) // 3):
        return f"=?utf-8?q?{quoted}?="
    return f"=?utf-8?b?{b2a_base64(data, newline=False).decode()}?="


def date(moment: datetime) -> str:
    """RFC 5322 3.3 date-time, as `email.utils.format_datetime` writes it."""
    zone = "-0000" if moment.tzinfo is None else moment.strftime("%z")
    return (f"{_DAYS[moment.weekday()]}, {moment.day:02d} {_MONTHS[moment.month - 1]} {moment.year:04d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d} {zone}")


# --- bodies ---------------------------------------------------------------------------------------------------

class Part:
    """A MIME entity: its Content-* fields (folded, CRLF-ended) and its encoded body as chunks of CRLF lines,
    joined once for the whole message (an attachment's ~200 KB is not copied at every level)."""

    __slots__ = ("body", "head")

    def __init__(self, head: str, body: list[bytes]) -> None:
        self.head = head
        self.body = body


def text(content: str, subtype: str) -> Part:
    """text/<subtype> in UTF-8, quoted-printable: line ends (CR, LF, CRLF) become CRLF, the text ends with one,
    trailing spaces and a line of a lone dot are encoded (binascii's quoted-printable does both)."""
    lines = content.encode("utf-8").splitlines()
    lines.append(b"")
    body = b2a_qp(b"\r\n".join(lines), istext=True)
    return Part(f'Content-Type: text/{subtype}; charset="utf-8"{CRLF}'
                f"Content-Transfer-Encoding: quoted-printable{CRLF}", [body])


def attachment(data: bytes, content_type: str, filename: str) -> Part:
    """An attachment, base64 in lines of 76 characters; `content_type` must already be a checked type/subtype."""
    if not plain(content_type):
        raise ValueError("an attachment's content type must be one printable ASCII token")
    encoded = b2a_base64(data, newline=False)
    lines = [encoded[i:i + BASE64_LINE] for i in range(0, len(encoded), BASE64_LINE)]
    lines.append(b"")
    body = [b"\r\n".join(lines)] if data else []
    kind = Field("Content-Type")
    kind.word(content_type + ";")
    disposition = Field("Content-Disposition")
    disposition.word("attachment;")
    # filename= and name= as Gmail and Outlook write them: a quoted string, encoded words inside when not ASCII.
    _parameter(kind, "name", filename)
    _parameter(disposition, "filename", filename)
    return Part(kind.text() + f"Content-Transfer-Encoding: base64{CRLF}" + disposition.text(), body)


def _parameter(field: Field, name: str, value: str) -> None:
    words = value.split()
    text = " ".join(words)
    quoted = text.replace("\\", "\\\\").replace('"', '\\"')
    if all(plain(word) for word in words) and len(quoted) + len(name) + 3 <= LINE - 1:
        field.word(f'{name}="{quoted}"')
    else:
        field.encoded(text, prefix=f'{name}="', suffix='"')


def boundary() -> str:
    # "=_" never occurs in quoted-printable or base64 text, so the boundary cannot occur in a part (RFC 2046 5.1.1)
    return "=_rd_" + os.urandom(12).hex()


def multipart(subtype: str, parts: Sequence[Part]) -> Part:
    mark = boundary()
    delimiter = f"--{mark}\r\n".encode("ascii")
    body: list[bytes] = []
    for part in parts:  # each part's body ends in CRLF; the CRLF before the next delimiter belongs to it
        body += [delimiter, part.head.encode("ascii"), b"\r\n", *part.body, b"\r\n"]
    body.append(f"--{mark}--\r\n".encode("ascii"))
    return Part(f'Content-Type: multipart/{subtype}; boundary="{mark}"{CRLF}', body)


def message(header: str, entity: Part) -> bytes:
    """The whole message: our header fields, MIME-Version, the top entity's fields, the blank line, the body."""
    return b"".join([(header + "MIME-Version: 1.0" + CRLF + entity.head + CRLF).encode("ascii"), *entity.body])
