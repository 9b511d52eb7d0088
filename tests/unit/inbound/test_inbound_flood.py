"""The sender flood limit as an admin sees it: the 21st mail of one sender in an hour is suspended, and a mail that
Lambda retries (the invocation failed after counting it) is counted once and gets the same outcome again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from relaydesk.inbound.loops import count_sender, flood_key
from relaydesk.inbound.outcome import Outcome
from relaydesk.store.inbound_ports import InboundPorts
from relaydesk.store.memory import MemoryCounters, MemoryLedger

from .conftest import RECEIVED_AT, make_world, memory_stores_for_inbound
from .test_inbound_rules import mail_from

ACCOUNT = "A01M8000000000000AC"
FLOOD_KEY = flood_key(ACCOUNT, "flood@example.net", RECEIVED_AT)


class LedgerFailingOnce(MemoryLedger):
    """The decision's write fails once (DynamoDB throttled), after the flood counter was taken: Lambda retries."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def claim(self, ses_message_id: str, decision_json: str) -> str:
        if not self.failed:
            self.failed = True
            raise ConnectionError("DynamoDB unavailable")
        return super().claim(ses_message_id, decision_json)


def flood(world, count: int, prefix: str = "flood"):
    return [world.deliver(mail_from("flood@example.net", subject=f"{prefix} {i}"), ses_message_id=f"{prefix}{i:04d}")
            for i in range(count)]


def retried_once(world, raw: bytes, ses_message_id: str):
    """The first invocation counts the mail, then fails before its decision is stored; Lambda runs it again."""
    world.ports = InboundPorts(ledger=LedgerFailingOnce(), counters=world.ports.counters)
    with pytest.raises(ConnectionError):
        world.deliver(raw, ses_message_id=ses_message_id)
    return world.deliver(raw, ses_message_id=ses_message_id)


def test_the_21st_mail_of_one_sender_within_an_hour_is_suspended_as_rate_limited(world):
    assert world.stores.settings.sender_flood_threshold_per_hour == 20  # the default an admin gets

    results = flood(world, 21)

    assert [r.outcome for r in results] == [Outcome.NEW_TICKET] * 20 + [Outcome.SUSPENDED]
    suspended = world.ticket(results[-1].ticket_id)
    assert suspended.suspension_reason.value == "rate_limited"
    assert "sent 21 messages" in suspended.suspension_explanation and "limit is 20" in suspended.suspension_explanation
    assert world.ports.counters.values[FLOOD_KEY] == 21


def test_a_retried_invocation_counts_its_mail_once_and_makes_one_ticket(world):
    raw = mail_from("flood@example.net", subject="printer")

    result = retried_once(world, raw, "retry0001")

    assert result.outcome is Outcome.NEW_TICKET
    assert world.ports.counters.values[FLOOD_KEY] == 1
    assert len(world.stores.tickets.list_tickets(ACCOUNT)) == 2  # the seeded ticket and this one


def test_the_20th_mail_retried_after_the_21st_was_counted_is_still_a_normal_ticket():
    world = make_world()
    flood(world, 19)
    raw20 = mail_from("flood@example.net", subject="the 20th")
    world.ports = InboundPorts(ledger=LedgerFailingOnce(), counters=world.ports.counters)
    with pytest.raises(ConnectionError):  # the 20th is counted, then its invocation fails
        world.deliver(raw20, ses_message_id="twentieth")
    later = world.deliver(mail_from("flood@example.net", subject="the 21st"), ses_message_id="twentyfirst")

    retried = world.deliver(raw20, ses_message_id="twentieth")  # Lambda's retry, a minute later

    assert later.outcome is Outcome.SUSPENDED
    assert retried.outcome is Outcome.NEW_TICKET  # the count it got the first time: 20, within the limit
    assert world.ports.counters.values[FLOOD_KEY] == 21


def test_a_rate_limited_mail_retried_is_suspended_again_with_the_same_count():
    world = make_world(memory_stores_for_inbound(sender_flood_threshold_per_hour=3))
    flood(world, 3)

    result = retried_once(world, mail_from("flood@example.net", subject="the 4th"), "fourth")

    assert result.outcome is Outcome.SUSPENDED
    assert "sent 4 messages" in world.ticket(result.ticket_id).suspension_explanation
    assert world.ports.counters.values[FLOOD_KEY] == 4


def test_counts_are_per_account_per_sender_and_per_clock_hour():
    counters = MemoryCounters()
    at = datetime(2026, 11, 24, 9, 59, 59, tzinfo=UTC)
    assert [count_sender(counters, "A1", "kim@example.net", at, f"m{i}") for i in range(3)] == [1, 2, 3]
    assert count_sender(counters, "A1", "KIM@example.net", at, "m3") == 4  # one sender, however it is spelled
    assert count_sender(counters, "A2", "kim@example.net", at, "m4") == 1  # another account
    assert count_sender(counters, "A1", "lee@example.net", at, "m5") == 1  # another sender
    assert count_sender(counters, "A1", "kim@example.net", at + timedelta(seconds=1), "m6") == 1  # the next hour
    assert count_sender(counters, "A1", "kim@example.net", at, "m1") == 2  # a repeat gets its first count


def test_the_count_expires_an_hour_after_its_window():
    counters = MemoryCounters()
    at = datetime(2026, 11, 24, 9, 15, tzinfo=UTC)
    count_sender(counters, "A1", "kim@example.net", at, "m1")
    end_of_next_hour = int(datetime(2026, 11, 24, 11, 0, tzinfo=UTC).timestamp())
    assert counters.expiry == {flood_key("A1", "kim@example.net", at): end_of_next_hour}
