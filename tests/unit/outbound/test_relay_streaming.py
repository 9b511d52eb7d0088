"""The relay's messages streamed over a connection: while one is on the wire the next is claimed, composed and
signed, and its envelope rides with the previous final dot. A message claimed ahead that never reached the wire is
sent after a reconnect or released like any claimed message that was not sent: never lost, never sent twice
outside the documented window (a connection lost after a final dot)."""

from __future__ import annotations

import itertools
from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.outbound.policy import Outcome
from relaydesk.store.memory import MemoryOnce
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import make_world, sqs_record


class WatchedOnce(MemoryOnce):
    """The once guard, noting each claim and each stored outcome in order."""

    def __init__(self, events: list[tuple[str, str]]) -> None:
        super().__init__()
        self.events = events
        self.after_claim = lambda notification_id: None

    def claim(self, notification_id):
        claim = super().claim(notification_id)
        self.events.append(("claimed", notification_id))
        self.after_claim(notification_id)
        return claim

    def complete(self, claim, outcome):
        super().complete(claim, outcome)
        self.events.append(("stored", claim.notification_id))

    def claim_fresh(self, notification_ids):
        claims = super().claim_fresh(notification_ids)
        self.events.append(("claimed together" if claims else "not together", ",".join(notification_ids)))
        return claims


@pytest.fixture
def world(memory_stores):
    return make_world(memory_stores)


def _sent_ids(world) -> list[str]:
    return [message_from_bytes(data, policy=default)["X-Relaydesk-Email-Id"]
            for _, _, data in world.smarthost.transactions]


def _claimable(once: MemoryOnce, notification_id: str) -> bool:
    """Nobody holds the notification's claim and no outcome is stored: the next attempt may send it."""
    claim = once.claim(notification_id)
    once.release(claim)
    return claim.stored is None


def test_one_connection_claims_the_next_message_while_the_previous_is_in_flight_one_round_trip_each(world):
    events: list[tuple[str, str]] = []
    world.once = WatchedOnce(events)
    world.once.claim_fresh = lambda notification_ids: None  # claimed one by one (some had a record), as they go
    notifications = [world.notification() for _ in range(5)]
    ids = [n.notification_id for n in notifications]
    results = world.relay(connections_per_smarthost=1).relay_batch([sqs_record(n) for n in notifications])

    assert [r.result.outcome for r in results] == [Outcome.DELIVERED] * 5
    assert sorted(_sent_ids(world)) == sorted(ids)  # each once
    # Every envelope after the first rode in the same write as the previous message's final dot.
    assert world.smarthost.connections == 1 and world.smarthost.rides == 4
    for earlier, later in itertools.pairwise(ids):
        # Claimed (and prepared) before the message ahead of it had its outcome stored: it was in flight.
        assert events.index(("claimed", later)) < events.index(("stored", earlier))
    assert {world.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}


def test_the_message_that_rode_with_a_dropped_final_dot_is_sent_after_a_reconnect(world):
    world.smarthost.replies = [(None, "")]  # the first end of data: taken, then the connection drops unanswered
    first, second, third = (world.notification() for _ in range(3))
    results = world.relay(connections_per_smarthost=1).relay_batch(
        [sqs_record(n) for n in (first, second, third)])

    outcomes = [r.result.outcome for r in results]
    assert outcomes == [Outcome.DEFERRED, Outcome.DELIVERED, Outcome.DELIVERED]
    # The first is in doubt (the documented window): deferred, its claim released for the next attempt. The second
    # had only its envelope on the dropped connection: sent once, on the new one.
    assert _sent_ids(world).count(second.notification_id) == 1
    assert world.smarthost.connections == 2
    assert _claimable(world.once, first.notification_id)
    assert world.record(first).status is DeliveryStatus.DEFERRED


def test_claimed_ahead_and_never_written_is_released_when_the_connection_cannot_come_back(world):
    world.smarthost.replies = [(None, ""), (None, "")]  # dropped after the first dot, and again after the next
    notifications = [world.notification() for _ in range(4)]
    relay = world.relay(connections_per_smarthost=1)
    results = relay.relay_batch([sqs_record(n) for n in notifications])

    assert [r.result.outcome for r in results] == [Outcome.DEFERRED] * 4  # nothing lost: each says why
    never_written = [n.notification_id for n in notifications[2:]]
    assert not set(never_written) & set(_sent_ids(world))
    assert all(_claimable(world.once, notification_id) for notification_id in never_written)

    world.smarthost.transactions.clear()
    again = relay.relay_batch([sqs_record(n, receive_count=2) for n in notifications])
    assert [r.result.outcome for r in again] == [Outcome.DELIVERED] * 4
    assert sorted(_sent_ids(world)) == sorted(n.notification_id for n in notifications)


def test_a_message_claimed_ahead_when_the_time_runs_out_is_not_sent_and_its_claim_is_released(world):
    events: list[tuple[str, str]] = []
    world.once = WatchedOnce(events)
    notifications = [world.notification() for _ in range(3)]
    remaining = [3_600_000]

    def running_out(notification_id: str) -> None:
        if notification_id == notifications[1].notification_id:
            remaining[0] = 2_000  # claimed ahead; then the invocation's time runs out before it is handed out

    world.once.after_claim = running_out
    world.once.claim_fresh = lambda notification_ids: None  # claimed one by one, as they go
    results = world.relay(connections_per_smarthost=1).relay_batch([sqs_record(n) for n in notifications],
                                                                   remaining_ms=lambda: remaining[0])

    assert [r.result.outcome for r in results] == [Outcome.DELIVERED, Outcome.DEFERRED, Outcome.DEFERRED]
    assert _sent_ids(world) == [notifications[0].notification_id]
    assert "not sent" in results[1].result.reply and _claimable(world.once, notifications[1].notification_id)
    # The third was never claimed: the deadline check came first.
    assert ("claimed", notifications[2].notification_id) not in events and not results[2].result.smtp_code


def test_a_batch_is_claimed_in_one_write_and_what_it_did_not_send_is_released_at_the_end(world):
    events: list[tuple[str, str]] = []
    world.once = WatchedOnce(events)
    notifications = [world.notification() for _ in range(4)]
    remaining = [3_600_000]

    def running_out(*_) -> None:
        if len(world.smarthost.transactions) == 1:
            remaining[0] = 2_000  # the time runs out after the first (the second rode with it already)

    world.smarthost.on_transaction = running_out
    results = world.relay(connections_per_smarthost=1).relay_batch([sqs_record(n) for n in notifications],
                                                                   remaining_ms=lambda: remaining[0])

    assert events[0] == ("claimed together", ",".join(n.notification_id for n in notifications))
    assert not [event for event in events if event[0] == "claimed"]  # no claim one by one
    outcomes = [r.result.outcome for r in results]
    assert outcomes[:2] == [Outcome.DELIVERED] * 2 and set(outcomes[2:]) == {Outcome.DEFERRED}
    # Claimed with the batch, never sent: released (not held until the claim's window ends).
    assert all(_claimable(world.once, n.notification_id) for n in notifications[2:])
    assert world.once.stored(notifications[0].notification_id) is not None


def test_a_batch_with_one_notification_already_claimed_elsewhere_is_claimed_one_by_one(world):
    events: list[tuple[str, str]] = []
    world.once = WatchedOnce(events)
    notifications = [world.notification() for _ in range(3)]
    world.once.claim(notifications[1].notification_id)  # another invocation has it
    results = world.relay().relay_batch([sqs_record(n) for n in notifications])

    assert events[1][0] == "not together"  # nothing was claimed by the batch write
    assert [r.result.outcome for r in results] == [Outcome.DELIVERED, Outcome.DEFERRED, Outcome.DELIVERED]
    assert results[1].result.reply == "another invocation is delivering this notification"
    assert sorted(_sent_ids(world)) == sorted([notifications[0].notification_id, notifications[2].notification_id])
