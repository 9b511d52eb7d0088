"""The domain entry of the inbound function: one SES message in, exactly one outcome out, never twice.

Idempotency: the decision (outcome and every id it will write) is stored in the inbound ledger, keyed by the SES
message id, with a conditional put *before* any write; a repeated or retried invocation loads that decision and
re-applies it, and every write is keyed by the decision's ids (a put of the same item, a create that tolerates
"exists", a notification record written only if missing). See docs/INBOUND.md for why not powertools' idempotency.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from relaydesk import markers
from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.inbound import acknowledge, bodies, limits
from relaydesk.inbound.attachments import store_attachments
from relaydesk.inbound.classify import decide, email_id_alias
from relaydesk.inbound.dsn import read_report, record_reports
from relaydesk.inbound.outcome import Decision, InboundResult, Outcome
from relaydesk.inbound.parse import ParsedMail, parse
from relaydesk.inbound.receipt import SesReceipt
from relaydesk.store.inbound_ports import InboundPorts
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import Comment, NotificationRecord, SuspensionReason, Ticket, TicketStatus

log = logging.getLogger(__name__)

# on_verification_mail(stores, *, token, recipient, forwarding_hops, received_at) -> bool (relaydesk.addresses)
VerificationHook = Callable[..., bool]


def default_verification_hook() -> VerificationHook:
    from relaydesk.addresses.verification import on_verification_mail

    return on_verification_mail


def process_inbound(stores: Stores, ses_record: dict[str, Any], *, ports: InboundPorts,
                    on_verification: VerificationHook | None = None) -> InboundResult:
    """Reads `inbound/<ses message id>` from S3 (never deletes it), decides, writes. Store failures raise (Lambda
    retries, then the inbound DLQ); malformed mail never does."""
    return process_receipt(stores, SesReceipt.from_record(ses_record), ports=ports, on_verification=on_verification)


def process_receipt(stores: Stores, receipt: SesReceipt, *, ports: InboundPorts,
                    on_verification: VerificationHook | None = None) -> InboundResult:
    stored = ports.ledger.get(receipt.message_id)
    if stored is not None and stored[1]:
        return _result(receipt.message_id, Decision.model_validate_json(stored[0]), replayed=True)
    mail = parse(stores.blobs.chunks(receipt.raw_key))  # streamed: the raw bytes are never held whole
    if stored is not None:
        decision, replayed = Decision.model_validate_json(stored[0]), True
    else:
        proposed = decide(stores, ports, mail, receipt)
        decision = Decision.model_validate_json(ports.ledger.claim(receipt.message_id, proposed.model_dump_json()))
        replayed = decision.ticket_id != proposed.ticket_id or decision.outcome is not proposed.outcome
    verified = _apply(stores, decision, mail, receipt, on_verification)
    ports.ledger.complete(receipt.message_id)
    log.info("inbound outcome", extra={"ses_message_id": receipt.message_id, "outcome": decision.outcome.value,
                                       "reason": decision.reason, "ticket_id": decision.ticket_id})
    return _result(receipt.message_id, decision, replayed=replayed, verified=verified)


def _result(ses_message_id: str, decision: Decision, *, replayed: bool, verified: bool | None = None) -> InboundResult:
    return InboundResult(ses_message_id=ses_message_id, outcome=decision.outcome, reason=decision.reason,
                         ticket_id=decision.ticket_id or decision.dsn_ticket_id, comment_id=decision.comment_id,
                         notification_id=decision.notification_id or decision.dsn_notification_id,
                         replayed=replayed, verified=verified)


def _apply(stores: Stores, decision: Decision, mail: ParsedMail, receipt: SesReceipt,
           on_verification: VerificationHook | None) -> bool | None:
    if decision.outcome is Outcome.VERIFICATION:
        hook = on_verification or default_verification_hook()
        return bool(hook(stores, token=decision.verification_token, recipient=decision.recipient or "",
                         forwarding_hops=decision.forwarding_hops, received_at=decision.received_at))
    if decision.outcome is Outcome.DSN_RECORDED:
        _record_dsn(stores, decision, mail, receipt.message_id)
    elif decision.outcome in (Outcome.NEW_TICKET, Outcome.SUSPENDED):
        _new_ticket(stores, decision, mail, receipt.message_id)
    elif decision.outcome is Outcome.COMMENT:
        _comment(stores, decision, mail, receipt.message_id)
    return None


def _comment_of(stores: Stores, decision: Decision, mail: ParsedMail, ses_message_id: str) -> Comment:
    assert decision.ticket_id and decision.comment_id and decision.requester and decision.account_id
    text, html, attachments, cut = bodies.fit(mail.text, mail.html, mail.attachments)
    refs = store_attachments(stores.blobs, attachments, decision.account_id, decision.ticket_id, decision.comment_id)
    # The mail it sends (the acknowledgement, or the others' copy) is named on the comment, as an agent's reply names
    # its own: the ticket's delivery per recipient shows under the comment that caused it.
    sent = [decision.notification_id] if decision.notification_id else []
    return Comment(comment_id=decision.comment_id, author=decision.requester, body=text, html_body=html,
                   public=decision.public, source_message_id=mail.message_id, ses_message_id=ses_message_id,
                   attachments=refs, omitted=[*mail.omitted, *cut], notification_ids=sent,
                   created_at=decision.received_at)


def _new_ticket(stores: Stores, decision: Decision, mail: ParsedMail, ses_message_id: str) -> None:
    assert decision.ticket_id and decision.account_id and decision.support_address and decision.requester
    comment = _comment_of(stores, decision, mail, ses_message_id)
    suspended = decision.outcome is Outcome.SUSPENDED
    ticket = Ticket(ticket_id=decision.ticket_id, account_id=decision.account_id,
                    support_address=decision.support_address, subject=mail.subject or "(no subject)",
                    requester=decision.requester, ccs=decision.ccs,
                    status=TicketStatus.SUSPENDED if suspended else TicketStatus.NEW,
                    suspension_reason=SuspensionReason(decision.reason) if suspended else None,
                    suspension_explanation=decision.explanation or None, flags=decision.flags,
                    comments=[comment], created_at=decision.received_at, updated_at=decision.received_at)
    try:
        stores.tickets.create_ticket(ticket)  # with its first comment, in one transaction
    except ConflictError:
        pass  # an earlier attempt of this decision wrote both: nothing is missing
    if mail.message_id:
        stores.tickets.link_message_id(mail.message_id, decision.ticket_id)  # replies-all to the original mail
    if decision.notification_id:
        account = stores.directory.get_account(decision.account_id)
        note = acknowledge.ticket_created(decision, ticket.subject, mail.text, account.display_name,
                                          mail.message_id, html=mail.html)
        _notify(stores, decision, note)


def _comment(stores: Stores, decision: Decision, mail: ParsedMail, ses_message_id: str) -> None:
    assert decision.ticket_id and decision.account_id
    ticket = stores.tickets.get_ticket(decision.ticket_id)
    if ticket is None:
        raise NotFoundError(f"ticket {decision.ticket_id} vanished while a comment was added")
    comment = _comment_of(stores, decision, mail, ses_message_id)
    stores.tickets.add_comment(decision.ticket_id, comment)  # the same item again on a retry; moves updated_at
    if mail.message_id:
        stores.tickets.link_message_id(mail.message_id, decision.ticket_id)
    # Attribute by attribute, in place: another reply (or an agent) may be changing this ticket at this very moment.
    at = decision.received_at
    for cc in decision.new_ccs:  # one at a time: as many as fit under the limit land
        stores.tickets.add_ccs(decision.ticket_id, [cc], at, limit=limits.MAX_CCS)
    if decision.flags:
        stores.tickets.add_flags(decision.ticket_id, decision.flags, at, limit=limits.MAX_FLAGS)
    if decision.public:
        stores.tickets.change_status(decision.ticket_id, TicketStatus.OPEN, at,
                                     from_statuses=frozenset({TicketStatus.PENDING, TicketStatus.SOLVED}))
    if decision.notification_id:
        account = stores.directory.get_account(decision.account_id)
        author = decision.requester_name or decision.requester or "Someone"
        note = acknowledge.comment_added(decision, ticket.subject, mail.text, author, account.display_name,
                                         mail.message_id, html=mail.html)
        _notify(stores, decision, note)


def _notify(stores: Stores, decision: Decision, note: Any) -> None:
    """Record (only if missing: the relay may already have updated it), link our Message-ID, then enqueue. A
    second enqueue of the same notification id is harmless: the relay sends each notification id once."""
    assert decision.ticket_id and decision.support_address
    domain = decision.support_address.rpartition("@")[2]
    message_id = markers.message_id_for(note.notification_id, domain)
    if stores.tickets.get_notification(decision.ticket_id, note.notification_id) is None:
        stores.tickets.put_notification(decision.ticket_id, NotificationRecord(
            notification_id=note.notification_id, message_id=message_id, recipients=[*note.recipients, *note.cc]))
    stores.tickets.link_message_id(message_id, decision.ticket_id)
    stores.tickets.link_message_id(email_id_alias(note.notification_id), decision.ticket_id)
    stores.queue.send(note)


def _record_dsn(stores: Stores, decision: Decision, mail: ParsedMail, ses_message_id: str) -> None:
    assert decision.dsn_ticket_id and decision.dsn_notification_id
    record = stores.tickets.get_notification(decision.dsn_ticket_id, decision.dsn_notification_id)
    if record is None:
        raise NotFoundError(f"notification {decision.dsn_notification_id} vanished while its report was recorded")
    if record_reports(record, read_report(mail).reports, ses_message_id):
        stores.tickets.put_notification(decision.dsn_ticket_id, record)
