"""The deployed relay handler with the shared shaper (moto built from template.yaml, a real local smarthost): over
the mailbox's limit a notification goes back to the queue as a new SQS message in its account's group, carrying
its turn; the original is deleted; nothing counts toward the DLQ."""

from __future__ import annotations

import pytest
from relaydesk.addresses.limits import set_limits
from relaydesk.addresses.providers import LimitOverrides
from relaydesk.tickets.model import DeliveryStatus

from tests.integration.relay_harness import ACCOUNT, relay_harness

ADDRESS = "support@acme.test"


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    yield from relay_harness(aws_stack_env, monkeypatch)


def all_messages(relay) -> list[dict]:
    """Every message in the queue, delays and visibility notwithstanding (moto's own view)."""
    from moto.sqs.models import sqs_backends

    url = relay.stores.settings.notifications_queue_url
    queue = sqs_backends["123456789012"]["us-east-1"].get_queue(url.rsplit("/", 1)[1])
    return list(queue._messages)


def test_the_third_of_a_two_a_minute_mailbox_waits_as_a_new_message_in_its_accounts_group(relay, smarthost):
    relay.connect(ADDRESS, smarthost)
    set_limits(relay.stores.directory, ACCOUNT, ADDRESS, provider="microsoft365",
               overrides=LimitOverrides(messages_per_minute=2))
    notifications = [relay.notification(ADDRESS) for _ in range(3)]
    relay.enqueue(*notifications)
    assert {m.group_id for m in all_messages(relay)} == {ACCOUNT}  # every send names its account's group

    assert relay.poll() == 3
    assert len(smarthost.wait_for(2)) == 2
    assert relay.failures() == []  # all three originals are deleted
    [waiting] = all_messages(relay)  # the third: a new message, delayed until its turn
    assert waiting.group_id == ACCOUNT and waiting.approximate_receive_count == 0
    assert waiting.delayed_until > waiting.sent_timestamp + 50_000  # about a minute away (ms)
    carried = {name: value["StringValue"] for name, value in waiting.message_attributes.items()}
    assert float(carried["relaydesk_turn_at"]) > 0 and float(carried["relaydesk_waiting_since"]) > 0
    assert "relaydesk_attempts" not in carried  # no attempt was made: none to carry
    waited = [n for n in notifications if relay.record(n).status is DeliveryStatus.WAITING]
    assert len(waited) == 1 and "Microsoft 365: 2 messages a minute" in relay.record(waited[0]).attempts[-1].reply

    waiting.delayed_until = 0  # comes back early (as a turn further than 15 minutes away does)
    assert relay.poll() == 1
    assert relay.failures() == [] and len(smarthost.received) == 2  # not due: queued again without a send
    [again] = all_messages(relay)
    assert again.message_attributes["relaydesk_turn_at"] == waiting.message_attributes["relaydesk_turn_at"]
    assert len(relay.record(waited[0]).attempts) == 1  # the wait is on the ticket once
