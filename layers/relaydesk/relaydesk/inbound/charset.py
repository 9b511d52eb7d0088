"""Best-effort decoding of bytes whose declared charset may be wrong, unknown or missing: it never raises."""

from __future__ import annotations

import codecs
import re

# Labels mail clients write that Python does not know, or knows under a narrower meaning than the sender used.
CHARSET_ALIASES = {
    "unicode-1-1-utf-7": "utf-7",
    "ks_c_5601-1987": "cp949",
    "ks_c_5601": "cp949",
    "gb2312": "gb18030",  # senders label GBK/GB18030 text as gb2312
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "iso-8859-1": "cp1252",  # WHATWG: the label means windows-1252 in practice
    "latin1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "x-mac-roman": "mac_roman",
    "macintosh": "mac_roman",
    "x-sjis": "shift_jis",
    "windows-874": "cp874",
}
# Declared single-byte charsets that are often a mislabel of UTF-8: valid UTF-8 wins over them.
_OFTEN_MISLABELLED = {"cp1252", "iso8859-15", "iso8859-2", "mac-roman", "ascii", "latin-1"}
FALLBACKS = ("utf-8", "cp1252")
_SEVEN_BIT_ENCODINGS = ("iso2022", "utf-7", "hz")  # encodings of non-ASCII text that use only ASCII bytes
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")  # what surrogateescape makes of a raw 8-bit byte


def python_codec(label: str | None) -> str | None:
    """The codec name for a MIME charset label, or None when Python has no codec for it."""
    if not label or not isinstance(label, str):
        return None
    cleaned = label.strip().strip("\"'").lower()
    cleaned = CHARSET_ALIASES.get(cleaned, cleaned)
    try:
        return codecs.lookup(cleaned).name
    except (LookupError, ValueError):
        return None


def decode_bytes(data: bytes, declared: str | None = None) -> str:
    """Text from bytes: the declared charset if it fits, UTF-8, windows-1252, and finally Latin-1 (never fails)."""
    if not data:
        return ""
    codec = python_codec(declared)
    if data.isascii() and not (codec or "").startswith(_SEVEN_BIT_ENCODINGS):
        return data.decode("ascii")
    candidates: list[str] = []
    if codec in _OFTEN_MISLABELLED or codec is None:
        candidates.extend(FALLBACKS)
    if codec:
        candidates.insert(0 if codec not in _OFTEN_MISLABELLED else len(candidates), codec)
    candidates.extend(FALLBACKS)
    for candidate in dict.fromkeys(candidates):
        try:
            return _without_lone_surrogates(data.decode(candidate))
        except (UnicodeDecodeError, LookupError, ValueError):
            continue
    return data.decode("latin-1")


def _without_lone_surrogates(text: str) -> str:
    """Some codecs (UTF-7, UTF-16) can yield lone surrogates, which no JSON or DynamoDB write accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def unescape_surrogates(text: str) -> str:
    """Header text the parser kept as surrogate escapes (raw 8-bit bytes, e.g. SMTPUTF8 addresses) made readable."""
    if _ESCAPED_BYTE.search(text) is None:
        return text
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return decode_bytes(raw)
