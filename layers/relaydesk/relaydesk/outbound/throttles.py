"""Provider replies that mean "send slower": one row each, looked up by code, enhanced status and words.

A throttle reply fails nothing and holds nothing: the shaper pauses the mailbox for the row's pause (doubled while
throttles follow each other), halves its rate for a while, and the notification waits for its turn
(docs/DELIVERY.md, "Sending limits").
"""

from __future__ import annotations

import re
from typing import NamedTuple

MINUTE = 60.0
HOUR = 3600.0


class ThrottleRule(NamedTuple):
    provider: str
    code: int | None  # None: any code
    status: str | None  # RFC 3463 enhanced status, or None: any
    words: str | None  # a regular expression the reply must contain (case-insensitive), or None
    pause: float  # seconds the mailbox sends nothing after this reply
    meaning: str  # what the provider said, in plain words
    fix: str = ""  # what an admin can do about it; empty when waiting is the whole fix

    def matches(self, code: int | None, status: str | None, text: str) -> bool:
        return ((self.code is None or self.code == code) and (self.status is None or self.status == status)
                and (self.words is None or re.search(self.words, text, re.IGNORECASE) is not None))


CONTINUOUS_ERRORS = "Exchange Online throttles SMTP AUTH for this mailbox after continuous {0} errors"
THROTTLE_REPLIES: tuple[ThrottleRule, ...] = (
    # learn.microsoft.com/exchange/troubleshoot/send-emails/smtp-submission-improvements
    ThrottleRule("Microsoft 365", 432, "4.3.2", None, 30.0,
                 "Exchange Online allows three connections per mailbox sending at the same time; another client of "
                 "this mailbox may be sending too", "If other devices or applications send as this mailbox, give "
                 "them a mailbox of their own or lower this address's connections (`relaydesk addresses limits`)."),
    ThrottleRule("Microsoft 365", 554, "5.2.0", r"SubmissionQuotaExceeded", HOUR,
                 "Exchange Online's 10,000 recipients a day per mailbox are used up (a sliding 24 hours)",
                 "Other clients of the mailbox count too; the limit frees itself as the day slides."),
    # learn.microsoft.com/Exchange/mail-flow-best-practices/continuous-error-throttling-smtp-auth-submissions
    ThrottleRule("Microsoft 365", 550, "5.2.251", None, 15 * MINUTE, CONTINUOUS_ERRORS.format("mailbox full"),
                 "Free space in the sending mailbox (its Sent Items fill up: set a retention policy on them)."),
    ThrottleRule("Microsoft 365", 550, "5.2.252", None, 15 * MINUTE, CONTINUOUS_ERRORS.format("Send As denied"),
                 "Give the mailbox that signs in Send As permission on the support address."),
    ThrottleRule("Microsoft 365", 550, "5.2.253", None, 15 * MINUTE, CONTINUOUS_ERRORS.format("invalid license"),
                 "Assign an Exchange Online license to the mailbox that signs in."),
    ThrottleRule("Microsoft 365", 550, "5.2.254", None, 15 * MINUTE,
                 CONTINUOUS_ERRORS.format("too many recipients"),
                 "Lower --recipients-per-message to the tenant's recipient limit (`relaydesk addresses limits`)."),
    ThrottleRule("Microsoft 365", 550, "5.2.255", None, 15 * MINUTE,
                 CONTINUOUS_ERRORS.format("invalid recipients"),
                 "Look for notifications failed with 5.1.x on this address's tickets: their recipients do not exist."),
    # support.google.com/a/answer/3726730 (Gmail SMTP errors and codes)
    ThrottleRule("Google", 421, "4.7.0", r"try again later|unusual rate", 5 * MINUTE,
                 "Gmail asked to try again later (a rate or burst limit)"),
    ThrottleRule("Google", 450, "4.2.1", None, 2 * MINUTE,
                 "Gmail refused more mail at this rate for now (receiving too quickly, or a peak limit)"),
    ThrottleRule("Google", 550, "5.4.5", r"daily|sending limit|quota", HOUR,
                 "Gmail's daily sending limit of the user is used up (Google lifts it within 24 hours)",
                 "Lower --messages-per-day if other clients send as this user too."),
    # Exchange Server's receive connector MessageRateLimit; Postfix's anvil limits (smtpd_client_*_limit)
    ThrottleRule("Exchange Server", None, "4.4.2", r"submission rate", MINUTE,
                 "Exchange Server's receive connector limits messages a minute from this client",
                 "Set --messages-per-minute to the connector's MessageRateLimit (Get-ReceiveConnector)."),
    ThrottleRule("Postfix", None, None, r"too (much mail|many (messages|connections)) from", MINUTE,
                 "Postfix limits mail or connections a minute from this client",
                 "Set --messages-per-minute / --connections to the server's smtpd_client_message_rate_limit and "
                 "smtpd_client_connection_count_limit."),
    # 432 is no RFC 5321 code: servers that use it (Exchange, and clones of it) mean "too many of yours at once". A
    # 421 4.3.2 ("shutting down", maintenance) stays a deferral, counted as an attempt.
    ThrottleRule("any server", 432, None, None, 30.0, "the server is not accepting more messages from this client now"),
)

ENHANCED_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")


def throttle_rule(code: int | None, reply: str) -> ThrottleRule | None:
    """The row that says `reply` (with its code) is a throttle, or None."""
    found = ENHANCED_STATUS.search(reply or "")
    status = found.group(1) if found else None
    return next((rule for rule in THROTTLE_REPLIES if rule.matches(code, status, reply or "")), None)


def describe(rule: ThrottleRule, reply: str) -> str:
    """The words for the ticket's record: the provider's reply and what it means."""
    fix = f" {rule.fix}" if rule.fix else ""
    return f"waiting for the mailbox's sending limit: {rule.meaning} ({reply.strip()}).{fix}"
