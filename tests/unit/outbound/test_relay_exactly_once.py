"""Exactly once with storage that fails: an accepted message's outcome is kept and its writes retried, the SQS
record is released only when the outcome is stored and on the ticket, a claim taken over from a stopped invocation
looks at the ticket first, and the DLQ only ever gets a notification whose reason is on its ticket."""

from __future__ import annotations

from dataclasses import replace

import pytest
from relaydesk.errors import AlreadyInProgress
from relaydesk.outbound.batch import batch_response
from relaydesk.outbound.policy import Outcome
from relaydesk.store.memory import MemoryOnce
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import make_world, sqs_record


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Flaky:
    """A store whose `method` raises for its next `times` calls (a throttle the SDK's retries did not absorb)."""

    def __init__(self, inner, method: str, times: int) -> None:
        self._inner, self._method, self.times = inner, method, times
        self.calls = 0

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        def call(*args, **kwargs):
            self.calls += 1
            if self.times:
                self.times -= 1
                raise RuntimeError("ProvisionedThroughputExceededException")
            return attribute(*args, **kwargs)

        return call


class Sink:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.buried: list[tuple[str, str]] = []

    def bury(self, body: str, *, reason: str, notification_id: str | None, receive_count: int) -> None:
        if self.fail:
            raise RuntimeError("SQS unavailable")
        self.buried.append((notification_id or "", reason))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(memory_stores, clock):
    world = make_world(memory_stores)
    world.once = MemoryOnce(in_progress_seconds=430, now=clock)
    return world


def flaky_tickets(world, method: str, times: int) -> Flaky:
    tickets = Flaky(world.stores.tickets, method, times)
    world.stores = replace(world.stores, tickets=tickets)
    return tickets


def test_a_ticket_write_that_fails_after_the_250_is_retried_and_the_record_released(world):
    tickets = flaky_tickets(world, "append_attempt", 2)
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED and not result.failed
    assert tickets.calls == 3 and len(world.smarthost.transactions) == 1
    assert world.record(notification).status is DeliveryStatus.DELIVERED


def test_an_outcome_stored_but_not_on_the_ticket_keeps_the_record_and_the_replay_writes_it(world):
    flaky_tickets(world, "append_attempt", 100)
    notification = world.notification()
    relay = world.relay()
    [first] = relay.relay_batch([sqs_record(notification)])
    assert first.result.outcome is Outcome.DELIVERED and first.failed and first.retry_in  # kept, not released
    assert world.once.stored(notification.notification_id)["outcome"] == "delivered"
    world.stores = replace(world.stores, tickets=world.stores.tickets._inner)  # the table answers again
    [again] = world.relay().relay_batch([sqs_record(notification, receive_count=2)])
    assert again.result.duplicate and not again.failed
    assert len(world.smarthost.transactions) == 1
    assert world.record(notification).status is DeliveryStatus.DELIVERED


def test_an_outcome_on_the_ticket_but_not_stored_is_recognised_after_the_claim_runs_out(world, clock):
    once = Flaky(world.once, "complete", 100)
    world.once = once
    notification = world.notification()
    [first] = world.relay().relay_batch([sqs_record(notification)])
    assert first.failed and world.record(notification).status is DeliveryStatus.DELIVERED
    once.times = 0  # the idempotency table answers again
    [held] = world.relay().relay_batch([sqs_record(notification, receive_count=2)])
    assert held.result.outcome is Outcome.DEFERRED and 430 <= held.retry_in <= 432  # the claim's window
    clock.now += 431
    [after] = world.relay().relay_batch([sqs_record(notification, receive_count=3)])
    assert after.result.outcome is Outcome.DELIVERED and after.result.duplicate and not after.failed
    assert len(world.smarthost.transactions) == 1
    assert once._inner.stored(notification.notification_id)["outcome"] == "delivered"


def test_an_outcome_no_store_takes_is_kept_by_the_warm_container_and_written_by_its_next_invocation(world):
    once = Flaky(world.once, "complete", 100)
    world.once = once
    tickets = flaky_tickets(world, "append_attempt", 100)
    notification = world.notification()
    relay = world.relay()
    [first] = relay.relay_batch([sqs_record(notification)])
    assert first.failed and first.result.outcome is Outcome.DELIVERED
    once.times = tickets.times = 0
    relay.relay_batch([])  # the container's next invocation, whatever it carries
    assert once._inner.stored(notification.notification_id)["outcome"] == "delivered"
    assert world.record(notification).status is DeliveryStatus.DELIVERED
    [again] = relay.relay_batch([sqs_record(notification, receive_count=2)])
    assert again.result.duplicate and len(world.smarthost.transactions) == 1


def test_a_claim_taken_over_without_any_recorded_outcome_is_sent(world, clock):
    """A stopped invocation left its claim and nothing else: after the window the notification goes (once more, if
    it had reached the end of data: the documented window)."""
    notification = world.notification()
    claim = world.once.claim(notification.notification_id)
    with pytest.raises(AlreadyInProgress):
        world.once.claim(notification.notification_id)
    clock.now += 431
    [result] = world.relay().relay_batch([sqs_record(notification, receive_count=2)])
    assert result.result.outcome is Outcome.DELIVERED and not result.result.duplicate
    assert len(world.smarthost.transactions) == 1
    assert claim.token not in {world.once._items[notification.notification_id].token}


def test_another_invocations_claim_defers_until_its_window_ends_and_never_to_the_dlq(world):
    notification = world.notification()
    world.once.claim(notification.notification_id)
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=5)])
    assert result.result.outcome is Outcome.DEFERRED and not result.last_attempt
    assert 430 <= result.retry_in <= 432
    sink = Sink()
    assert batch_response([result], None, sink)["batchItemFailures"] and sink.buried == []
    assert world.smarthost.transactions == [] and world.record(notification) is None


def test_the_last_deferral_moves_to_the_dlq_with_its_reason_on_the_ticket(world):
    world.smarthost.replies = [(451, "4.3.0 try again later")]
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=5)])
    assert result.last_attempt
    sink = Sink()
    assert batch_response([result], None, sink) == {"batchItemFailures": []}  # moved, so released here
    [(buried, reason)] = sink.buried
    assert buried == notification.notification_id and "451" in reason
    assert "dead-letter queue" in world.record(notification).attempts[-1].reply


def test_a_last_deferral_whose_reason_cannot_be_written_is_kept_not_moved(world):
    world.smarthost.replies = [(451, "4.3.0 try again later")]
    flaky_tickets(world, "append_attempt", 100)
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=5)])
    assert not result.last_attempt and result.failed and result.retry_in
    sink = Sink()
    assert batch_response([result], None, sink)["batchItemFailures"] and sink.buried == []


def test_a_dlq_that_cannot_be_written_keeps_the_record_for_sqs_redrive(world):
    world.smarthost.replies = [(451, "4.3.0 try again later")]
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=5)])
    response = batch_response([result], None, Sink(fail=True))
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{notification.notification_id}"}]}


def test_a_receive_past_the_last_attempt_writes_its_reason_before_it_tries(world):
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=6)])
    assert result.result.outcome is Outcome.DELIVERED
    first, last = world.record(notification).attempts
    assert first.status is DeliveryStatus.DEFERRED and "dead-letter queue" in first.reply
    assert last.status is DeliveryStatus.DELIVERED


def test_a_receive_past_the_last_attempt_is_not_tried_when_its_reason_cannot_be_written(world):
    flaky_tickets(world, "append_attempt", 100)
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=6)])
    assert result.result.outcome is Outcome.DEFERRED and "not attempted" in result.result.reply
    assert world.smarthost.transactions == [] and not result.last_attempt


def test_a_store_failing_before_anything_is_sent_fails_only_its_own_record(world):
    directory = Flaky(world.stores.directory, "get_account_address", 1)
    world.stores = replace(world.stores, directory=directory)
    first, second = world.notification(), world.notification(support_address="other@acme.test")
    results = world.relay().relay_batch([sqs_record(first), sqs_record(second)])
    assert [r.result.outcome for r in results] == [Outcome.DEFERRED, Outcome.DELIVERED]
    assert "not attempted" in results[0].result.reply and results[0].failed and not results[1].failed
