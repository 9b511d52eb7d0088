"""Delivery policy: what an SMTP reply or a failure means (delivered, deferred, failed, auth_failed) and how long
a deferred notification waits before its next attempt."""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum

from relaydesk.errors import (
    AUTH_REFUSED_CODES,
    AuthenticationFailedError,
    CertificateVerificationError,
    PermanentDeliveryError,
    ReplyCode,
    SmtpDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.outbound.throttles import throttle_rule
from relaydesk.tickets.model import RecipientOutcome

ENHANCED_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\b")  # RFC 3463 2: class.subject.detail

FIRST_RETRY_SECONDS = 120  # greylisting (RFC 6647 2.1) usually lets the second try through after a few minutes
RETRY_GROWTH = 3
MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS ChangeMessageVisibility upper bound


class Outcome(StrEnum):
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # transient: retried with a growing delay, then the DLQ
    FAILED = "failed"  # permanent: recorded, never retried
    AUTH_FAILED = "auth_failed"  # the smarthost refused the credentials: the address is held
    HELD = "held"  # parked behind the address's hold (credentials or TLS) until the fix is in
    # The mailbox's sending limit (outbound/shaper.py): not an attempt, queued again for when a slot frees.
    WAITING = "waiting"  # held back by the shaper before sending
    THROTTLED = "throttled"  # the provider answered with a throttle reply (outbound/throttles.py)


def enhanced_status(text: str) -> str | None:
    match = ENHANCED_STATUS.match(text or "")
    return match.group(1) if match else None


def classify_code(code: int | None) -> Outcome:
    """A reply code alone: 2xx delivered, 4xx deferred, 5xx failed; no code (connection lost, timeout) deferred."""
    if code is None:
        return Outcome.DEFERRED
    if code in AUTH_REFUSED_CODES:
        return Outcome.AUTH_FAILED
    if ReplyCode.is_positive(code):
        return Outcome.DELIVERED
    if ReplyCode.is_permanent(code):
        return Outcome.FAILED
    return Outcome.DEFERRED


def classify_error(error: SmtpDeliveryError) -> Outcome:
    if isinstance(error, AuthenticationFailedError):
        return Outcome.AUTH_FAILED
    if throttle_rule(error.smtp_code, error.server_reply or "") is not None:
        return Outcome.THROTTLED  # before the 5xx rule: Microsoft's 5.2.25x sending limits fail nothing
    if isinstance(error, PermanentDeliveryError):
        return Outcome.FAILED
    # As Postfix does with a TLS policy it cannot meet (4.7.5): defer, so the mail goes once the operator fixes the
    # smarthost; after the last attempt it waits in the DLQ for `relaydesk dlq redrive`. Nothing left in clear.
    if isinstance(error, TransientDeliveryError | TlsRequiredError | CertificateVerificationError):
        return Outcome.DEFERRED
    return classify_code(error.smtp_code)


def retry_delay(receive_count: int, first: float = FIRST_RETRY_SECONDS) -> int:
    """Seconds until the next attempt after the `receive_count`-th one failed: 2, 6, 18, 54 minutes, ... (from
    `first`, the setting `retry_first_seconds`)."""
    attempt = max(1, receive_count)
    return max(1, min(round(first * RETRY_GROWTH ** (attempt - 1)), MAX_VISIBILITY_SECONDS))


def error_for_reply(code: int | None, text: str, message: str, *, recipient: str | None = None,
                    refused: Sequence[RecipientOutcome] = ()) -> SmtpDeliveryError:
    """A server's reply as the typed error the relay acts on: refused credentials, permanent or transient."""
    kind: type[SmtpDeliveryError]
    if code in AUTH_REFUSED_CODES:
        kind = AuthenticationFailedError
    elif ReplyCode.is_permanent(code):
        kind = PermanentDeliveryError
    else:
        kind = TransientDeliveryError
    reply = f"{code} {text}" if code is not None else text
    return kind(message, smtp_code=code, enhanced_status=enhanced_status(text), server_reply=reply,
                recipient=recipient, refused=refused)
