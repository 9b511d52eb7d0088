"""An agent's reply and internal note: who gets mail, what it carries, and what a crash and a retry leave."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relaydesk import markers
from relaydesk.accounts import AccountSettings
from relaydesk.errors import NotFoundError, RuleViolation
from relaydesk.notification import NotificationKind
from relaydesk.outbound.compose import Sender, compose, sender_name
from relaydesk.tickets import participants, replies
from relaydesk.tickets.model import Agent, TicketStatus

from tests.unit.tickets.conftest import ACCOUNT, ACK_MESSAGE_ID, BOB, JANE_MESSAGE_ID, TICKET, seed, sent

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def test_a_public_reply_mails_the_requester_and_ccs_once_threaded_under_janes_mail(acme):
    posted = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Hi Jane,\n\nWe replaced the fuser.", now=NOW)

    [notice] = sent(acme)
    assert notice.kind is NotificationKind.AGENT_REPLY
    assert notice.recipients == ["jane@example.net"] and notice.cc == ["carol@example.org"]
    assert notice.in_reply_to == JANE_MESSAGE_ID and notice.references == [JANE_MESSAGE_ID]
    assert notice.support_address == "support@acme.test" and notice.agent_name == "Bob Agent"
    assert notice.text_body.startswith("Hi Jane,\n\nWe replaced the fuser.")
    assert "> The printer on floor 3 shows E-52." in notice.text_body  # the conversation below the news
    assert "We replaced the fuser." in notice.html_body and "<b>floor 3</b>" in notice.html_body
    assert posted.comment.public and posted.comment.agent == BOB and posted.notification_ids == [notice.notification_id]
    ticket = posted.ticket
    assert ticket.status is TicketStatus.OPEN and ticket.updated_at == NOW
    [record] = [r for r in ticket.notifications if r.notification_id == notice.notification_id]
    assert record.recipients == ["jane@example.net", "carol@example.org"]
    assert acme.tickets.find_ticket_by_message_id(record.message_id) == TICKET  # Jane's answer threads back


def test_the_next_reply_threads_under_the_previous_one(acme):
    first = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="First answer", now=NOW)
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Second answer", now=NOW.replace(minute=5))

    first_id = markers.message_id_for(first.notification_ids[0], "acme.test")
    second = sent(acme)[-1]
    assert second.in_reply_to == first_id and second.references == [JANE_MESSAGE_ID, first_id]
    assert second.text_body.index("> First answer") > second.text_body.index("Second answer")


def test_followers_get_their_own_copy_marked_as_such_and_the_agent_gets_nothing(acme):
    participants.add(acme, ACCOUNT, TICKET, participants.Role.FOLLOWER, ["ann@acme.test", "bob@acme.test"])

    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Fixed.", now=NOW)

    public, followers = sent(acme)
    assert public.recipients == ["jane@example.net"] and followers.recipients == ["ann@acme.test"]
    assert followers.text_body.startswith("[Follower copy] You follow this ticket. Bob Agent replied")
    assert "Follower copy" in followers.html_body and "Follower copy" not in public.html_body
    assert public.notification_id != followers.notification_id
    assert all("bob@acme.test" not in [*n.recipients, *n.cc] for n in sent(acme))


def test_an_internal_note_sends_nothing_and_never_shows_in_later_mail(acme):
    posted = replies.note(acme, ACCOUNT, TICKET, agent=BOB, body="Customer is on the old firmware.", now=NOW)

    assert sent(acme) == [] and posted.notification_ids == []
    assert posted.comment.public is False and posted.ticket.status is TicketStatus.NEW
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Please update the firmware.", now=NOW.replace(minute=1))
    [notice] = sent(acme)
    assert "old firmware" not in notice.text_body and "old firmware" not in notice.html_body


def test_with_ccs_and_followers_off_only_the_requester_is_mailed(memory_stores):
    seed(memory_stores, settings=AccountSettings(ccs_and_followers_enabled=False))

    replies.reply(memory_stores, ACCOUNT, TICKET, agent=BOB, body="Hello", now=NOW)

    [notice] = sent(memory_stores)
    assert notice.recipients == ["jane@example.net"] and notice.cc == []


def test_a_retry_with_the_same_request_id_writes_and_sends_nothing_twice(acme):
    first = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Done.", request_id="req-0001-abcdef", now=NOW)
    again = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Done.", request_id="req-0001-abcdef",
                          now=NOW.replace(minute=9))

    ticket = acme.tickets.get_ticket(TICKET)
    assert [c.comment_id for c in ticket.comments].count(first.comment.comment_id) == 1
    assert len(ticket.comments) == 2 and len(ticket.notifications) == 2  # Jane's + the reply; ack + the reply
    assert again.comment.created_at == NOW  # the first write stands
    assert {n.notification_id for n in sent(acme)} == set(first.notification_ids)  # the relay sends an id once


class FailingOnce:
    """A ticket store that raises at the n-th call of one method: the process killed there."""

    def __init__(self, inner, method: str, at_call: int = 1) -> None:
        self.inner, self.method, self.left = inner, method, at_call

    def __getattr__(self, name):
        attribute = getattr(self.inner, name)
        if name != self.method:
            return attribute

        def wrapped(*args, **kwargs):
            self.left -= 1
            if self.left == 0:
                raise ConnectionError(f"killed in {name}")
            return attribute(*args, **kwargs)
        return wrapped


@pytest.mark.parametrize("method", ["add_comment", "put_notification", "link_message_id", "change_status"])
def test_a_reply_killed_at_any_write_is_finished_by_its_retry_with_one_comment_and_one_send(acme, method):
    from dataclasses import replace

    broken = replace(acme, tickets=FailingOnce(acme.tickets, method))
    with pytest.raises(ConnectionError):
        replies.reply(broken, ACCOUNT, TICKET, agent=BOB, body="Done.", request_id="req-crash-0001", now=NOW)

    posted = replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="Done.", request_id="req-crash-0001",
                           now=NOW.replace(minute=3))

    ticket = acme.tickets.get_ticket(TICKET)
    agent_comments = [c for c in ticket.comments if c.agent is not None]
    # killed before the comment was written: the retry writes it, at its own time; otherwise the first write stands
    assert len(agent_comments) == 1
    assert agent_comments[0].created_at == (NOW.replace(minute=3) if method == "add_comment" else NOW)
    [record] = [r for r in ticket.notifications if r.notification_id in posted.notification_ids]
    assert {n.notification_id for n in sent(acme)} == {record.notification_id}
    assert ticket.status is TicketStatus.OPEN


def test_a_queue_that_fails_leaves_the_reply_recorded_and_its_retry_sends_it(acme):
    from dataclasses import replace

    class DownQueue:
        def send(self, *_a, **_k):
            raise ConnectionError("SQS unavailable")

    with pytest.raises(ConnectionError):
        replies.reply(replace(acme, queue=DownQueue()), ACCOUNT, TICKET, agent=BOB, body="x", request_id="req-q-0001",
                      now=NOW)
    assert [r.status.value for r in acme.tickets.get_ticket(TICKET).notifications][-1] == "queued"
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="x", request_id="req-q-0001", now=NOW)
    assert len(sent(acme)) == 1


@pytest.mark.parametrize("body", ["", "   \n\t ", "x" * (replies.MAX_BODY_CHARS + 1)])
def test_an_empty_or_huge_reply_is_refused_and_nothing_is_written(acme, body):
    with pytest.raises(RuleViolation):
        replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body=body)
    assert len(acme.tickets.get_ticket(TICKET).comments) == 1 and sent(acme) == []


def test_the_longest_reply_with_hostile_html_in_the_thread_fits_one_sqs_message(acme):
    worst = '<p title="&amp;">' + "&<>\"'" * 20000 + "</p>"
    acme.tickets.get_ticket(TICKET)  # Jane's mail had the worst HTML a sender can send
    ticket = acme.tickets.tickets[TICKET]
    ticket.comments[0].html_body = worst
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="&<>\"'" * (replies.MAX_BODY_CHARS // 5), now=NOW)
    [notice] = sent(acme)
    assert len(notice.model_dump_json().encode()) < 256 * 1024


def test_a_suspended_ticket_or_another_accounts_ticket_cannot_be_answered(memory_stores):
    seed(memory_stores, status=TicketStatus.SUSPENDED)
    seed(memory_stores, account_id="A02OTHER", ticket_id="T02M8000000000000TK")

    with pytest.raises(RuleViolation, match="suspended"):
        replies.reply(memory_stores, ACCOUNT, TICKET, agent=BOB, body="hi")
    with pytest.raises(NotFoundError):
        replies.reply(memory_stores, ACCOUNT, "T02M8000000000000TK", agent=BOB, body="hi")
    with pytest.raises(NotFoundError):
        replies.reply(memory_stores, ACCOUNT, "../T01'; DROP", agent=BOB, body="hi")
    assert sent(memory_stores) == []


def test_the_reply_leaves_from_the_default_address_when_the_tickets_address_was_deleted(acme):
    from relaydesk.addresses.model import SupportAddress

    acme.directory.delete_address(ACCOUNT, "support@acme.test")
    acme.directory.put_address(SupportAddress(email="help@acme.test", account_id=ACCOUNT, is_default=True))

    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="hi", now=NOW)

    assert sent(acme)[0].support_address == "help@acme.test"


@pytest.mark.parametrize(("pattern", "expected"), [
    ("{agent} ({support})", "Bob Agent (Acme Support)"),
    ("{support}", "Acme Support"),
    ("{agent} at {support}", "Bob Agent at Acme Support"),
])
def test_the_from_name_is_the_agent_and_the_address_as_the_account_configures_it(acme, pattern, expected):
    account = acme.directory.get_account(ACCOUNT)
    account.settings = AccountSettings(agent_from_name=pattern)
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="hi", now=NOW)
    notice = sent(acme)[0]

    name = sender_name(account, acme.directory.get_address("support@acme.test"), notice)
    composed = compose(notice, Sender(address="support@acme.test", display_name=name),
                       inline_attachments=False, fetch=lambda key: b"", link=lambda ref: "")
    assert composed.message["From"].addresses[0].display_name == expected
    assert str(composed.message["In-Reply-To"]) == JANE_MESSAGE_ID
    assert markers.body_marker(TICKET) in composed.message.get_body(("plain",)).get_content()
    assert composed.message.get_body(("html",)).get_content().count(markers.body_marker(TICKET)) == 1


def test_an_agent_named_like_a_placeholder_or_a_header_cannot_change_the_from_line(acme):
    sly = Agent(agent_id="x", name="{support}\r\nBcc: all@example.com")
    account = acme.directory.get_account(ACCOUNT)
    replies.reply(acme, ACCOUNT, TICKET, agent=sly, body="hi", now=NOW)
    name = sender_name(account, acme.directory.get_address("support@acme.test"), sent(acme)[0])
    composed = compose(sent(acme)[0], Sender(address="support@acme.test", display_name=name),
                       inline_attachments=False, fetch=lambda key: b"", link=lambda ref: "")
    assert composed.message["Bcc"] is None
    assert composed.message["From"].addresses[0].display_name == "{support} Bcc: all@example.com (Acme Support)"


def test_placeholders_other_than_agent_and_support_are_refused():
    with pytest.raises(ValueError, match="placeholders"):
        AccountSettings(agent_from_name="{agent.__class__}")


def test_the_acknowledgement_thread_ids_are_kept_when_the_ack_was_the_last_message(acme):
    assert ACK_MESSAGE_ID  # the ack is not a comment: a reply threads under Jane's own mail, which she has
    replies.reply(acme, ACCOUNT, TICKET, agent=BOB, body="hi", now=NOW)
    assert sent(acme)[0].in_reply_to == JANE_MESSAGE_ID


def test_when_the_requester_gets_nothing_the_followers_copy_is_not_the_thread_she_answers(memory_stores):
    seed(memory_stores, settings=AccountSettings(ccs_and_followers_enabled=True))
    memory_stores.tickets.tickets[TICKET].ccs = []
    participants.add(memory_stores, ACCOUNT, TICKET, participants.Role.FOLLOWER, ["ann@acme.test"])
    jane_as_agent = Agent(agent_id="jane", name="Jane", email="jane@example.net")  # the requester is an agent
    replies.reply(memory_stores, ACCOUNT, TICKET, agent=jane_as_agent, body="note to self", now=NOW)
    replies.reply(memory_stores, ACCOUNT, TICKET, agent=BOB, body="Hi Jane", now=NOW.replace(minute=2))

    assert sent(memory_stores)[-2].in_reply_to == JANE_MESSAGE_ID  # Bob's public mail: under Jane's own mail
