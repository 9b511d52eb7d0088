"""Decides the one outcome of a parsed message: the checks run in a fixed order, the first that applies wins."""

from __future__ import annotations

from relaydesk import markers
from relaydesk.ids import new_id
from relaydesk.inbound import dsn, forwarding, limits, loops, routing
from relaydesk.inbound.outcome import Decision, DropReason, Outcome
from relaydesk.inbound.parse import ParsedMail
from relaydesk.inbound.ports import InboundPorts
from relaydesk.inbound.receipt import SesReceipt
from relaydesk.inbound.threading import ThreadMatch, find_thread, is_participant
from relaydesk.tickets.model import SuspensionReason, TicketStatus
from relaydesk.wiring import Stores

DMARC_ENFORCING_POLICIES = {"reject", "quarantine"}
SPAM_EXPLANATION = "Amazon SES judged this mail to be spam. Release it if it is a real request."
DMARC_EXPLANATION = ("The sender's domain publishes a DMARC policy of {policy}, and this mail failed DMARC: it may be "
                     "forged. Release it only if you trust the sender.")
FROM_SUPPORT_EXPLANATION = ("This mail comes from one of the account's own support addresses; answering it could "
                            "start a mail loop between the help desk and the mailbox that forwards to it.")
RATE_LIMIT_EXPLANATION = ("{sender} sent {count} messages to this account within an hour (the limit is {limit}); "
                          "further mail is suspended until the hour is over.")


def verification_token(mail: ParsedMail) -> str | None:
    token = limits.one_line(mail.header(markers.VERIFICATION_HEADER) or "", limits.MAX_TOKEN_CHARS).upper()
    return token or markers.verification_token_from_body(mail.text[:200000])


def decide(stores: Stores, ports: InboundPorts, mail: ParsedMail, receipt: SesReceipt) -> Decision:
    base = {"received_at": receipt.received_at}
    if receipt.virus == "FAIL":
        return Decision(outcome=Outcome.DROPPED, reason=DropReason.VIRUS, **base)
    found = routing.find_account(stores.directory, receipt.recipients, stores.settings.mail_domain)
    if found is None:
        return Decision(outcome=Outcome.DROPPED, reason=DropReason.UNKNOWN_RECIPIENT, **base)
    account, recipient = found
    route = routing.resolve(stores.directory, mail, account, recipient, stores.settings.mail_domain)
    base |= {"account_id": account.account_id, "support_address": route.support_address, "recipient": recipient}
    fwd = forwarding.analyse(mail, {route.system_address, recipient})
    base["forwarding_hops"] = fwd.hops

    token = verification_token(mail)
    if token:
        return Decision(outcome=Outcome.VERIFICATION, verification_token=token, **base)
    if dsn.is_delivery_report(mail) or dsn.is_legacy_bounce(mail):
        return _delivery_report(stores, mail, base)
    our_domains = {a.domain for a in route.addresses} | {route.system_address.rpartition("@")[2],
                                                         stores.settings.outbound_default_domain.lower()}
    if loops.is_our_own_mail(mail, our_domains, account.account_id):
        return Decision(outcome=Outcome.DROPPED, reason=DropReason.OWN_MAIL_LOOP, **base)

    sender = routing.requester_mailbox(mail)
    if sender is None:
        return Decision(outcome=Outcome.DROPPED, reason=DropReason.NO_SENDER, **base)
    requester = sender.address
    base |= {"requester": requester, "requester_name": sender.name, "ccs": routing.ccs_of(mail, route, requester)}
    flags = ["multiple_forwarding"] if fwd.multiple else []
    auto = loops.auto_generated_reason(mail, requester)
    if auto:
        flags.append(f"auto_generated:{auto}")
    base["flags"] = flags

    if receipt.spam == "FAIL":
        return _suspend(SuspensionReason.SPAM, SPAM_EXPLANATION, base)
    if receipt.dmarc == "FAIL" and (receipt.dmarc_policy or "") in DMARC_ENFORCING_POLICIES:
        return _suspend(SuspensionReason.DMARC_FAIL, DMARC_EXPLANATION.format(policy=receipt.dmarc_policy), base)
    if requester in route.own_addresses or routing.is_system_domain(requester, route.mail_domain):
        return _suspend(SuspensionReason.FROM_SUPPORT_ADDRESS, FROM_SUPPORT_EXPLANATION, base)

    duplicate_of = _already_made_a_comment(stores, mail, account.account_id)
    if duplicate_of:
        return Decision(outcome=Outcome.DROPPED, reason=DropReason.DUPLICATE_MESSAGE, ticket_id=duplicate_of, **base)
    thread = find_thread(stores.tickets, mail, account.account_id)
    replies_to_us = thread is not None and thread.by in ("in-reply-to", "references")
    if fwd.manual and not replies_to_us:
        return _suspend(SuspensionReason.MANUAL_FORWARD, forwarding.MANUAL_FORWARD_EXPLANATION, base)

    count = loops.count_sender(ports.counters, account.account_id, requester, receipt.received_at,
                               receipt.message_id)
    limit = stores.settings.sender_flood_threshold_per_hour
    if count > limit:
        return _suspend(SuspensionReason.RATE_LIMITED,
                        RATE_LIMIT_EXPLANATION.format(sender=requester, count=count, limit=limit), base)

    if thread is None:
        notify = [] if auto else [requester]
        return Decision(outcome=Outcome.NEW_TICKET, ticket_id=new_id("T"), comment_id=new_id("C"),
                        notification_id=new_id("N") if notify else None, notify_to=notify,
                        notify_cc=[] if auto else base["ccs"], **base)
    return _comment(thread, requester, auto, route, base)


def _comment(thread: ThreadMatch, requester: str, auto: str | None, route: routing.Route, base: dict) -> Decision:
    """A participant's reply is public and tells the others; anyone else's is a private note that tells nobody."""
    ticket = thread.ticket
    participant = is_participant(ticket, requester)
    new_ccs = [c for c in base["ccs"] if c not in ticket.ccs and c != ticket.requester] if participant else []
    if not participant:
        base["flags"] = [*base["flags"], "reply_from_non_participant"]
    everyone = [ticket.requester, *ticket.ccs, *new_ccs]
    silent = auto or not participant or ticket.status is TicketStatus.SUSPENDED
    recipients = [] if silent else \
        [a for a in dict.fromkeys(everyone) if a != requester and a not in route.own_addresses]
    base["support_address"] = ticket.support_address
    return Decision(outcome=Outcome.COMMENT, ticket_id=ticket.ticket_id, comment_id=new_id("C"),
                    public=participant, thread_by=thread.by, new_ccs=new_ccs,
                    notification_id=new_id("N") if recipients else None,
                    notify_to=recipients[:1], notify_cc=recipients[1:], **base)


def _already_made_a_comment(stores: Stores, mail: ParsedMail, account_id: str) -> str | None:
    """The same mail delivered again under another SES id (sent to two forwarding addresses, or re-sent)."""
    if not mail.message_id:
        return None
    ticket_id = stores.tickets.find_ticket_by_message_id(mail.message_id)
    ticket = stores.tickets.get_ticket(ticket_id) if ticket_id else None
    if ticket is None or ticket.account_id != account_id:
        return None
    return ticket_id if any(c.source_message_id == mail.message_id for c in ticket.comments) else None


def _suspend(reason: SuspensionReason, explanation: str, base: dict) -> Decision:
    return Decision(outcome=Outcome.SUSPENDED, reason=reason, explanation=explanation, ticket_id=new_id("T"),
                    comment_id=new_id("C"), **base)


def _delivery_report(stores: Stores, mail: ParsedMail, base: dict) -> Decision:
    report = dsn.read_report(mail)
    ticket_id = None
    if report.message_id:
        ticket_id = stores.tickets.find_ticket_by_message_id(report.message_id)
    if ticket_id is None and report.notification_id:
        ticket_id = stores.tickets.find_ticket_by_message_id(email_id_alias(report.notification_id))
    ticket = stores.tickets.get_ticket(ticket_id) if ticket_id else None
    if ticket is not None and ticket.account_id == base["account_id"] and report.notification_id \
            and stores.tickets.get_notification(ticket.ticket_id, report.notification_id) is not None:
        return Decision(outcome=Outcome.DSN_RECORDED, dsn_ticket_id=ticket_id,
                        dsn_notification_id=report.notification_id, **base)
    return Decision(outcome=Outcome.DROPPED, reason=DropReason.DSN_UNMATCHED, **base)


def email_id_alias(notification_id: str) -> str:
    """A second link of a notification to its ticket, for reports that return only our X-Relaydesk-Email-Id."""
    return f"email-id:{notification_id}"
