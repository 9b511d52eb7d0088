"""A smarthost group's connections within one batch: the first opens alone, the others join once it delivered, each
notification is sent by exactly one of them, and a connection that cannot open leaves its share to the others."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.addresses.limits import limits_of, set_limits
from relaydesk.addresses.model import ConnectorState
from relaydesk.outbound.connector import CONNECTIONS_PER_SMARTHOST
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.shaper import Shaper, mailbox_key
from relaydesk.outbound.shaping import Ask, ShaperState
from relaydesk.store.memory import MemoryOnce, MemoryShaperStates
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import SUPPORT, make_world, sqs_record
from tests.unit.outbound.test_shaper import FixedClock


@pytest.fixture
def world(memory_stores):
    return _microsoft_365(make_world(memory_stores))


def _microsoft_365(world):
    """Microsoft 365's profile allows 3 connections per mailbox (the profile of an unknown server, 2)."""
    set_limits(world.stores.directory, "A1", SUPPORT, provider="microsoft365")
    return world


def _message_ids(world) -> list[str]:
    return [message_from_bytes(data, policy=default)["Message-ID"] for _, _, data in world.smarthost.transactions]


def test_a_batch_for_one_mailbox_is_spread_over_three_connections_each_notification_sent_once(world):
    world.smarthost.slow_until_open = 3
    notifications = [world.notification() for _ in range(10)]
    relay = world.relay()
    results = relay.relay_batch([sqs_record(n) for n in notifications])

    assert [r.result.outcome for r in results] == [Outcome.DELIVERED] * 10
    assert CONNECTIONS_PER_SMARTHOST == 3 and world.smarthost.connections == 3
    ids = _message_ids(world)
    assert len(ids) == 10 and len(set(ids)) == 10  # every notification once, none twice
    assert {world.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}
    assert len(relay.pool) == 3 and world.smarthost.open_now == 3  # all kept open for the next invocation

    relay.relay_batch([sqs_record(world.notification()) for _ in range(10)])
    assert world.smarthost.connections == 3 and len(set(_message_ids(world))) == 20  # the warm ones were reused


def test_no_more_connections_than_messages_left_and_never_more_than_the_limit(world):
    world.smarthost.slow_until_open = 2
    world.relay(connections_per_smarthost=5).relay_batch([sqs_record(world.notification()) for _ in range(2)])
    # The second was claimed and prepared while the first was in flight, and rode with it: none was left for
    # another connection when the first delivered.
    assert world.smarthost.connections == 1 and world.smarthost.rides == 1


def test_refused_credentials_cost_one_login_not_one_per_connection(memory_stores):
    world = _microsoft_365(make_world(memory_stores))
    world.smarthost.password = "changed-on-the-server"
    notifications = [world.notification() for _ in range(6)]
    results = world.relay().relay_batch([sqs_record(n) for n in notifications])

    assert world.smarthost.logins == [(SUPPORT, False)]  # the other connections never opened
    assert {r.result.outcome for r in results} == {Outcome.HELD}
    assert world.address().connector.state is ConnectorState.AUTH_FAILED
    assert world.smarthost.transactions == []


def test_a_connection_the_server_refuses_leaves_its_share_to_the_others_and_changes_nothing(world):
    world.smarthost.max_connections = 1  # a second at once is refused (432 4.3.2, as Microsoft 365 a fourth)
    notifications = [world.notification() for _ in range(10)]
    results = world.relay().relay_batch([sqs_record(n) for n in notifications])

    assert [r.result.outcome for r in results] == [Outcome.DELIVERED] * 10
    assert world.smarthost.connections == 3  # tried three, the first carried the batch
    ids = _message_ids(world)
    assert len(ids) == 10 and len(set(ids)) == 10
    address = world.address()
    assert address.connector.state is ConnectorState.ACTIVE and address.last_error is None


def test_a_connection_lost_after_the_final_dot_defers_only_that_notification(world):
    world.smarthost.replies = [(250, "2.0.0 Ok: queued as A1"), (None, "")]  # the second answer never comes
    notifications = [world.notification() for _ in range(8)]
    results = world.relay().relay_batch([sqs_record(n) for n in notifications])

    outcomes = [r.result.outcome for r in results]
    assert outcomes.count(Outcome.DEFERRED) == 1 and outcomes.count(Outcome.DELIVERED) == 7
    ids = _message_ids(world)
    assert len(ids) == 8 and len(set(ids)) == 8  # the doubtful one went once; it is retried with its Message-ID


def test_a_login_refused_on_any_connection_mid_batch_holds_the_address_and_parks_the_rest(world):
    # The password changed on the server after the first message: the next end of data is refused with 535.
    world.smarthost.replies = [(250, "2.0.0 Ok: queued as A1"), (535, "5.7.8 Authentication credentials invalid")]
    notifications = [world.notification() for _ in range(10)]
    results = world.relay().relay_batch([sqs_record(n) for n in notifications])

    outcomes = {r.notification.notification_id: r.result.outcome for r in results}
    held = {n for n, outcome in outcomes.items() if outcome is Outcome.HELD}
    delivered = {n for n, outcome in outcomes.items() if outcome is Outcome.DELIVERED}
    assert held and delivered | held == set(outcomes)  # nothing deferred, nothing lost
    # Every delivered one went out once; what the hold stopped went nowhere and waits parked for the fix.
    assert sorted(_message_ids(world)) == sorted(f"<{n}@acme.test>" for n in delivered)
    assert held <= {n.notification_id for n in world.stores.held.list(SUPPORT)}  # the refused one too
    assert world.address().connector.state is ConnectorState.AUTH_FAILED  # held, and nobody released it after


def test_every_notification_is_claimed_before_any_connection_sends_it(world):
    events: list[tuple[str, str]] = []

    class WatchedOnce(MemoryOnce):
        def claim(self, notification_id):
            events.append(("claimed", notification_id))
            return super().claim(notification_id)

        def claim_fresh(self, notification_ids):
            claims = super().claim_fresh(notification_ids)
            events.extend(("claimed", notification_id) for notification_id in claims or ())
            return claims

    class WatchedWire(list):
        def append(self, transaction):
            events.append(("sent", message_from_bytes(transaction[2], policy=default)["X-Relaydesk-Email-Id"]))
            super().append(transaction)

    world.once = WatchedOnce()
    world.smarthost.transactions = WatchedWire()
    world.smarthost.slow_until_open = 3
    notifications = [world.notification() for _ in range(10)]
    world.relay().relay_batch([sqs_record(n) for n in notifications])

    assert world.smarthost.connections == 3
    for notification in notifications:
        claimed = events.index(("claimed", notification.notification_id))
        assert events.index(("sent", notification.notification_id)) > claimed
    assert len([event for event in events if event[0] == "sent"]) == 10


def test_the_mailboxs_connection_leases_bound_the_group_when_other_invocations_send_for_it(world):
    clock = FixedClock(1_000_000.0)
    states = PeakLeases()
    shaper = Shaper(states, clock)
    key, limits = mailbox_key("smtp.acme.test", SUPPORT), limits_of(world.address())
    # Another invocation sends for the mailbox over two connections: one is left of Microsoft 365's three.
    assert shaper.take(key, limits, [Ask(1)], lease_id="elsewhere", lease_seconds=60).lease == "elsewhere"
    assert shaper.lease_connections(key, limits, lease_ids=["elsewhere-2"], lease_seconds=60) == ["elsewhere-2"]
    relay = world.relay(shaper=shaper)
    notifications = [world.notification() for _ in range(10)]
    results = relay.relay_batch([sqs_record(n) for n in notifications])

    assert [r.result.outcome for r in results] == [Outcome.DELIVERED] * 10
    assert world.smarthost.connections == 1  # the group's one lease: no more connections than the mailbox allows
    assert states.peak == 3
    assert set(_leases(states, key)) == {"elsewhere", "elsewhere-2"}  # its own lease given back

    shaper.give_back(key, "elsewhere", [clock.now()], sent_recipients=1, connections=("elsewhere-2",))
    states.peak = 0
    relay.relay_batch([sqs_record(world.notification()) for _ in range(10)])
    assert states.peak == 3  # the batch's first lease and two for further connections, never more
    assert 2 <= world.smarthost.connections <= 3  # the warm one, and new ones on those leases (or warm again)
    assert _leases(states, key) == {}  # every lease given back after the batch


class PeakLeases(MemoryShaperStates):
    """The most connection leases any stored state of a mailbox held."""

    peak = 0

    def write(self, key, body, version):
        self.peak = max(self.peak, len(ShaperState.model_validate_json(body).leases))
        return super().write(key, body, version)


def _leases(states: MemoryShaperStates, key: str) -> dict:
    return ShaperState.model_validate_json(states.read(key).body).leases
