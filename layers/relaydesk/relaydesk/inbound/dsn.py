"""Delivery status notifications (RFC 3464 multipart/report): which of our notifications they report on, and how."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from relaydesk import markers
from relaydesk.inbound.limits import MAX_REPORT_FIELD_CHARS, MAX_REPORTS, one_line
from relaydesk.inbound.loops import DAEMON_LOCAL_PARTS, EMAIL_ID_HEADER
from relaydesk.inbound.parse import ParsedMail
from relaydesk.tickets.model import DeliveryStatus, NotificationRecord

_FIELD = re.compile(r"^([A-Za-z-]+):[ \t]*(.*(?:\n[ \t].*)*)", re.MULTILINE)
_OUR_ID = re.compile(r"<?(N[0-9A-Z]{18})@([A-Za-z0-9.-]+)>?")
_EMAIL_ID = re.compile(rf"^{EMAIL_ID_HEADER}:\s*(N[0-9A-Z]{{18}})\s*$", re.IGNORECASE | re.MULTILINE)
_LEGACY_STATUS = re.compile(r"\b([45]\.\d{1,3}\.\d{1,3})\b")
_LEGACY_RECIPIENT = re.compile(r"<([^<>\s@]+@[^<>\s]+)>:")
_BOUNCE_SUBJECT = re.compile(r"undeliver|returned|failure|delivery status|not delivered|failed|bounce",
                             re.IGNORECASE)
_RETURNED_BYTES = 64 * 1024  # enough of a returned message for its headers
_MESSAGE_ID = re.compile(r"^Message-ID:\s*(<[^<>\s]+>)", re.IGNORECASE | re.MULTILINE)


@dataclass
class RecipientReport:
    recipient: str
    action: str  # failed | delayed | delivered | relayed | expanded (RFC 3464 2.3.3)
    status: str = ""  # enhanced status, e.g. 5.1.1
    diagnostic_code: str = ""
    reporting_mta: str = ""


@dataclass
class DeliveryReport:
    reports: list[RecipientReport] = field(default_factory=list)
    notification_id: str | None = None
    message_id: str | None = None


def is_delivery_report(mail: ParsedMail) -> bool:
    return mail.content_type == "multipart/report" and (mail.report_type in (None, "delivery-status")) \
        and mail.report is not None and bool(mail.report.delivery_status.strip())


def is_legacy_bounce(mail: ParsedMail) -> bool:
    """A bounce without RFC 3464 structure (qmail, old Exim, some appliances): from the mailer daemon, says so."""
    senders = mail.addresses("From")
    return mail.report is None and bool(senders) and bool(DAEMON_LOCAL_PARTS.match(senders[0].partition("@")[0])) \
        and bool(_BOUNCE_SUBJECT.search(mail.subject))


def read_report(mail: ParsedMail) -> DeliveryReport:
    report = mail.report
    if report is None:
        return _read_legacy_bounce(mail)
    result = DeliveryReport()
    blocks = [b for b in re.split(r"\n\s*\n", report.delivery_status.replace("\r\n", "\n")) if b.strip()]
    reporting_mta = ""
    for block in blocks:
        fields = {m.group(1).lower(): re.sub(r"\s+", " ", m.group(2)).strip() for m in _FIELD.finditer(block)}
        if "reporting-mta" in fields:
            reporting_mta = fields["reporting-mta"].split(";", 1)[-1].strip()
        recipient = fields.get("final-recipient") or fields.get("original-recipient")
        if recipient and "action" in fields:
            result.reports.append(RecipientReport(
                recipient=recipient.split(";", 1)[-1].strip().strip("<>").lower(),
                action=fields["action"].lower(), status=fields.get("status", ""),
                diagnostic_code=fields.get("diagnostic-code", "").split(";", 1)[-1].strip(),
                reporting_mta=reporting_mta))
    # Our ids in the returned headers; some servers return only the body, so the human part is searched last.
    _find_our_ids(result, [report.returned_headers, report.human_text, mail.text])
    return result


def _read_legacy_bounce(mail: ParsedMail) -> DeliveryReport:
    result = DeliveryReport()
    returned = [a.payload()[:_RETURNED_BYTES].decode("utf-8", "replace") for a in mail.attachments
                if a.content_type in ("message/rfc822", "text/rfc822-headers")]
    _find_our_ids(result, [*returned, mail.text])
    head = mail.text[:_RETURNED_BYTES]
    status = _LEGACY_STATUS.search(head)
    diagnostic = next((line.strip() for line in head.splitlines() if status and status.group(1) in line), "")
    recipients = _LEGACY_RECIPIENT.findall(head) or [""]
    result.reports = [RecipientReport(recipient=r.lower(), action="failed", status=status.group(1) if status else "",
                                      diagnostic_code=diagnostic[:500]) for r in dict.fromkeys(recipients)]
    return result


def _find_our_ids(result: DeliveryReport, texts: list[str]) -> None:
    for text in texts:
        email_id = _EMAIL_ID.search(text or "")
        message_id = _MESSAGE_ID.search(text or "")
        if message_id and _OUR_ID.fullmatch(message_id.group(1)):
            result.message_id = message_id.group(1)
            result.notification_id = markers.notification_id_from_message_id(message_id.group(1))
        if email_id and not result.notification_id:
            result.notification_id = email_id.group(1)
        if result.notification_id:
            break


def status_after(record: NotificationRecord, reports: list[RecipientReport]) -> DeliveryStatus:
    """A failure report marks the notification bounced; a success report marks it delivered unless it bounced."""
    if any(r.action == "failed" for r in reports):
        return DeliveryStatus.BOUNCED
    if any(r.action in ("delivered", "relayed", "expanded") for r in reports) \
            and record.status is not DeliveryStatus.BOUNCED:
        return DeliveryStatus.DELIVERED
    return record.status


def record_reports(record: NotificationRecord, reports: list[RecipientReport], ses_message_id: str) -> bool:
    """Adds the reports to the record (once per SES message and recipient); True when something changed."""
    seen = {(r.get("ses_message_id"), r.get("recipient")) for r in record.reports}
    changed = False
    for report in reports:
        if (ses_message_id, report.recipient) in seen or len(record.reports) >= MAX_REPORTS:
            continue  # past MAX_REPORTS the status below still counts them; the raw reports stay in S3
        record.reports.append({"ses_message_id": ses_message_id, **{
            name: one_line(value, MAX_REPORT_FIELD_CHARS) for name, value in (
                ("recipient", report.recipient), ("action", report.action), ("status", report.status),
                ("diagnostic_code", report.diagnostic_code), ("reporting_mta", report.reporting_mta))}})
        changed = True
    new_status = status_after(record, reports)
    if new_status is not record.status:
        record.status = new_status
        changed = True
    return changed
