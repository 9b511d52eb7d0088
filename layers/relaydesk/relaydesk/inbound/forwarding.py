"""Forwarding: recognise server-level auto-forwards by their headers, count the hops, and spot manual forwards
made from a mail client (which Relaydesk does not accept: forwarding must be set up on the server)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from relaydesk.inbound.parse import ParsedMail, parse_addresses

# Subject prefixes mail clients put on a forward: English, German (WG), French (TR), Spanish/Portuguese (RV, ENC).
FORWARD_SUBJECT = re.compile(r"^\s*(?:(?:re|aw|sv)\s*:\s*)*(?:fwd?|fw|wg|tr|rv|enc|doorst)\s*:", re.IGNORECASE)
# The block a client writes above a forwarded message. Outlook's "____ From:" and "-----Original Message-----"
# are left out on purpose: replies carry them too (Outlook's forward is recognised by its "FW:" subject instead).
FORWARD_BODY = re.compile(
    r"^-{2,}\s*(?:Forwarded message|Forwarded Message|Weitergeleitete Nachricht|Message transf\u00e9r\u00e9"
    r"|Mensaje reenviado)\s*-{2,}"
    r"|^Begin forwarded message:"
    r"|^Anfang der weitergeleiteten Nachricht:",
    re.IGNORECASE | re.MULTILINE,
)
MANUAL_FORWARD_EXPLANATION = (
    "This mail was forwarded by hand from a mail client, so its real sender is unknown. Relaydesk only accepts mail "
    "that the support mailbox forwards automatically at the server level (a Microsoft 365/Exchange mail flow rule or "
    "mailbox forwarding, Google Workspace routing or forwarding, a Postfix alias or sieve redirect). Set up "
    "server-level forwarding to the account's system address, and ask the customer to write to the support "
    "address directly."
)


@dataclass
class Forwarding:
    hops: int = 0  # distinct mailboxes the mail was auto-forwarded from
    kinds: list[str] = field(default_factory=list)  # exchange, google, delivered-to, resent
    forwarders: list[str] = field(default_factory=list)
    manual: bool = False

    @property
    def multiple(self) -> bool:
        return self.hops > 1


def analyse(mail: ParsedMail, own_final: set[str]) -> Forwarding:
    """`own_final`: the system addresses the chain ends at; they are the destination, not a hop. The sender's own
    addresses are not hops either: their mailbox's rule wrote the mail (an out-of-office reply), it forwarded
    nothing."""
    result = Forwarding()
    forwarders: list[str] = []
    not_hops = set(own_final) | set(mail.addresses("From", "Sender", "Reply-To"))

    def add(kind: str, addresses: list[str]) -> None:
        if kind not in result.kinds:
            result.kinds.append(kind)
        forwarders.extend(a for a in addresses if a not in not_hops)

    # Microsoft 365 / Exchange: each forwarding mailbox or rule leaves its address in these loop-detection headers.
    exchange = [*mail.raw_header_all("X-MS-Exchange-ForwardingLoop"),
                *mail.raw_header_all("X-MS-Exchange-Inbox-Rules-Loop")]
    auto = (mail.header("X-MS-Exchange-Organization-AutoForwarded") or "").strip().lower() == "true"
    # A mail flow (transport) rule that redirects leaves only a loop counter, no address.
    auto = auto or mail.header("X-MS-Exchange-Transport-Rules-Loop") is not None \
        or mail.header("X-MS-Exchange-Organization-Transport-Rules-Loop") is not None
    if exchange or auto:
        add("exchange", parse_addresses([v.split(";")[0] for v in exchange]))
    # Google Workspace / Gmail: X-Forwarded-For "<original recipient> <forward target>", X-Forwarded-To the target.
    google = mail.header_all("X-Forwarded-For")
    if google or mail.header_all("X-Forwarded-To"):
        add("google", [v.split()[0].lower().strip("<>") for v in google if v.split()])
    # Postfix, sieve, procmail: every local delivery on the way leaves a Delivered-To (or X-Original-To).
    delivered = mail.addresses("Delivered-To", "X-Original-To")
    if [a for a in delivered if a not in not_hops]:
        add("delivered-to", delivered)
    # Resent-* (RFC 5322 3.6.6): a redirect/bounce re-sends with a block naming who re-sent it.
    if mail.header_all("Resent-From") or mail.header_all("Resent-Sender"):
        add("resent", mail.addresses("Resent-From", "Resent-Sender"))
    # Sender Rewriting Scheme (postsrsd, Exchange Online, Gmail's "+caf_="): the envelope sender was rewritten by
    # a forwarding server; SRS1 means a forward of a forward.
    return_path = (mail.header("Return-Path") or "").lower()
    srs_hops = 2 if "srs1=" in return_path else 1 if ("srs0=" in return_path or "+caf_=" in return_path) else 0
    if srs_hops:
        add("srs", [])
    result.forwarders = list(dict.fromkeys(forwarders))
    result.hops = max(len(result.forwarders), srs_hops, 1 if result.kinds else 0)
    result.manual = not result.kinds and looks_manually_forwarded(mail)
    return result


def looks_manually_forwarded(mail: ParsedMail) -> bool:
    if FORWARD_SUBJECT.match(mail.subject):
        return True
    head = mail.text[:20000]
    return bool(FORWARD_BODY.search(head))
