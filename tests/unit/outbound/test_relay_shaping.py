"""The relay with the shared shaper (memory store, fake smarthost, no sockets): over the mailbox's limit a
notification waits for its turn as a new queue message, recorded once on its ticket, never counted as an attempt;
a throttle reply slows the mailbox and fails nothing."""

from __future__ import annotations

import json
import math
import time

import pytest
from relaydesk.addresses.limits import set_limits
from relaydesk.addresses.model import ConnectorState
from relaydesk.errors import ShaperBusyError
from relaydesk.outbound.batch import batch_response
from relaydesk.outbound.policy import Outcome, retry_delay
from relaydesk.outbound.shaper import Shaper
from relaydesk.outbound.split import NOTIFICATION_ID
from relaydesk.outbound.turns import HOLD, MIN_REMAINING_MS, PATIENCE
from relaydesk.store.memory import MemoryDeadLetters, MemoryShaperStates
from relaydesk.store.ports import QueueCarry
from relaydesk.store.sqs import attributes
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import SUPPORT, make_world, sqs_record
from tests.unit.outbound.test_shaper import FixedClock


def carried(notification, carry: QueueCarry, receive_count: int = 1) -> dict:
    """The SQS record of a notification the relay queued again, as Lambda hands it over."""
    record = sqs_record(notification, receive_count, message_id=f"m{time.monotonic_ns()}")
    record["messageAttributes"] = {name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
                                   for name, value in attributes(notification, carry).items()}
    return record


@pytest.fixture
def world(memory_stores):
    world = make_world(memory_stores)
    set_limits(world.stores.directory, "A1", SUPPORT, provider="microsoft365")  # 30 a minute, 3 connections
    return world


@pytest.fixture
def clock():
    return FixedClock(1_000_000.0)


@pytest.fixture
def states():
    return MemoryShaperStates()


@pytest.fixture
def relay(world, states, clock):
    return world.relay(shaper=Shaper(states, clock))


def batch(world, n, **overrides):
    return [world.notification(**overrides) for _ in range(n)]


def test_over_the_minute_a_notification_waits_as_a_new_queue_message_and_its_ticket_says_so_once(world, relay):
    notifications = batch(world, 40)
    results = []
    for start in range(0, 40, 10):
        results += relay.relay_batch([sqs_record(n) for n in notifications[start:start + 10]])

    assert len(world.smarthost.transactions) == 30
    waiting = [r for r in results if r.result.outcome is Outcome.WAITING]
    assert len(waiting) == 10
    assert batch_response(results, None) == {"batchItemFailures": []}  # every original message is deleted
    queued = {n.notification_id: delay for n, delay in world.stores.queue.sent}
    assert set(queued) == {r.notification.notification_id for r in waiting}
    assert all(1 <= delay <= 900 for delay in queued.values())
    carry = world.stores.queue.carried[waiting[0].notification.notification_id]
    assert carry.attempts == 0 and carry.waiting_since and carry.turn_at >= 1_000_060.0
    record = world.record(waiting[0].notification)
    assert record.status is DeliveryStatus.WAITING
    assert record.attempts[-1].reply.startswith("waiting for the mailbox's sending limit (Microsoft 365: 30 messages")


def test_a_waiting_notification_back_before_its_turn_is_queued_again_without_asking_or_recording(world, relay,
                                                                                                    states, clock):
    notification = world.notification()
    carry = QueueCarry(attempts=0, waiting_since=time.time(), turn_at=clock.now() + 3600)
    writes = states.writes
    [result] = relay.relay_batch([carried(notification, carry)])
    assert result.result.outcome is Outcome.WAITING and result.settled and 900 == result.requeue_in
    assert states.writes == writes and world.record(notification) is None
    assert world.stores.queue.carried[notification.notification_id].turn_at == carry.turn_at


def test_at_its_turn_a_waiting_notification_goes_before_new_ones(world, relay, clock):
    for _ in range(3):
        relay.relay_batch([sqs_record(n) for n in batch(world, 10)])
    waiting, *later = [r for _ in range(4)
                       for r in relay.relay_batch([sqs_record(n) for n in batch(world, 10)])]
    carry = world.stores.queue.carried[waiting.notification.notification_id]
    assert max(world.stores.queue.carried[r.notification.notification_id].turn_at for r in later) > carry.turn_at
    clock.at = carry.turn_at
    newcomer = world.notification()
    results = relay.relay_batch([sqs_record(newcomer), carried(waiting.notification, carry)])
    assert [r.result.outcome for r in results] == [Outcome.WAITING, Outcome.DELIVERED]


def test_waiting_never_counts_toward_the_dlq_and_real_attempts_are_carried_to_it(world, relay, clock):
    """maxReceiveCount is 5: a notification that waits ten times ends delivered, not in the DLQ; one that fails
    three times, waits, then fails twice more has had its five attempts and is moved to the DLQ by the relay."""
    notification = world.notification()
    carry = QueueCarry(attempts=0, waiting_since=time.time(), turn_at=None)
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])  # the minute is full
    for _ in range(10):
        [result] = relay.relay_batch([carried(notification, carry)])
        assert result.result.outcome is Outcome.WAITING and not result.failed
        carry = world.stores.queue.carried[notification.notification_id]
        assert carry.attempts == 0
    clock.at = carry.turn_at
    [result] = relay.relay_batch([carried(notification, carry)])
    assert result.result.outcome is Outcome.DELIVERED

    failing = world.notification()
    refused = (451, "4.3.0 try again later")
    clock.at += 3600  # a fresh minute
    for receive in (1, 2, 3):
        world.smarthost.replies = [refused]
        [result] = relay.relay_batch([sqs_record(failing, receive)])
        assert result.failed and result.retry_in == retry_delay(receive)
    for _ in range(30):  # the minute fills up meanwhile
        relay.relay_batch([sqs_record(world.notification())])
    [result] = relay.relay_batch([sqs_record(failing, 4)])  # its fourth receive only waits
    assert result.result.outcome is Outcome.WAITING and not result.failed
    carry = world.stores.queue.carried[failing.notification_id]
    assert carry.attempts == 3  # three real attempts travel with it; the wait is not one
    clock.at = carry.turn_at
    world.smarthost.replies = [refused]
    [result] = relay.relay_batch([carried(failing, carry, receive_count=1)])
    assert result.failed and result.retry_in == retry_delay(4)  # attempt 4
    world.smarthost.replies = [refused]
    [result] = relay.relay_batch([carried(failing, carry, receive_count=2)])
    assert result.last_attempt and result.receive_count == 5  # attempt 5: moved to the DLQ by the relay itself
    dead_letters = MemoryDeadLetters()
    assert batch_response([result], None, dead_letters) == {"batchItemFailures": []}  # moved, so released
    [dead] = dead_letters.peek()
    assert json.loads(dead.body)["notification_id"] == failing.notification_id and dead.attempts == 5
    assert "451" in dead.reason
    assert "moves to the dead-letter queue" in world.record(failing).attempts[-1].reply


def test_a_throttle_reply_pauses_the_mailbox_fails_nothing_holds_nothing_and_the_rest_waits(world, relay, states):
    world.smarthost.replies = [(250, "2.0.0 Ok"), (432, "4.3.2 Concurrent connections limit exceeded.")]
    # Answers take a moment, as across a network: an instant fake let another connection run through the whole
    # backlog before the throttled one had recorded the pause (1 run in ~25), which no real server allows.
    world.smarthost.answer_delay = 0.05
    notifications = batch(world, 10)
    results = relay.relay_batch([sqs_record(n) for n in notifications])
    # The first delivered; the group's other connections, opened then, may have had a message in flight when the
    # 432 came (it cannot be called back): every other one waits.
    outcomes = [r.result.outcome for r in results]
    assert outcomes[0] is Outcome.DELIVERED and outcomes.count(Outcome.THROTTLED) == 1
    assert set(outcomes[1:]) <= {Outcome.DELIVERED, Outcome.THROTTLED, Outcome.WAITING}
    assert outcomes.count(Outcome.WAITING) >= 1
    assert len(world.smarthost.transactions) == outcomes.count(Outcome.DELIVERED)
    assert all(not r.failed for r in results)
    [stopped] = [n for n, outcome in zip(notifications, outcomes, strict=True) if outcome is Outcome.THROTTLED]
    throttled = world.record(stopped).attempts[-1]
    assert throttled.status is DeliveryStatus.WAITING and throttled.smtp_code == 432
    assert "allows three connections per mailbox" in throttled.reply
    address = world.address()
    assert address.connector.state is ConnectorState.ACTIVE and world.stores.held.list(SUPPORT) == []
    assert all(25 <= delay <= 31 for n, delay in world.stores.queue.sent)  # the row's 30 s pause

    world.smarthost.replies = []  # after the pause the throttled one is sent: its outcome was never stored final
    later = world.relay(shaper=relay.turns.shaper)
    relay.turns.clock.at += 31
    carry = world.stores.queue.carried[stopped.notification_id]
    [again] = later.relay_batch([carried(stopped, carry)])
    assert again.result.outcome is Outcome.DELIVERED and not again.result.duplicate


def test_microsofts_continuous_error_throttling_is_a_wait_not_a_failure(world, relay):
    world.smarthost.replies = [(550, "5.2.252 Sender throttled due to continuous send as denied errors")]
    notification = world.notification()
    [result] = relay.relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.THROTTLED and not result.failed
    reply = world.record(notification).attempts[-1].reply
    assert "Send As" in reply and result.requeue_in >= 15 * 60 - 1


def test_recipients_over_the_per_message_limit_go_in_several_messages_each_recorded(world, relay):
    set_limits(world.stores.directory, "A1", SUPPORT, provider="google")  # 100 recipients per message
    notification = world.notification(recipients=[f"r{i}@example.net" for i in range(180)],
                                       cc=[f"c{i}@example.net" for i in range(70)])
    [result] = relay.relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED
    [(_, first_rcpts, _)] = world.smarthost.transactions
    assert len(first_rcpts) == 100
    parts = [n for n, delay in world.stores.queue.sent]
    assert [(len(p.recipients), len(p.cc)) for p in parts] == [(80, 20), (50, 0)]
    assert all(NOTIFICATION_ID.fullmatch(p.notification_id) for p in parts)
    for part in parts:
        record = world.record(part)
        assert record.status is DeliveryStatus.QUEUED and "part" in record.attempts[-1].reply
    original = world.record(notification)
    assert any("at most 100 recipients per message" in a.reply for a in original.attempts)
    assert original.status is DeliveryStatus.DELIVERED

    again = relay.relay_batch([sqs_record(part) for part in parts])  # each part is sent once, as a whole
    assert [r.result.outcome for r in again] == [Outcome.DELIVERED] * 2
    assert sorted(len(t[1]) for t in world.smarthost.transactions) == [50, 100, 100]


def test_when_the_queue_refuses_the_new_message_the_old_one_waits_by_its_visibility(world, relay):
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])
    notification = world.notification()
    world.stores.queue.refuse.add(notification.notification_id)
    [result] = relay.relay_batch([sqs_record(notification)])
    assert result.failed and 1 <= result.retry_in <= 900 and not result.settled


class Unreachable(MemoryShaperStates):
    def read(self, key):
        raise ShaperBusyError("DynamoDB is unreachable")


def test_without_the_shapers_state_nothing_is_sent_unshaped_the_batch_waits(world, clock):
    relay = world.relay(shaper=Shaper(Unreachable(), clock))
    results = relay.relay_batch([sqs_record(n) for n in batch(world, 3)])
    assert [r.result.outcome for r in results] == [Outcome.WAITING] * 3
    assert world.smarthost.transactions == [] and all(r.settled for r in results)
    assert all(delay == 30 for _, delay in world.stores.queue.sent)


def test_a_notification_that_waited_past_the_queues_retention_goes_to_the_dlq_and_says_so(world, relay):
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])
    notification = world.notification()
    [result] = relay.relay_batch([carried(notification, QueueCarry(0, time.time() - 5 * 86400, None))])
    assert result.last_attempt and not result.settled
    dead_letters = MemoryDeadLetters()
    assert batch_response([result], None, dead_letters) == {"batchItemFailures": []}  # moved, so released
    [dead] = dead_letters.peek()
    assert json.loads(dead.body)["notification_id"] == notification.notification_id
    assert "waited more than 4 days" in dead.reason
    assert "waited more than 4 days" in world.record(notification).attempts[-1].reply


@pytest.fixture
def sleeps(clock, monkeypatch):
    """The relay's in-invocation waits, on the fake clock: each sleep moves it on and is noted."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.at += seconds

    monkeypatch.setattr("relaydesk.outbound.turns.time.sleep", sleep)
    return slept


def test_a_waiting_notification_comes_back_before_its_turn_and_waits_for_it_in_the_invocation(world, relay, clock,
                                                                                                sleeps):
    """SQS delays are whole seconds: rounded down, the notification comes back up to a second before its turn and
    the invocation waits for it, so its slot is used when it frees; a newcomer in the same batch does not take it."""
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])  # the minute's 30, all at once
    waiting, *_ = [r for start in range(3) for r in relay.relay_batch([sqs_record(n) for n in batch(world, 10)])]
    carry = world.stores.queue.carried[waiting.notification.notification_id]  # 30 turns: the next minute is full
    assert waiting.requeue_in == math.floor(carry.turn_at - clock.at) == 60  # turn at +60.05 s: back at +60 s

    clock.at = carry.turn_at - 0.8  # had its delay been rounded down by 0.8 s; one more arrives meanwhile
    newcomer = world.notification()
    results = relay.relay_batch([sqs_record(newcomer), carried(waiting.notification, carry)])

    assert [r.result.outcome for r in results] == [Outcome.WAITING, Outcome.DELIVERED]
    assert len(world.smarthost.transactions) == 31
    assert sleeps and clock.at >= carry.turn_at  # it waited for its turn, and not a moment past it
    assert clock.at - carry.turn_at < 0.05
    assert world.stores.queue.carried[newcomer.notification_id].turn_at >= carry.turn_at + 60  # behind the line


def test_behind_a_batching_window_a_waiting_notification_is_queued_that_much_earlier_and_waited_for(world, states,
                                                                                                      clock, sleeps):
    """The event source may hold a message for its batching window before the relay gets it: queued again that much
    earlier, it is there in time, however soon the batch fills; the invocation waits the window longer."""
    relay = world.relay(shaper=Shaper(states, clock))
    relay.turns.batching_window = 2.0
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])
    [waiting] = relay.relay_batch([sqs_record(world.notification())])
    carry = world.stores.queue.carried[waiting.notification.notification_id]
    assert waiting.requeue_in == math.floor(carry.turn_at - clock.at - 2.0) == 58

    clock.at += waiting.requeue_in  # the batch filled at once: the relay gets it 2.05 s before its turn
    [result] = relay.relay_batch([carried(waiting.notification, carry)])
    assert result.result.outcome is Outcome.DELIVERED and carry.turn_at <= clock.at < carry.turn_at + 0.05


def test_a_turn_further_off_than_the_invocation_waits_goes_back_to_the_queue_without_sleeping(world, relay, clock,
                                                                                              sleeps):
    notification = world.notification()
    carry = QueueCarry(attempts=0, waiting_since=time.time(), turn_at=clock.now() + PATIENCE + 1.0)
    [result] = relay.relay_batch([carried(notification, carry)])
    assert result.result.outcome is Outcome.WAITING and result.settled
    assert result.requeue_in == math.floor(PATIENCE + 1.0) and not sleeps and not world.smarthost.transactions


def test_an_invocation_waits_for_turns_round_after_round_within_its_hold_and_requeues_the_rest(world, relay, clock,
                                                                                              sleeps):
    """Four turns 1.2 s apart, the first 0.9 s off: each is sent at its turn while the next is within PATIENCE and
    the group's HOLD lasts; the rest go back to the queue, their turns kept. The sleeps never exceed the hold."""
    start = clock.now()
    first = start + 0.9
    turns = [first + 1.2 * i for i in range(4)]
    notifications = batch(world, 4)
    records = [carried(n, QueueCarry(attempts=0, waiting_since=time.time(), turn_at=t))
               for n, t in zip(notifications, turns, strict=True)]

    results = relay.relay_batch(records)

    sent_in_invocation = [t for r, t in zip(results, turns, strict=True) if r.result.outcome is Outcome.DELIVERED]
    assert sent_in_invocation == [t for t in turns if t <= start + HOLD]  # the first two
    assert len(world.smarthost.transactions) == 2
    assert sum(sleeps) <= HOLD and clock.at - start <= HOLD
    for r, t in zip(results, turns, strict=True):
        if r.result.outcome is Outcome.WAITING:
            assert r.settled and world.stores.queue.carried[r.notification.notification_id].turn_at == t


def test_an_invocation_near_its_end_does_not_wait(world, clock, states, sleeps):
    relay = world.relay(shaper=Shaper(states, clock))
    notification = world.notification()
    carry = QueueCarry(attempts=0, waiting_since=time.time(), turn_at=clock.now() + 0.8)
    [result] = relay.relay_batch([carried(notification, carry)], remaining_ms=lambda: MIN_REMAINING_MS - 1)
    assert result.result.outcome is Outcome.WAITING and result.requeue_in == 1 and not sleeps  # never hot


def test_a_turn_whose_slot_is_still_taken_waits_for_it_in_the_invocation(world, relay, clock, sleeps):
    """Its turn has come but the send it follows completed late, so its slot frees a moment later: it waits for
    that moment here rather than a whole second in the queue."""
    relay.relay_batch([sqs_record(n) for n in batch(world, 30)])
    [waiting] = relay.relay_batch([sqs_record(world.notification())])
    carry = world.stores.queue.carried[waiting.notification.notification_id]
    clock.at = carry.turn_at - 0.3  # within DUE_SLACK: its turn has come; the slot frees at +60.0 s
    world.stores.queue.sent.clear()
    [result] = relay.relay_batch([carried(waiting.notification, carry)])
    assert result.result.outcome is Outcome.DELIVERED and not world.stores.queue.sent
    assert clock.at >= carry.turn_at - 0.3 + 0.25  # waited
    assert len(world.smarthost.transactions) == 31
