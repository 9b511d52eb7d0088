"""The bounds of everything inbound takes from a mail, in one place: what a sender controls is cut (or refused) here,
before it can reach a store, a queue message or a log. docs/INBOUND.md ("Limits") states each one; the raw mail
stays whole in S3 for the full view.
"""

from __future__ import annotations

import re

# What the parser reads of a mail (beyond it the mail is cut: the comment says so, the original is in S3).
MAX_LINES = 2_000_000  # a 40 MB mail (SES's limit) of 20-byte lines; the parser keeps ~70 bytes per line in flight
MAX_PARTS = 2_000  # MIME parts (each a parsed object); a digest of a few hundred messages stays well below
MAX_HEADER_FIELDS = 1_000  # per part; the rest of a header bomb is ignored
MAX_PARSE_DEPTH = 50  # the stdlib parser recurses per level: deeper multiparts are read as the text they are
MAX_STRUCTURE_DEPTH = 20  # alternatives and related parts are understood this deep; deeper parts are read flat

# Fields, each cut or refused before it is stored.
MAX_ADDRESS_OCTETS = 254  # RFC 5321 4.5.3.1.3: a path is 256 octets with its angle brackets
MAX_HEADER_ADDRESSES = 200  # a header naming more is junk; the rest is ignored
MAX_CCS = 48  # a ticket's CCs: a help desk answers people, not a mailing list (the limit help desks keep)
MAX_DISPLAY_NAME_CHARS = 200
MAX_SUBJECT_CHARS = 500
MAX_MESSAGE_ID_CHARS = 250  # inside the angle brackets
MAX_REFERENCES = 100  # the newest of a References header; threading looks at fewer (threading.py)
MAX_CONTENT_ID_CHARS = 250  # a longer Content-ID is dropped: it could not match the HTML's cid: reference anyway
MAX_FILENAME_BYTES = 255  # of UTF-8: what file systems keep (ext4, APFS, NTFS in characters)
MAX_CONTENT_TYPE_CHARS = 255  # RFC 6838 4.2: type and subtype names of up to 127 characters each
MAX_CHARSET_CHARS = 40  # RFC 2978 2.3: charset names of up to 40 characters
MAX_FLAG_CHARS = 100
MAX_FLAGS = 20  # on one ticket
MAX_EXPLANATION_CHARS = 2_000
MAX_TOKEN_CHARS = 64  # a verification token we issued is 40 characters at most (markers.py)
MAX_REPORTS = 50  # delivery reports kept on one notification record
MAX_REPORT_FIELD_CHARS = 500  # each field of a delivery report (diagnostic code, reporting MTA, ...)
MAX_HTML_TO_TEXT_CHARS = 2_000_000  # of an HTML-only mail, this much becomes the text (the comment keeps less)

CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}")
# What neither a DynamoDB string, an SQS message nor a mail header should carry: C0 controls other than tab, line
# feed and carriage return, DEL, lone surrogates, and the two noncharacters SQS refuses (U+FFFE, U+FFFF).
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_SPACE = re.compile(r"\s+")


def safe_text(text: str) -> str:
    """Text a store, a queue and a mail body accept: unsafe characters become U+FFFD (nothing disappears silently)."""
    return _UNSAFE.sub("\ufffd", text)


def one_line(text: str, max_chars: int) -> str:
    """A header-like value (a name, a subject): safe, whitespace (CR and LF included) collapsed to single spaces,
    cut to `max_chars`. Collapsing first and cutting after keeps it linear and the cut exact."""
    return _SPACE.sub(" ", safe_text(text)).strip()[:max_chars].rstrip()


def address_fits(address: str) -> bool:
    return len(address.encode("utf-8", "surrogatepass")) <= MAX_ADDRESS_OCTETS


def _utf8_prefix(text: str, max_bytes: int) -> str:
    return text.encode("utf-8", "surrogatepass")[:max_bytes].decode("utf-8", "ignore")


def filename(name: str) -> str:
    """A file name cut to MAX_FILENAME_BYTES of UTF-8, keeping a short extension so the file still opens with the
    right program."""
    name = one_line(name, len(name))
    if len(name.encode("utf-8", "surrogatepass")) <= MAX_FILENAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if dot and stem and 0 < len(extension) <= 16:
        return _utf8_prefix(stem, MAX_FILENAME_BYTES - len(extension.encode()) - 1) + "." + extension
    return _utf8_prefix(name, MAX_FILENAME_BYTES)


def content_type(value: str) -> str:
    """`type/subtype`, lower-cased; anything else (too long, not a media type) is application/octet-stream."""
    value = value.strip().lower()
    return value if len(value) <= MAX_CONTENT_TYPE_CHARS and CONTENT_TYPE.fullmatch(value) else \
        "application/octet-stream"


def content_id(value: str | None) -> str | None:
    if not value or len(value) > 4 * MAX_CONTENT_ID_CHARS:  # folding and brackets do not make it 4 times longer
        return None
    value = one_line(value, len(value)).strip("<> ")
    return value if 0 < len(value) <= MAX_CONTENT_ID_CHARS and value.isascii() else None  # a msg-id: ASCII


def flag(text: str) -> str:
    return one_line(text, MAX_FLAG_CHARS)
