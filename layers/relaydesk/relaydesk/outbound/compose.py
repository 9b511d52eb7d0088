"""Compose one notification into an RFC 5322 message with the header contract, thread markers and attachments.

The bytes are written by `outbound.mime` for the one shape we send (text + HTML, quoted-printable; attachments in
base64 under multipart/mixed), not by `EmailMessage`: the stdlib's header registry and generator cost about 2 ms
per ~5 KB message and 6 ms per ~200 KB one, most of the relay's CPU (docs/BENCHMARKS.md). Header injection stays
impossible by construction: values are flattened to one line here (`_one_line`), addresses must be one plain
addr-spec (`mailbox`), and `mime` writes every header word as printable ASCII or as an encoded word.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from relaydesk import markers
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import InvalidAddressError
from relaydesk.notification import AttachmentRef, Notification
from relaydesk.outbound import mime

if TYPE_CHECKING:
    from email.headerregistry import Address
    from email.message import EmailMessage

MAILER = "Relaydesk Mailer"
# Characters that end or fold a header line (RFC 5322 2.2) or that no header should carry.
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\t": " ", "\x00": " ", "\x0b": " ", "\x0c": " ",
                              "\x85": " ", "\u2028": " ", "\u2029": " "})
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"  # RFC 5322 3.2.3
_PLAIN_ADDRESS = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@{_ATEXT}(?:\.{_ATEXT})*")
ADDRESS_LIMIT = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets with its angle brackets
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`{|}~-]+"  # RFC 2045 5.1
_CONTENT_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}")


@dataclass(frozen=True)
class Sender:
    """Who the mail is from: the support address (connector) or the system address (default outbound)."""

    address: str
    display_name: str
    reply_to: str | None = None
    message_id_domain: str = ""  # the support address's domain: inbound recorded the Message-ID on it


@dataclass(frozen=True)
class Composed:
    data: bytes  # the message as it goes on the wire (CRLF), before DKIM
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str
    has_attachments: bool = False  # real attachments (not links): a 552 is retried with links instead

    def to_bytes(self) -> bytes:
        return self.data

    @property
    def message(self) -> EmailMessage:
        """The composed bytes parsed back, for tools and tests; the relay sends `to_bytes()` itself."""
        from email import message_from_bytes
        from email.policy import SMTP

        return message_from_bytes(self.data, policy=SMTP)  # type: ignore[return-value]


def _one_line(value: str) -> str:
    return " ".join(str(value).translate(_LINE_BREAKS).split())


def _addr_spec(addr_spec: str) -> str:
    """The checked addr-spec: one plain address, else InvalidAddressError (the rules of `mailbox`)."""
    spec = (addr_spec or "").strip()
    if not spec or spec != spec.translate(_LINE_BREAKS) or any(ch in spec for ch in " <>,;\"()") \
            or len(spec.encode()) > ADDRESS_LIMIT:
        raise InvalidAddressError("not a single plain email address")
    if "=?" not in spec and _PLAIN_ADDRESS.fullmatch(spec):
        return spec  # the common case, an ASCII dot-atom@dot-atom: what the stdlib parser accepts as it is
    return mailbox(spec).addr_spec  # the rest (a domain literal, a non-ASCII domain) as the stdlib decides


def mailbox(addr_spec: str, display_name: str = "") -> Address:
    """One address; anything but a single plain addr-spec is refused, a display name is flattened to one line."""
    from email.errors import HeaderParseError
    from email.headerregistry import Address

    spec = (addr_spec or "").strip()
    if not spec or spec != spec.translate(_LINE_BREAKS) or any(ch in spec for ch in " <>,;\"()") \
            or len(spec.encode()) > ADDRESS_LIMIT:
        raise InvalidAddressError("not a single plain email address")
    try:
        address = Address(display_name=_one_line(display_name), addr_spec=spec)
    except (ValueError, IndexError, HeaderParseError) as error:
        raise InvalidAddressError("not a single plain email address") from error
    if not address.username or not address.domain:
        raise InvalidAddressError("not a single plain email address")
    if not address.domain.isascii():
        # The IDNA A-label (xn--...) is what RFC 5890 puts in a header and an envelope: an RFC 2047 word is not
        # allowed in an address (RFC 2047 5), and a UTF-8 envelope domain needs SMTPUTF8 from the server.
        try:
            ascii_domain = address.domain.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise InvalidAddressError("not a valid internationalised domain name") from error
        address = Address(display_name=address.display_name, username=address.username, domain=ascii_domain)
    return address


def display_name(account: Account, address: SupportAddress) -> str:
    """The address's own name, else its brand's, else the account's."""
    if address.name:
        return address.name
    brand = next((b for b in account.brands if b.brand_id == address.brand_id), None)
    return brand.name if brand else account.display_name


def sender_name(account: Account, address: SupportAddress | None, notification: Notification) -> str:
    """The From display name: the support address's name, or for an agent's reply the account's agent_from_name
    (`Bob Agent (Acme Support)`)."""
    name = display_name(account, address) if address is not None else account.display_name
    return account.settings.from_name(notification.agent_name, name) if notification.agent_name else name


def subject_with_token(notification: Notification) -> str:
    subject = _one_line(notification.subject)
    if notification.ticket_id and not markers.ticket_id_from_subject(subject):
        subject = f"{subject} {markers.subject_token(notification.ticket_id)}".strip()
    return subject


def _message_ids(values: Sequence[str]) -> list[str]:
    ids = []
    for value in values:
        for token in _one_line(value).split():
            token = token if token.startswith("<") else f"<{token.strip('<>')}>"
            if token not in ids and "@" in token:
                ids.append(token)
    return ids


def _text_body(notification: Notification, links: Sequence[tuple[AttachmentRef, str]]) -> str:
    parts = [notification.text_body.rstrip("\n")]
    if links:
        parts.append("Attachments:\n" + "\n".join(f"- {_one_line(ref.filename)}: {url}" for ref, url in links))
    if notification.ticket_id:
        parts.append(markers.body_marker(notification.ticket_id))
    if notification.verification_token and markers.verification_marker(notification.verification_token) \
            not in notification.text_body:
        parts.append(markers.verification_marker(notification.verification_token))
    return "\n\n".join(parts) + "\n"


def _html_body(notification: Notification, links: Sequence[tuple[AttachmentRef, str]]) -> str:
    body = notification.html_body or ""
    if links:
        items = "".join(f'<li><a href="{html.escape(url)}">{html.escape(ref.filename)}</a></li>' for ref, url in links)
        body += f"<p>Attachments:</p><ul>{items}</ul>"
    if notification.ticket_id:
        # Hidden from the reader, kept by most clients when quoting: threads a reply whose Message-ID was rewritten.
        body += (f'<div style="display:none;font-size:0;max-height:0;overflow:hidden">'
                 f"{markers.body_marker(notification.ticket_id)}</div>")
    return body


def _content_type(value: str | None) -> str:
    """A single type/subtype for an attachment; anything else (parameters, a multipart or message type, which
    may not be base64 per RFC 2046, or junk from the sender's mail) is sent as application/octet-stream."""
    kind = (value or "").strip().lower()
    if not _CONTENT_TYPE.fullmatch(kind) or kind.startswith(("multipart/", "message/")):
        return "application/octet-stream"
    return kind


def _header(notification: Notification, sender: Sender, recipients: Sequence[str], cc: Sequence[str],
            message_id: str) -> str:
    fields = [mime.addresses("From", [(_one_line(sender.display_name), _addr_spec(sender.address))]),
              mime.addresses("To", [("", r) for r in recipients])]
    if cc:
        fields.append(mime.addresses("Cc", [("", r) for r in cc]))
    if sender.reply_to:  # explicit even when it equals From: some providers rewrite From, never Reply-To
        fields.append(mime.addresses("Reply-To", [(_one_line(sender.display_name), _addr_spec(sender.reply_to))]))
    fields += [mime.unstructured("Subject", subject_with_token(notification)),
               f"Date: {mime.date(notification.created_at)}{mime.CRLF}",
               mime.unstructured("Message-ID", message_id)]
    thread = [*notification.references, *([notification.in_reply_to] if notification.in_reply_to else [])]
    references = _message_ids(thread)
    in_reply_to = _message_ids([notification.in_reply_to]) if notification.in_reply_to else []
    if in_reply_to:
        fields.append(mime.unstructured("In-Reply-To", in_reply_to[0]))
    if references:
        fields.append(mime.unstructured("References", " ".join(references)))
    # The header contract of ARCHITECTURE.md: unchanged from here to the wire.
    fields += [f"Auto-Submitted: auto-generated{mime.CRLF}", f"X-Auto-Response-Suppress: All{mime.CRLF}",
               f"X-Mailer: {MAILER}{mime.CRLF}",
               mime.unstructured("X-Relaydesk-From-Account-Id", notification.account_id),
               mime.unstructured("X-Relaydesk-Email-Id", notification.notification_id)]
    if notification.verification_token:
        fields.append(mime.unstructured(markers.VERIFICATION_HEADER, notification.verification_token))
    return "".join(fields)


def compose(notification: Notification, sender: Sender, *, inline_attachments: bool,
            fetch: Callable[[str], bytes], link: Callable[[AttachmentRef], str]) -> Composed:
    """The message for `notification`: attachments inline when `inline_attachments`, else links in the body.

    `fetch(s3_key)` reads an attachment's bytes, `link(ref)` gives a download URL for it.
    """
    recipients = tuple(_addr_spec(r) for r in notification.recipients)
    cc = tuple(_addr_spec(r) for r in notification.cc)
    domain = sender.message_id_domain or sender.address.rpartition("@")[2]
    message_id = markers.message_id_for(notification.notification_id, domain)
    links = [] if inline_attachments else [(ref, ref.url or link(ref)) for ref in notification.attachments]
    header = _header(notification, sender, recipients, cc, message_id)

    body = mime.text(_text_body(notification, links), "plain")
    if notification.html_body:
        body = mime.multipart("alternative", [body, mime.text(_html_body(notification, links), "html")])
    attached = [mime.attachment(fetch(ref.s3_key), _content_type(ref.content_type), _one_line(ref.filename))
                for ref in notification.attachments] if inline_attachments else []
    if attached:
        body = mime.multipart("mixed", [body, *attached])
    envelope = list(dict.fromkeys([*recipients, *cc]))
    return Composed(data=mime.message(header, body), envelope_from=_addr_spec(sender.address),
                    recipients=tuple(envelope), message_id=message_id, has_attachments=bool(attached))
