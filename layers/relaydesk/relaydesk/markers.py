"""Markers we put in mail and recognise when it comes back: thread tokens, our Message-IDs, verification tokens."""

from __future__ import annotations

import re

SUBJECT_TOKEN_PATTERN = re.compile(r"\[RD#([0-9A-Z]{6,32})\]")
BODY_MARKER_PATTERN = re.compile(r"\[relaydesk-thread:([0-9A-Z]{6,32})\]")


def subject_token(ticket_id: str) -> str:
    return f"[RD#{ticket_id}]"


def body_marker(ticket_id: str) -> str:
    return f"[relaydesk-thread:{ticket_id}]"


def ticket_id_from_subject(subject: str) -> str | None:
    match = SUBJECT_TOKEN_PATTERN.search(subject or "")
    return match.group(1) if match else None


def ticket_id_from_body(text: str) -> str | None:
    match = BODY_MARKER_PATTERN.search(text or "")
    return match.group(1) if match else None


def message_id_for(notification_id: str, domain: str) -> str:
    """Our Message-ID: stable per notification, so a retry carries the same id."""
    return f"<{notification_id}@{domain.lower()}>"


def notification_id_from_message_id(message_id: str, our_domains: set[str] | None = None) -> str | None:
    """The notification id inside one of our Message-IDs, or None when the id is not ours."""
    match = re.fullmatch(r"<?(N[0-9A-Z]{18})@([^>]+)>?", (message_id or "").strip())
    if not match:
        return None
    if our_domains is not None and match.group(2).lower() not in our_domains:
        return None
    return match.group(1)


VERIFICATION_HEADER = "X-Relaydesk-Verification"
VERIFICATION_BODY_PATTERN = re.compile(r"\[relaydesk-verify:([0-9A-Z]{6,40})\]")


def verification_marker(token: str) -> str:
    """Put in the body of a verification mail, beside the header, in case a forward drops custom headers."""
    return f"[relaydesk-verify:{token}]"


def verification_token_from_body(text: str) -> str | None:
    match = VERIFICATION_BODY_PATTERN.search(text or "")
    return match.group(1) if match else None
