"""Loops and noise: auto-generated mail (never answered), our own mail coming back, mail from our own support
addresses, and one sender flooding one account (counted in DynamoDB, shared by every invocation)."""

from __future__ import annotations

import re
from datetime import datetime

from relaydesk import markers
from relaydesk.inbound.limits import flag
from relaydesk.inbound.parse import ParsedMail
from relaydesk.inbound.ports import Counters

EMAIL_ID_HEADER = "X-Relaydesk-Email-Id"
ACCOUNT_ID_HEADER = "X-Relaydesk-From-Account-Id"
BULK_PRECEDENCE = {"bulk", "junk", "list"}  # RFC 3834 5 and common practice
DAEMON_LOCAL_PARTS = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|maildaemon)$", re.IGNORECASE)
WINDOW_SECONDS = 3600  # the flood threshold is per hour


def auto_generated_reason(mail: ParsedMail, sender: str | None) -> str | None:
    """Why this mail must never be answered (RFC 3834), or None for mail a person wrote."""
    auto_submitted = (mail.header("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        return flag(f"auto_submitted:{auto_submitted.split(';')[0].strip()}")
    if mail.header("X-Auto-Response-Suppress") is not None:
        return "x_auto_response_suppress"
    precedence = (mail.header("Precedence") or "").strip().lower()
    if precedence in BULK_PRECEDENCE:
        return f"precedence:{precedence}"
    if mail.header("X-Autoreply") is not None or mail.header("X-Autorespond") is not None:
        return "x_autoreply"
    if mail.header("List-Id") is not None or mail.header("List-Unsubscribe") is not None:
        return "mailing_list"
    if sender and DAEMON_LOCAL_PARTS.match(sender.partition("@")[0]):
        return "mailer_daemon"
    return None


def is_our_own_mail(mail: ParsedMail, our_domains: set[str], account_id: str) -> bool:
    """One of this account's notifications came back (our Email-Id header, or our Message-ID as its own). Another
    Relaydesk account's notification forwarded here is someone else's mail, not a loop."""
    sender_account = (mail.header(ACCOUNT_ID_HEADER) or "").strip()
    if (mail.header(EMAIL_ID_HEADER) or "").strip() and sender_account in ("", account_id):
        return True
    message_id = mail.message_id
    return bool(message_id and markers.notification_id_from_message_id(message_id, our_domains))


def flood_key(account_id: str, sender: str, at: datetime) -> str:
    return f"inbound-sender#{account_id}#{sender.lower()}#{at.strftime('%Y%m%d%H')}"


def count_sender(counters: Counters, account_id: str, sender: str, at: datetime, ses_message_id: str) -> int:
    """This sender's messages to this account in the current hour, this one included. Counted once per SES message:
    a retry (or a race) on the same message gets the count it got the first time, so it reaches the same decision."""
    window_end = int(at.timestamp()) // WINDOW_SECONDS * WINDOW_SECONDS + WINDOW_SECONDS
    return counters.count_once(flood_key(account_id, sender, at), ses_message_id,
                               expires_at=window_end + WINDOW_SECONDS)
