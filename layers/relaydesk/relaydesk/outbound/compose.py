"""Compose one notification into an RFC 5322 message with the header contract, thread markers and attachments.

The message is built with `EmailMessage` and `policy.SMTP` (CRLF line ends). Every header value passes through
`_one_line` first and addresses through `Address`, so CR/LF from a subject, a display name or an address can never
start a header of its own; the policy refuses a line break in a header as a second wall.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from relaydesk import markers
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.notification import AttachmentRef, Notification

MAILER = "Relaydesk Mailer"
# Characters that end or fold a header line (RFC 5322 2.2) or that no header should carry.
_LINE_BREAKS = str.maketrans({"\r": " ", "\n": " ", "\t": " ", "\x00": " ", "\x0b": " ", "\x0c": " ",
                              "\x85": " ", "\u2028": " ", "\u2029": " "})


class InvalidAddressError(ValueError):
    """An address that is not one plain addr-spec (a CR/LF, a second address, a display name)."""


@dataclass(frozen=True)
class Sender:
    """Who the mail is from: the support address (connector) or the system address (default outbound)."""

    address: str
    display_name: str
    reply_to: str | None = None
    message_id_domain: str = ""  # the support address's domain: inbound recorded the Message-ID on it


@dataclass(frozen=True)
class Composed:
    message: EmailMessage
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str

    def to_bytes(self) -> bytes:
        return self.message.as_bytes(policy=SMTP)


def _one_line(value: str) -> str:
    return " ".join(str(value).translate(_LINE_BREAKS).split())


def mailbox(addr_spec: str, display_name: str = "") -> Address:
    """One address; anything but a single plain addr-spec is refused, a display name is flattened to one line."""
    spec = (addr_spec or "").strip()
    if not spec or spec != spec.translate(_LINE_BREAKS) or any(ch in spec for ch in " <>,;\"()"):
        raise InvalidAddressError("not a single plain email address")
    try:
        address = Address(display_name=_one_line(display_name), addr_spec=spec)
    except (ValueError, IndexError) as error:
        raise InvalidAddressError("not a single plain email address") from error
    if not address.username or not address.domain:
        raise InvalidAddressError("not a single plain email address")
    return address


def display_name(account: Account, address: SupportAddress) -> str:
    """The address's own name, else its brand's, else the account's."""
    if address.name:
        return address.name
    brand = next((b for b in account.brands if b.brand_id == address.brand_id), None)
    return brand.name if brand else account.display_name


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


def compose(notification: Notification, sender: Sender, *, inline_attachments: bool,
            fetch: Callable[[str], bytes], link: Callable[[AttachmentRef], str]) -> Composed:
    """The message for `notification`: attachments inline when `inline_attachments`, else links in the body.

    `fetch(s3_key)` reads an attachment's bytes, `link(ref)` gives a download URL for it.
    """
    recipients = tuple(mailbox(r).addr_spec for r in notification.recipients)
    cc = tuple(mailbox(r).addr_spec for r in notification.cc)
    domain = sender.message_id_domain or sender.address.rpartition("@")[2]
    message_id = markers.message_id_for(notification.notification_id, domain)
    links = [] if inline_attachments else [(ref, ref.url or link(ref)) for ref in notification.attachments]

    message = EmailMessage(policy=SMTP)
    message["From"] = mailbox(sender.address, sender.display_name)
    message["To"] = [mailbox(r) for r in recipients]
    if cc:
        message["Cc"] = [mailbox(r) for r in cc]
    if sender.reply_to:  # explicit even when it equals From: some providers rewrite From, never Reply-To
        message["Reply-To"] = mailbox(sender.reply_to, sender.display_name)
    message["Subject"] = subject_with_token(notification)
    message["Date"] = format_datetime(notification.created_at)
    message["Message-ID"] = message_id
    thread = [*notification.references, *([notification.in_reply_to] if notification.in_reply_to else [])]
    references = _message_ids(thread)
    if notification.in_reply_to:
        message["In-Reply-To"] = _message_ids([notification.in_reply_to])[0]
    if references:
        message["References"] = " ".join(references)
    # The header contract of ARCHITECTURE.md: unchanged from here to the wire.
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailer"] = MAILER
    message["X-Relaydesk-From-Account-Id"] = _one_line(notification.account_id)
    message["X-Relaydesk-Email-Id"] = _one_line(notification.notification_id)
    if notification.verification_token:
        message[markers.VERIFICATION_HEADER] = _one_line(notification.verification_token)

    message.set_content(_text_body(notification, links), cte="quoted-printable")
    if notification.html_body:
        message.add_alternative(_html_body(notification, links), subtype="html", cte="quoted-printable")
    if inline_attachments:
        for ref in notification.attachments:
            maintype, _, subtype = (ref.content_type or "application/octet-stream").partition("/")
            message.add_attachment(fetch(ref.s3_key), maintype=maintype or "application",
                                   subtype=subtype or "octet-stream", filename=_one_line(ref.filename))
    envelope = list(dict.fromkeys([*recipients, *cc]))
    return Composed(message=message, envelope_from=sender.address, recipients=tuple(envelope), message_id=message_id)
