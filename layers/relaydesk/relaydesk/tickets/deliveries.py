"""Where each notification of a ticket stands for each of its recipients: the server's answer to that recipient
(refused at RCPT), a delivery report about it later (bounced, delayed), or else the notification's own last outcome."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord

# RFC 3464 2.3.3 actions of a delivery status notification, as what they mean for that recipient.
REPORTED = {"failed": DeliveryStatus.BOUNCED, "delayed": DeliveryStatus.DEFERRED,
            "delivered": DeliveryStatus.DELIVERED, "relayed": DeliveryStatus.DELIVERED,
            "expanded": DeliveryStatus.DELIVERED}


@dataclass(frozen=True)
class RecipientDelivery:
    recipient: str
    status: DeliveryStatus
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""  # what the server (or the report) said about this recipient
    at: datetime | None = None  # the attempt that decided it; None while queued or for a report
    report: str | None = None  # a later report's action (failed, delayed, complaint, ...) when there is one


def per_recipient(record: NotificationRecord) -> list[RecipientDelivery]:
    """One row per recipient of the notification, in the order it was addressed."""
    last = record.attempts[-1] if record.attempts else None
    return [_one(record, recipient, last) for recipient in dict.fromkeys(r.lower() for r in record.recipients)]


def _one(record: NotificationRecord, recipient: str, last: DeliveryAttempt | None) -> RecipientDelivery:
    report = next((r for r in reversed(record.reports) if r.get("recipient", "").lower() == recipient), None)
    if report is not None and report.get("action") in REPORTED:
        return RecipientDelivery(recipient=recipient, status=REPORTED[report["action"]],
                                 enhanced_status=report.get("status") or None,
                                 reply=report.get("diagnostic_code", ""), report=report["action"])
    refused = next((r for r in (last.refused if last else []) if r.recipient.lower() == recipient), None)
    if refused is not None and last is not None:
        transient = refused.smtp_code is not None and 400 <= refused.smtp_code < 500
        return RecipientDelivery(recipient=recipient,
                                 status=DeliveryStatus.DEFERRED if transient else DeliveryStatus.FAILED,
                                 smtp_code=refused.smtp_code, enhanced_status=refused.enhanced_status,
                                 reply=refused.reply, at=last.at)
    # The last attempt's outcome, not the record's: a report about another recipient may have marked the whole
    # notification bounced, while this recipient was accepted and nothing was reported about it.
    return RecipientDelivery(recipient=recipient, status=last.status if last is not None else record.status,
                             smtp_code=last.smtp_code if last else None,
                             enhanced_status=last.enhanced_status if last else None,
                             reply=last.reply if last else "", at=last.at if last else None,
                             report=report.get("action") if report else None)
