"""RFC 2047 encoded words, decoded in one pass: time linear in the header's length, whatever the number of words.

The stdlib's `email.header.decode_header` pops words off the front of a list and concatenates bytes of adjacent
words one by one, both quadratic: a 6 MB header of encoded words took minutes. Here one regular expression finds
the words (its encoded text stops at the first '?', so a scan never runs past the next word), adjacent words of one
charset are joined as bytes before they are decoded (a character may be split across two words), and whitespace
between two encoded words is dropped (RFC 2047 6.2). A word that does not decode stays as it was written.
"""

from __future__ import annotations

import binascii
import re

from relaydesk.inbound.charset import decode_bytes, python_codec
from relaydesk.inbound.limits import MAX_CHARSET_CHARS

# RFC 2047 2 and RFC 2231 5 (`charset*language`). The encoded text may not hold '?' (2, 4.2); spaces are tolerated
# because broken mailers write them and readers accept them.
ENCODED_WORD = re.compile(rf"=\?([^?\s*]{{1,{MAX_CHARSET_CHARS}}})(?:\*[^?\s]*)?\?([bBqQ])\?([^?]*)\?=")
_ONLY_SPACE = re.compile(r"[ \t\r\n]*\Z")


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding in "bB":
            data = text.encode("ascii", "ignore").translate(None, b" \t\r\n")
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(text.encode("ascii", "surrogateescape"), header=True)
    except (binascii.Error, ValueError, UnicodeError):
        return None


def _decoded(data: bytes, charset: str) -> str:
    """Words declared UTF-8 whose bytes are not all UTF-8 (one broken word among many) keep the rest readable:
    the broken bytes become U+FFFD instead of the whole run being read as windows-1252."""
    if python_codec(charset) == "utf-8":
        return data.decode("utf-8", "replace")
    return decode_bytes(data, charset)


def decode_words(text: str) -> str:
    """`text` with its encoded words decoded; text outside the words is kept as it is."""
    if "=?" not in text:
        return text
    out: list[str] = []
    run: list[bytes] = []  # bytes of adjacent words in one charset, decoded together
    run_charset = ""
    position = 0

    def flush() -> None:
        nonlocal run, run_charset
        if run:
            out.append(_decoded(b"".join(run), run_charset))
            run, run_charset = [], ""

    for match in ENCODED_WORD.finditer(text):
        data = _word_bytes(match.group(2), match.group(3))
        if data is None:
            continue  # not decodable: stays in the text as written
        between = text[position:match.start()]
        charset = match.group(1).lower()
        adjacent = bool(run) and _ONLY_SPACE.match(between) is not None
        if not adjacent:
            flush()
            out.append(between)
        elif charset != run_charset:
            flush()
        run.append(data)
        run_charset = charset
        position = match.end()
    flush()
    out.append(text[position:])
    return "".join(out)
