"""SES bounces and complaints of Relaydesk's own outbound (the configuration set's SNS destination): each report is
recorded on the notification it is about, and the recipient of a permanent bounce or a complaint is suppressed for
the account, so the relay does not send to it again (`outbound.suppression`).

Everything in a report that a remote server wrote (diagnostic codes, addresses) is bounded before it is stored.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from relaydesk.accounts import contact_address
from relaydesk.errors import NotFoundError
from relaydesk.inbound.classify import email_id_alias
from relaydesk.inbound.dsn import RecipientReport, record_reports
from relaydesk.outbound.suppression import DETAIL_LIMIT, Suppression, SuppressionReason
from relaydesk.wiring import Stores

log = logging.getLogger(__name__)

ACCOUNT_HEADER = "x-relaydesk-from-account-id"
EMAIL_ID_HEADER = "x-relaydesk-email-id"
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # an id as our headers carry it (relaydesk.ids.new_id)
MAX_RECIPIENTS = 50  # SES allows 50 recipients per message
MAX_HEADERS = 200
FIELD_LIMIT = 256


@dataclass
class Feedback:
    """What one SES report said and what was done with it."""

    kind: str  # bounce | complaint | other
    account_id: str | None = None
    notification_id: str | None = None
    ticket_id: str | None = None
    permanent: bool = False
    recipients: list[str] = field(default_factory=list)
    suppressed: list[str] = field(default_factory=list)
    recorded: bool = False  # on the notification's record


def _text(value: Any, limit: int = FIELD_LIMIT) -> str:
    return " ".join(str(value or "").split())[:limit]


def _our_id(value: str) -> str | None:
    value = value.strip()
    return value if _ID.match(value) else None


def read(message: dict[str, Any]) -> tuple[Feedback, list[RecipientReport]]:
    """The report's kind, our ids from the mail's headers, and one RecipientReport per recipient it names."""
    kind = _text(message.get("eventType") or message.get("notificationType")).lower()
    mail = message.get("mail") if isinstance(message.get("mail"), dict) else {}
    headers = {_text(h.get("name")).lower(): _text(h.get("value")) for h in (mail.get("headers") or [])[:MAX_HEADERS]
               if isinstance(h, dict)}
    feedback = Feedback(kind=kind if kind in ("bounce", "complaint") else "other",
                        account_id=_our_id(headers.get(ACCOUNT_HEADER, "")),
                        notification_id=_our_id(headers.get(EMAIL_ID_HEADER, "")))
    reports: list[RecipientReport] = []
    if feedback.kind == "bounce":
        bounce = message.get("bounce") if isinstance(message.get("bounce"), dict) else {}
        feedback.permanent = bounce.get("bounceType") == "Permanent"
        action = "failed" if feedback.permanent else "delayed"
        reporting = _text(bounce.get("reportingMTA"))
        for entry in (bounce.get("bouncedRecipients") or [])[:MAX_RECIPIENTS]:
            if isinstance(entry, dict) and (address := _address(entry.get("emailAddress"))):
                reports.append(RecipientReport(recipient=address, action=action, status=_text(entry.get("status"), 16),
                                               diagnostic_code=_text(entry.get("diagnosticCode"), DETAIL_LIMIT),
                                               reporting_mta=reporting))
    elif feedback.kind == "complaint":
        complaint = message.get("complaint") if isinstance(message.get("complaint"), dict) else {}
        what = _text(complaint.get("complaintFeedbackType") or "complaint", 64)
        for entry in (complaint.get("complainedRecipients") or [])[:MAX_RECIPIENTS]:
            if isinstance(entry, dict) and (address := _address(entry.get("emailAddress"))):
                reports.append(RecipientReport(recipient=address, action="complaint", diagnostic_code=what))
    feedback.recipients = [r.recipient for r in reports]
    return feedback, reports


def _address(value: Any) -> str | None:
    try:
        return contact_address(str(value or ""))
    except ValueError:
        return None


def apply(stores: Stores, message: dict[str, Any], *, ses_message_id: str = "") -> Feedback:
    """Suppress what must be, record the report on its notification; idempotent (SNS may deliver twice)."""
    feedback, reports = read(message)
    if feedback.kind == "other" or not reports:
        return feedback
    if feedback.account_id is None or not _is_account(stores, feedback.account_id):
        log.warning("SES %s for %d recipient(s) names no account of ours; nothing suppressed", feedback.kind,
                    len(reports))
        feedback.account_id = None
        return feedback
    if stores.suppressions is not None and (feedback.kind == "complaint" or feedback.permanent):
        reason = SuppressionReason.COMPLAINT if feedback.kind == "complaint" else SuppressionReason.BOUNCE
        for report in reports:
            stores.suppressions.add(Suppression(
                account_id=feedback.account_id, recipient=report.recipient, reason=reason,
                detail=report.diagnostic_code or report.status, notification_id=feedback.notification_id))
            feedback.suppressed.append(report.recipient)
    feedback.recorded = _record(stores, feedback, reports, ses_message_id or _text(
        (message.get("mail") or {}).get("messageId"), 128))
    return feedback


def _is_account(stores: Stores, account_id: str) -> bool:
    try:
        stores.directory.get_account(account_id)
    except NotFoundError:
        return False
    return True


def _record(stores: Stores, feedback: Feedback, reports: list[RecipientReport], ses_message_id: str) -> bool:
    if feedback.notification_id is None:
        return False  # an alert or verification mail: nothing on a ticket to record it on
    ticket_id = stores.tickets.find_ticket_by_message_id(email_id_alias(feedback.notification_id))
    ticket = stores.tickets.get_ticket(ticket_id) if ticket_id else None
    if ticket is None or ticket.account_id != feedback.account_id:
        return False
    record = stores.tickets.get_notification(ticket.ticket_id, feedback.notification_id)
    if record is None:
        return False
    feedback.ticket_id = ticket.ticket_id
    if record_reports(record, reports, ses_message_id):
        stores.tickets.put_notification(ticket.ticket_id, record)
    return True
