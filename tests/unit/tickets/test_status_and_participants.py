"""Status, assignee, CCs and followers as an agent changes them, within the account's rules."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from relaydesk.accounts import AccountSettings
from relaydesk.errors import RuleViolation
from relaydesk.notification import NotificationKind
from relaydesk.tickets import participants, status
from relaydesk.tickets.model import Agent, TicketStatus
from relaydesk.tickets.participants import Role

from tests.unit.tickets.conftest import ACCOUNT, BOB, JANE_MESSAGE_ID, TICKET, seed, sent

NOW = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)


def test_solving_tells_the_requester_and_ccs_once_even_when_two_agents_solve_at_once(acme):
    results = []

    def solve():
        results.append(status.change_status(acme, ACCOUNT, TICKET, "solved", agent=BOB, now=NOW))

    threads = [threading.Thread(target=solve) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(r.changed for r in results) == 1
    [notice] = sent(acme)
    assert notice.kind is NotificationKind.TICKET_SOLVED and notice.in_reply_to == JANE_MESSAGE_ID
    assert notice.recipients == ["jane@example.net"] and notice.cc == ["carol@example.org"]
    assert "marked your request" in notice.text_body and "marked your request" in notice.html_body
    assert acme.tickets.get_ticket(TICKET).status is TicketStatus.SOLVED


def test_solving_sends_nothing_when_the_account_has_the_solved_notification_off(memory_stores):
    seed(memory_stores, settings=AccountSettings(notify_requester_on_solved=False))
    change = status.change_status(memory_stores, ACCOUNT, TICKET, TicketStatus.SOLVED, agent=BOB, now=NOW)
    assert change.changed and change.notification_id is None and sent(memory_stores) == []


@pytest.mark.parametrize("wanted", ["open", "pending"])
def test_other_status_changes_send_nothing(acme, wanted):
    change = status.change_status(acme, ACCOUNT, TICKET, wanted, agent=BOB, now=NOW)
    assert change.ticket.status.value == wanted and change.ticket.updated_at == NOW and sent(acme) == []


@pytest.mark.parametrize("wanted", ["new", "suspended", "bogus", "SOLVED", ""])
def test_an_agent_cannot_set_any_other_status(acme, wanted):
    with pytest.raises(RuleViolation):
        status.change_status(acme, ACCOUNT, TICKET, wanted, agent=BOB)
    assert acme.tickets.get_ticket(TICKET).status is TicketStatus.NEW


def test_assigning_and_unassigning(acme):
    ann = Agent(agent_id="agent-ann", name="Ann")
    assert status.assign(acme, ACCOUNT, TICKET, ann, now=NOW).assignee == ann
    assert status.assign(acme, ACCOUNT, TICKET, None, now=NOW).assignee is None


def test_ccs_are_added_and_removed_lower_cased_and_once(acme):
    ticket = participants.add(acme, ACCOUNT, TICKET, Role.CC, ["Dave@Example.ORG", "dave@example.org"], now=NOW)
    assert ticket.ccs == ["carol@example.org", "dave@example.org"] and ticket.updated_at == NOW
    assert participants.remove(acme, ACCOUNT, TICKET, Role.CC, ["carol@example.org"]).ccs == ["dave@example.org"]


@pytest.mark.parametrize(("role", "address", "rule"), [
    (Role.CC, "jane@example.net", "cc_is_requester"),
    (Role.CC, "support@acme.test", "own_address"),
    (Role.CC, "support@subacme.mail.relaydesk.test", "own_address"),
    (Role.CC, "a@b.test, c@d.test", "invalid_address"),
    (Role.CC, "x@y.test\r\nBcc: z@evil.test", "invalid_address"),
    (Role.CC, "a" * 300 + "@example.org", "invalid_address"),
    (Role.FOLLOWER, "dave@example.org", "follower_not_agent"),
])
def test_ccs_and_followers_keep_the_accounts_rules(acme, role, address, rule):
    with pytest.raises(RuleViolation) as refused:
        participants.add(acme, ACCOUNT, TICKET, role, [address])
    assert refused.value.code == rule
    assert len(str(refused.value)) < 300  # a hostile value is never echoed at length


def test_nobody_can_be_copied_while_the_account_has_ccs_and_followers_off(memory_stores):
    seed(memory_stores, settings=AccountSettings(ccs_and_followers_enabled=False))
    with pytest.raises(RuleViolation) as refused:
        participants.add(memory_stores, ACCOUNT, TICKET, Role.CC, ["dave@example.org"])
    assert refused.value.code == "ccs_and_followers_off"


def test_concurrent_cc_additions_all_land_and_the_limit_holds(acme):
    def add(index):
        try:
            participants.add(acme, ACCOUNT, TICKET, Role.CC, [f"user{index}@example.org"])
        except RuleViolation:
            pass

    threads = [threading.Thread(target=add, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(acme.tickets.get_ticket(TICKET).ccs) == participants.MAX_CCS


def test_followers_are_agents_on_the_accounts_own_domain(acme):
    ticket = participants.add(acme, ACCOUNT, TICKET, Role.FOLLOWER, ["ann@acme.test"])
    assert ticket.followers == ["ann@acme.test"]
    assert participants.remove(acme, ACCOUNT, TICKET, Role.FOLLOWER, ["ann@acme.test"]).followers == []
