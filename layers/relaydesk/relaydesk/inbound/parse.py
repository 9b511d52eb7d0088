"""Raw mail bytes -> ParsedMail: headers decoded, a text body, attachments and report parts; best effort, never raises.

Memory: the mail is fed to the parser in chunks, straight from the S3 stream (`BlobStore.chunks`), so the raw bytes
are never held whole; attachment payloads stay encoded inside the parsed tree and are decoded one at a time when
stored (`Attachment.payload()`). What the parser may read is bounded (`parse_guard`); every field taken from the
mail is bounded here (`limits`): addresses are parsed from the header as written, before encoded words are decoded.
"""

from __future__ import annotations

import binascii
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.errors import HeaderParseError, MessageError
from email.feedparser import BytesFeedParser
from email.message import Message
from email.policy import compat32
from email.utils import collapse_rfc2231_value

from relaydesk.inbound import limits
from relaydesk.inbound.addresses import Mailbox, parse_mailbox_values
from relaydesk.inbound.charset import decode_bytes, unescape_surrogates
from relaydesk.inbound.encoded_words import decode_words
from relaydesk.inbound.html_text import html_to_text
from relaydesk.inbound.parse_guard import FeedGuard

DECODE_CHUNK = 1 << 20  # characters of base64 decoded at a time (a multiple of 4)
_NOT_BASE64 = bytes(c for c in range(256) if chr(c) not in
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
FEED_CHUNK = 1 << 16  # bytes per parser feed: bounded extra memory while parsing
FALLBACK_TEXT_BYTES = 1 << 20  # of a mail the parser gave up on, this much of its start becomes the text
_MSGID = re.compile(rf"<[^<>\s\x00-\x1f\x7f]{{1,{limits.MAX_MESSAGE_ID_CHARS}}}>")
_FOLDING = re.compile(r"\r?\n[ \t]+")
# What the stdlib raises on malformed input it does not just record as a defect.
PARSE_ERRORS = (MessageError, HeaderParseError, ValueError, LookupError, TypeError, AttributeError, IndexError,
                UnicodeError, AssertionError)


@dataclass
class Attachment:
    filename: str
    content_type: str
    inline: bool = False
    content_id: str | None = None
    payload: Callable[[], bytes] = field(default=lambda: b"", repr=False)  # decoded on demand, one at a time


@dataclass
class ReportPart:
    """Parts of a multipart/report: the machine-readable status and the returned message or its headers."""

    delivery_status: str = ""
    returned_headers: str = ""
    human_text: str = ""


@dataclass
class ParsedMail:
    headers: list[tuple[str, str]] = field(default_factory=list)  # decoded, in order
    content_type: str = "text/plain"
    text: str = ""
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    report: ReportPart | None = None
    report_type: str | None = None
    size: int = 0
    defects: list[str] = field(default_factory=list)
    raw_headers: list[tuple[str, str]] = field(default_factory=list)  # unfolded, encoded words left as written
    _mailboxes: dict[str, list[Mailbox]] = field(default_factory=dict, repr=False, compare=False)  # parsed once
    omitted: list[str] = field(default_factory=list)  # what the bounds left out (the raw mail in S3 has it)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for n, v in self.headers if n.lower() == wanted), None)

    def header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for n, v in self.headers if n.lower() == wanted]

    def raw_header_all(self, name: str) -> list[str]:
        wanted = name.lower()
        return [v for n, v in self.raw_headers if n.lower() == wanted]

    def mailboxes(self, *names: str) -> list[Mailbox]:
        """The mailboxes of the named headers, in order, parsed from the headers as written (encoded words are
        decoded in display names only, after the list was split), at most MAX_HEADER_ADDRESSES per header."""
        found: list[Mailbox] = []
        for name in names:
            key = name.lower()
            if key not in self._mailboxes:
                self._mailboxes[key] = parse_mailbox_values(self.raw_header_all(name))
            found.extend(self._mailboxes[key])
        return found

    def addresses(self, *names: str) -> list[str]:
        """Lower-cased addr-specs from the named headers, in order, without duplicates."""
        return list(dict.fromkeys(m.address for m in self.mailboxes(*names)))

    @property
    def subject(self) -> str:
        return limits.one_line(self.header("Subject") or "", limits.MAX_SUBJECT_CHARS)

    @property
    def message_id(self) -> str | None:
        found = _MSGID.search(self.header("Message-ID") or "")
        return found.group() if found else None

    @property
    def in_reply_to(self) -> list[str]:
        return [m.group() for m, _ in zip(_MSGID.finditer(" ".join(self.header_all("In-Reply-To"))),
                                          range(limits.MAX_REFERENCES), strict=False)]

    @property
    def references(self) -> list[str]:
        """The newest MAX_REFERENCES ids (the last ones) of a References header of any length."""
        newest = deque((m.group() for m in _MSGID.finditer(" ".join(self.header_all("References")))),
                       maxlen=limits.MAX_REFERENCES)
        return list(newest)


def unfold(raw: str) -> str:
    """A header value as one line, raw 8-bit bytes (SMTPUTF8) made readable; encoded words left as written."""
    return _FOLDING.sub(" ", unescape_surrogates(str(raw))).strip()


def decode_header_value(raw: str) -> str:
    """RFC 2047 encoded words and raw 8-bit bytes decoded; folding removed. Linear in the value's length."""
    return decode_words(unfold(raw)).strip()


def parse_addresses(values: list[str]) -> list[str]:
    """The addr-specs of header values as written (not decoded), in order, without duplicates."""
    return list(dict.fromkeys(m.address for m in parse_mailbox_values([unfold(v) for v in values])))


def parse(raw: bytes | Iterable[bytes]) -> ParsedMail:
    """The mail as bytes, or as chunks of bytes in order (a stream, read once). Malformed mail never raises: whatever
    cannot be read becomes a defect and the rest is kept. An error of the stream itself (S3) is not the mail's: it
    propagates, so the invocation fails and is retried."""
    guard = FeedGuard()
    message, size, head, error = _feed(_chunked(raw) if isinstance(raw, bytes | bytearray | memoryview) else raw,
                                       guard)
    mail = ParsedMail(size=size, omitted=guard.omitted)
    if message is None:
        mail.defects.append(f"unparseable: {type(error).__name__}")
        mail.text = limits.safe_text(decode_bytes(bytes(head)))
        mail.omitted.append("the structure: the parser gave up, the start of the mail is the text")
        return mail
    try:
        mail.raw_headers = [(str(name), unfold(value)) for name, value in message.raw_items()]
        mail.headers = [(name, decode_words(value).strip()) for name, value in mail.raw_headers]
    except PARSE_ERRORS as error:
        mail.defects.append(f"headers: {type(error).__name__}")
    mail.content_type = _content_type(message)
    mail.defects.extend(type(d).__name__ for d in getattr(message, "defects", []))
    texts: list[str] = []
    htmls: list[str] = []
    try:
        _walk(message, mail, texts, htmls, depth=0)
    except (*PARSE_ERRORS, RecursionError) as error:  # keep the parts read so far
        mail.defects.append(f"structure: {type(error).__name__}")
    mail.text = limits.safe_text("\n\n".join(t for t in texts if t.strip()).strip())
    mail.html = limits.safe_text("\n".join(htmls)) if htmls else None
    if not mail.text and mail.html:
        if len(mail.html) > limits.MAX_HTML_TO_TEXT_CHARS:
            mail.omitted.append(f"the text of the HTML after its first {limits.MAX_HTML_TO_TEXT_CHARS:,} characters")
        mail.text = html_to_text(mail.html[:limits.MAX_HTML_TO_TEXT_CHARS])
    return mail


def _chunked(raw: bytes | bytearray | memoryview) -> Iterable[bytes]:
    view = memoryview(raw)
    return (view[start:start + FEED_CHUNK].tobytes() for start in range(0, len(view), FEED_CHUNK))


def _feed(chunks: Iterable[bytes], guard: FeedGuard) -> tuple[Message | None, int, bytearray, Exception | None]:
    """(the message or None, size in bytes, the start of the mail, the parser's error). Only the parser's errors are
    caught: the loop reading `chunks` is outside the guard. The stream is read to its end even after the parser gave
    up or the guard stopped feeding it, so the size is the mail's."""
    parser = BytesFeedParser(_factory=guard.factory, policy=compat32)
    guard.reset_parts()
    size, head, error = 0, bytearray(), None
    for chunk in chunks:
        size += len(chunk)
        if len(head) < FALLBACK_TEXT_BYTES:
            head += chunk[:FALLBACK_TEXT_BYTES - len(head)]
        if error is None and not guard.stopped:
            try:
                parser.feed(guard.admit(chunk))
            except (*PARSE_ERRORS, RecursionError) as failed:
                error = failed
            guard.check_parts()
    if error is None:
        try:
            parser.feed(guard.finish())
            return parser.close(), size, head, None
        except (*PARSE_ERRORS, RecursionError) as failed:
            error = failed
    return None, size, head, error


def _content_type(part: Message) -> str:
    try:
        return limits.content_type(part.get_content_type())
    except PARSE_ERRORS:
        return "application/octet-stream"


def _param(part: Message, name: str, header: str = "content-type") -> str | None:
    try:
        value = part.get_param(name, header=header)
    except PARSE_ERRORS:
        return None
    if value is None:
        return None
    try:
        return decode_header_value(collapse_rfc2231_value(value))
    except PARSE_ERRORS:
        return None


def _charset(part: Message) -> str | None:
    charset = _param(part, "charset")
    return charset[:limits.MAX_CHARSET_CHARS] if charset else None


def _disposition(part: Message) -> str:
    try:
        return (part.get_content_disposition() or "").lower()
    except PARSE_ERRORS:
        return ""


def _filename(part: Message) -> str | None:
    name = _param(part, "filename", "content-disposition") or _param(part, "name")
    return limits.filename(name) if name else None


def _base64_chunked(text: str) -> bytes:
    """Base64 decoded a slice at a time: the stdlib splits the whole payload into lines first (about 5x its size)."""
    pieces: list[bytes] = []
    carry = b""
    for start in range(0, len(text), DECODE_CHUNK):
        clean = carry + text[start:start + DECODE_CHUNK].encode("ascii", "ignore").translate(None, _NOT_BASE64)
        usable = len(clean) - len(clean) % 4
        carry = clean[usable:]
        try:
            pieces.append(binascii.a2b_base64(clean[:usable]))
        except binascii.Error:
            return b""
    if carry:
        try:
            pieces.append(binascii.a2b_base64(carry + b"=" * (-len(carry) % 4)))
        except binascii.Error:
            pass
    return b"".join(pieces)


def _decoded_payload(part: Message) -> bytes:
    raw = part.get_payload()
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if encoding == "base64" and isinstance(raw, str) and len(raw) > DECODE_CHUNK:
        decoded = _base64_chunked(raw)
        if decoded:
            return decoded
    try:
        payload = part.get_payload(decode=True)
    except PARSE_ERRORS:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else b""


def _text_of(part: Message) -> str:
    return decode_bytes(_decoded_payload(part), _charset(part))


def _serialized(part: Message) -> bytes:
    """An attached message as bytes (message/rfc822 keeps its inner message as a parsed object)."""
    inner = part.get_payload()
    target = inner[0] if isinstance(inner, list) and inner else part
    try:
        return target.as_bytes(policy=compat32) if isinstance(target, Message) else b""
    except (*PARSE_ERRORS, RecursionError):
        return str(target).encode("utf-8", "surrogateescape")


def _walk(part: Message, mail: ParsedMail, texts: list[str], htmls: list[str], depth: int) -> None:
    if depth > limits.MAX_STRUCTURE_DEPTH:
        _walk_flat(part, mail, texts, htmls)
        return
    ctype = _content_type(part)
    if ctype == "multipart/report":
        mail.report_type = limits.one_line(_param(part, "report-type") or "", 64).lower() or None
        _walk_report(part, mail, texts, htmls, depth)
        return
    if ctype == "message/rfc822":  # kept whole as an attachment; the forwarded mail is not our comment
        _add_attachment(mail, part, _filename(part) or "forwarded-message.eml", ctype, payload=_serialized)
        return
    if ctype.startswith("multipart/") and not part.is_multipart():  # its boundary never appears: it is text
        texts.append(_text_of(part))
        return
    if part.is_multipart():
        children = [c for c in (part.get_payload() or []) if isinstance(c, Message)]
        if ctype == "multipart/alternative":
            _walk_alternative(children, mail, texts, htmls, depth)
        else:
            for child in children:
                _walk(child, mail, texts, htmls, depth + 1)
        return
    _leaf(part, ctype, mail, texts, htmls)


def _leaf(part: Message, ctype: str, mail: ParsedMail, texts: list[str], htmls: list[str]) -> None:
    """A part that holds content: text for the comment, a file, or both. Text the sender's client shows inline
    reaches the comment even when it also has a file name (Apple Mail writes one), and the file is kept too; a named
    text part without a disposition is a file, as before."""
    disposition = _disposition(part)
    filename = _filename(part)
    if ctype in ("text/plain", "text/html") and (disposition == "inline" or (not disposition and not filename)):
        (texts if ctype == "text/plain" else htmls).append(_text_of(part))
        if not filename:
            return
    if ctype == "application/ms-tnef" and not filename:
        filename = "winmail.dat"
    _add_attachment(mail, part, filename or _default_name(ctype, len(mail.attachments) + 1), ctype)


def _walk_flat(top: Message, mail: ParsedMail, texts: list[str], htmls: list[str]) -> None:
    """Parts nested deeper than MAX_STRUCTURE_DEPTH, in order, without their structure (no recursion): every text
    reaches the comment, every other part is kept as a file."""
    mail.omitted.append(f"the structure of parts nested deeper than {limits.MAX_STRUCTURE_DEPTH} levels "
                        "(their text and files are kept, in order)")
    stack = [top]
    while stack:
        part = stack.pop()
        ctype = _content_type(part)
        if ctype == "message/rfc822":
            _add_attachment(mail, part, _filename(part) or "forwarded-message.eml", ctype, payload=_serialized)
        elif part.is_multipart():
            stack.extend(reversed([c for c in (part.get_payload() or []) if isinstance(c, Message)]))
        else:
            _leaf(part, ctype, mail, texts, htmls)


def _walk_alternative(children: list[Message], mail: ParsedMail, texts: list[str], htmls: list[str],
                      depth: int) -> None:
    """text/plain for the text, the first HTML rendering (or the related part around it) for the HTML; anything
    else offered as an alternative (an Outlook invitation's text/calendar) is kept as an attachment."""
    plain = [c for c in children if _content_type(c) == "text/plain"]
    if plain:
        texts.append(_text_of(plain[0]))
    html_seen = False
    for child in children:
        ctype = _content_type(child)
        if ctype == "text/plain":
            continue
        if ctype == "text/html" or child.is_multipart():
            if not html_seen:
                html_seen = True
                if ctype == "text/html":
                    htmls.append(_text_of(child))
                else:
                    _walk(child, mail, [] if plain else texts, htmls, depth + 1)
            continue
        _walk(child, mail, texts, htmls, depth + 1)


def _walk_report(part: Message, mail: ParsedMail, texts: list[str], htmls: list[str], depth: int) -> None:
    report = mail.report or ReportPart()
    mail.report = report
    for child in [c for c in (part.get_payload() or []) if isinstance(c, Message)]:
        ctype = _content_type(child)
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            report.delivery_status += _status_text(child)
        elif ctype in ("text/rfc822-headers", "message/rfc822", "message/rfc822-headers", "message/global",
                       "message/global-headers"):
            report.returned_headers += decode_bytes(_serialized(child) if ctype.startswith("message/")
                                                    else _decoded_payload(child)) + "\n"
        else:
            before = len(texts)
            _walk(child, mail, texts, htmls, depth + 1)
            report.human_text += "\n".join(texts[before:])


def _status_text(part: Message) -> str:
    """message/delivery-status is parsed by the stdlib into header blocks; put them back as text."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = []
        for block in payload:
            if isinstance(block, Message):
                blocks.append("\n".join(f"{n}: {decode_header_value(v)}" for n, v in block.raw_items()))
        return "\n\n".join(blocks) + "\n"
    return decode_bytes(_decoded_payload(part))


def _default_name(ctype: str, index: int) -> str:
    extension = {"image/png": "png", "image/jpeg": "jpg", "image/gif": "gif", "application/pdf": "pdf",
                 "text/plain": "txt", "text/html": "html", "text/calendar": "ics"}.get(ctype, "bin")
    return f"attachment-{index}.{extension}"


def _add_attachment(mail: ParsedMail, part: Message, filename: str, ctype: str,
                    payload: Callable[[Message], bytes] = _decoded_payload) -> None:
    try:
        raw_cid = part.get("Content-ID")
        content_id = limits.content_id(decode_header_value(raw_cid)) if raw_cid else None
    except PARSE_ERRORS:
        content_id = None
    inline = _disposition(part) == "inline" or (content_id is not None and _disposition(part) != "attachment")
    mail.attachments.append(Attachment(filename=filename, content_type=ctype, inline=inline,
                                       content_id=content_id, payload=lambda: payload(part)))
