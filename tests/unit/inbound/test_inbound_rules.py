"""Inbound rules a help-desk admin relies on: never twice, the right people, loops and floods stopped."""

from __future__ import annotations

import pytest
from relaydesk import markers
from relaydesk.accounts import AccountSettings
from relaydesk.inbound.outcome import Decision, Outcome
from relaydesk.tickets.model import TicketStatus

from .conftest import SEEDED_TICKET, corpus, make_world, memory_stores_for_inbound

NEW_REQUEST = "outlook_new_request_m365_forward.eml"


def mail_from(sender: str, subject: str = "Help", message_id: str | None = None, extra: str = "") -> bytes:
    message_id = message_id or f"<{abs(hash((sender, subject)))}@example.net>"
    return (f"X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n"
            f"From: {sender}\r\nTo: support@acme.test\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n{extra}"
            "Content-Type: text/plain\r\n\r\nPlease help.\r\n").encode()


def test_the_same_ses_message_delivered_twice_makes_one_ticket_and_one_notification(world):
    first = world.deliver(corpus(NEW_REQUEST), ses_message_id="dup0001")
    second = world.deliver(corpus(NEW_REQUEST), ses_message_id="dup0001")
    assert second.replayed and second.ticket_id == first.ticket_id
    assert len(world.stores.tickets.list_tickets(world.account.account_id)) == 2  # the seeded one and this one
    assert [n.notification_id for n in world.sent] == [first.notification_id]


class FlakyQueue:
    """The queue fails once, as SQS may: the invocation raises and Lambda retries it."""

    def __init__(self, inner) -> None:
        self.inner, self.failed = inner, False

    def send(self, notification, delay_seconds: int = 0) -> None:
        if not self.failed:
            self.failed = True
            raise ConnectionError("SQS unavailable")
        self.inner.send(notification, delay_seconds)


def test_a_retry_after_a_failure_half_way_finishes_the_same_ticket_instead_of_making_a_second(world):
    import dataclasses

    flaky = FlakyQueue(world.stores.queue)
    world.stores = dataclasses.replace(world.stores, queue=flaky)
    with pytest.raises(ConnectionError):
        world.deliver(corpus(NEW_REQUEST), ses_message_id="retry001")
    retried = world.deliver(corpus(NEW_REQUEST), ses_message_id="retry001")
    tickets = world.stores.tickets.list_tickets(world.account.account_id)
    assert len(tickets) == 2
    ticket = world.ticket(retried.ticket_id)
    assert len(ticket.comments) == 1 and len(ticket.notifications) == 1
    assert [n.notification_id for n, _ in flaky.inner.sent] == [retried.notification_id]


def test_two_invocations_racing_on_one_ses_message_apply_the_first_decision(world):
    from relaydesk.clock import utcnow

    world.stores.blobs.put("inbound/race0001", corpus(NEW_REQUEST))
    winner = Decision(outcome=Outcome.NEW_TICKET, received_at=utcnow(), account_id=world.account.account_id,
                      ticket_id="T01M8000000000000WN", comment_id="C01M8000000000000WN",
                      support_address="support@acme.test", requester="jane@example.net")
    world.ports.ledger.claim("race0001", winner.model_dump_json())
    result = world.deliver(corpus(NEW_REQUEST), ses_message_id="race0001")
    assert result.ticket_id == "T01M8000000000000WN"
    assert len(world.stores.tickets.list_tickets(world.account.account_id)) == 2


def test_the_same_mail_arriving_under_a_second_ses_id_is_dropped_as_a_duplicate(world):
    first = world.deliver(corpus(NEW_REQUEST))
    again = world.deliver(corpus(NEW_REQUEST))
    assert (again.outcome, again.reason, again.ticket_id) == (Outcome.DROPPED, "duplicate_message", first.ticket_id)


def test_the_notification_names_the_ticket_and_threads_back_to_it(world):
    result = world.deliver(corpus(NEW_REQUEST))
    note = world.sent[0]
    assert note.subject == f"{markers.subject_token(result.ticket_id)} Printer on floor 3 is jammed"
    assert note.support_address == "support@acme.test"
    assert "> the printer on floor 3 shows \"paper jam\" again." in note.text_body
    record = world.ticket(result.ticket_id).notifications[0]
    assert record.status.value == "queued"
    assert record.message_id == markers.message_id_for(note.notification_id, "acme.test")
    assert world.stores.tickets.find_ticket_by_message_id(record.message_id) == result.ticket_id


def test_without_ccs_and_followers_the_other_recipients_are_not_ccs():
    world = make_world()
    account = world.account.model_copy(update={"settings": AccountSettings(ccs_and_followers_enabled=False)})
    world.stores.directory.put_account(account)
    result = world.deliver(corpus(NEW_REQUEST))
    assert world.ticket(result.ticket_id).ccs == []
    assert [(n.recipients, n.cc) for n in world.sent] == [(["jane@example.net"], [])]


def test_ccs_never_include_a_support_address_or_a_system_address(world):
    raw = mail_from("Kim <kim@example.net>", extra="Cc: help@acme.test, support@other.mail.relaydesk.test, "
                                                 "Lee <lee@example.net>\r\n")
    result = world.deliver(raw)
    assert world.ticket(result.ticket_id).ccs == ["lee@example.net"]


def test_mail_to_an_unknown_alias_goes_to_the_default_support_address(world):
    raw = mail_from("kim@example.net").replace(b"To: support@acme.test", b"To: sales@acme.test")
    result = world.deliver(raw)
    assert world.ticket(result.ticket_id).support_address == "support@acme.test"


def test_without_a_default_address_the_system_address_answers():
    stores = memory_stores_for_inbound()
    world = make_world(stores)
    for address in stores.directory.list_addresses(world.account.account_id):
        stores.directory.delete_address(address.account_id, address.email)
    result = world.deliver(mail_from("kim@example.net"))
    assert world.ticket(result.ticket_id).support_address == "support@acme.mail.relaydesk.test"
    assert world.sent[0].support_address == "support@acme.mail.relaydesk.test"


def test_one_sender_flooding_the_account_is_suspended_past_the_hourly_threshold():
    world = make_world(memory_stores_for_inbound(sender_flood_threshold_per_hour=3))
    outcomes = [world.deliver(mail_from("flood@example.net", subject=f"spam {i}")).outcome for i in range(5)]
    assert outcomes == [Outcome.NEW_TICKET] * 3 + [Outcome.SUSPENDED] * 2
    other = world.deliver(mail_from("calm@example.net"))
    assert other.outcome is Outcome.NEW_TICKET
    suspended = world.ticket(world.deliver(mail_from("flood@example.net", subject="again")).ticket_id)
    assert suspended.suspension_reason.value == "rate_limited"
    assert "flood@example.net" in suspended.suspension_explanation


def test_a_reply_from_the_requester_reopens_a_pending_ticket_and_tells_the_ccs(world):
    result = world.deliver(corpus("reply_in_reply_to_google_forward.eml"))
    ticket = world.ticket(SEEDED_TICKET)
    assert ticket.status is TicketStatus.OPEN
    assert [(n.recipients, n.cc) for n in world.sent] == [(["max@example.net"], [])]
    assert world.sent[0].in_reply_to == "<CAF7b2Rq9x1U@mail.example.net>"
    comment = next(c for c in ticket.comments if c.comment_id == result.comment_id)
    assert comment.notification_ids == [world.sent[0].notification_id]  # the copy it caused, shown under it


def test_a_reply_from_a_stranger_is_private_and_notifies_nobody(world):
    world.deliver(corpus("reply_from_non_participant.eml"))
    ticket = world.ticket(SEEDED_TICKET)
    assert ticket.comments[-1].public is False
    assert ticket.status is TicketStatus.PENDING  # a private note does not reopen
    assert "eve@elsewhere.example" not in ticket.ccs
    assert world.sent == [] and ticket.comments[-1].notification_ids == []


def test_an_out_of_office_reply_never_gets_a_notification(world):
    world.deliver(corpus("out_of_office_exchange.eml"))
    world.deliver(corpus("out_of_office_gmail_vacation.eml"))
    assert world.sent == []


def test_a_replay_of_a_finished_message_does_not_read_the_raw_mail_again(world):
    first = world.deliver(corpus(NEW_REQUEST), ses_message_id="done0001")
    world.stores.blobs.objects["inbound/done0001"] = (b"changed", "x")  # would decide differently if re-read
    again = world.deliver(b"changed", ses_message_id="done0001")
    assert (again.outcome, again.ticket_id, again.replayed) == (first.outcome, first.ticket_id, True)


def test_a_verification_mail_with_an_unknown_token_makes_no_ticket(world):
    world.known_tokens.clear()
    result = world.deliver(corpus("verification_test_mail.eml"))
    assert (result.outcome, result.verified) == (Outcome.VERIFICATION, False)
    assert len(world.stores.tickets.list_tickets(world.account.account_id)) == 1


def test_a_verification_mail_reaches_address_verification_through_the_default_hook():
    from relaydesk.addresses.model import Verification, VerificationStatus
    from relaydesk.inbound.service import process_inbound

    from .conftest import ses_record

    world = make_world()
    address = world.stores.directory.get_address("support@acme.test")
    address.forwarding = Verification(status=VerificationStatus.PENDING, token="VERIFYTOKEN0001")
    world.stores.directory.put_address(address)
    world.stores.blobs.put("inbound/verify01", corpus("verification_test_mail.eml"))

    result = process_inbound(world.stores, ses_record("verify01"), ports=world.ports)  # the real hook

    assert (result.outcome, result.verified) == (Outcome.VERIFICATION, True)
    assert world.stores.directory.get_address("support@acme.test").forwarding.status is VerificationStatus.VERIFIED


def test_a_huge_text_body_is_cut_on_the_comment_and_kept_whole_as_an_attachment(world):
    long_text = "A very long log line that the customer pasted. " * 20000  # about 1 MB
    raw = mail_from("kim@example.net").replace(b"Please help.", long_text.encode())
    result = world.deliver(raw)
    comment = world.ticket(result.ticket_id).comments[0]
    assert len(comment.model_dump_json().encode()) < 400_000
    assert "full text is attached as message.txt" in comment.body
    [attachment] = comment.attachments
    assert attachment.filename == "message.txt"
    assert world.stores.blobs.get(attachment.s3_key).decode().strip() == long_text.strip()
    assert len(world.sent[0].model_dump_json()) < 10_000


def test_a_reply_to_a_suspended_ticket_is_added_but_notifies_nobody(world):
    suspended = world.deliver(corpus("manual_forward_gmail.eml"))
    reply = mail_from("Bob Agent <bob.agent@gmail.com>", subject="Re: Fwd: Refund request",
                      extra="In-Reply-To: <CAJm3nXw8Pq2=hY4@mail.gmail.com>\r\nCc: carol@example.org\r\n")
    result = world.deliver(reply)
    assert (result.outcome, result.ticket_id) == (Outcome.COMMENT, suspended.ticket_id)
    assert world.sent == []


def test_another_accounts_notification_forwarded_here_is_not_taken_for_a_loop(world):
    raw = corpus("own_notification_came_back.eml").replace(
        b"X-Relaydesk-From-Account-Id: A01M8000000000000AC", b"X-Relaydesk-From-Account-Id: A01M8000000000000ZZ")
    raw = raw.replace(b"From: Acme Support <support@acme.test>", b"From: Globex Support <help@globex.example>")
    raw = raw.replace(b"@acme.test>\n", b"@globex.example>\n").replace(b"T01M8000000000000TK", b"T01M8000000000000GX")
    result = world.deliver(raw)
    assert result.outcome is Outcome.NEW_TICKET
    assert world.sent == []  # it is auto-generated: never answered
