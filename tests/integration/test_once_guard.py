"""The relay's once guard, the same contract for the DynamoDB adapter (moto, the template's idempotency table) and
the in-memory fake: a claim holds a notification for its window, a stored outcome is replayed, a released claim
frees it at once, a claim that ran out is taken over (and its old holder can no longer store an outcome), and a
claim whose put lost its answer is still this invocation's."""

from __future__ import annotations

import pytest
from relaydesk.errors import AlreadyInProgress, ClaimLost
from relaydesk.store.memory import MemoryOnce
from relaydesk.store.once_dynamodb import DynamoOnce

from chaos.faults import FAULTS, Rule

WINDOW = 430


class Clock:
    def __init__(self) -> None:
        self.now = 2_000_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["dynamodb", "memory"])
def guard(request, aws_stack_env):
    clock = Clock()
    if request.param == "memory":
        return MemoryOnce(in_progress_seconds=WINDOW, now=clock), clock
    import boto3

    table = boto3.resource("dynamodb").Table(aws_stack_env["RELAYDESK_IDEMPOTENCY_TABLE"])
    return DynamoOnce(table, in_progress_seconds=WINDOW, expiry_seconds=18 * 86400, now=clock), clock


def test_a_claim_holds_the_notification_for_its_window(guard):
    once, clock = guard
    claim = once.claim("N1")
    assert claim.token and claim.stored is None and not claim.taken_over
    with pytest.raises(AlreadyInProgress) as busy:
        once.claim("N1")
    assert busy.value.wait == pytest.approx(WINDOW, abs=1)
    clock.now += WINDOW - 5
    with pytest.raises(AlreadyInProgress):
        once.claim("N1")


def test_a_stored_outcome_is_replayed_and_storing_it_again_is_harmless(guard):
    once, _ = guard
    claim = once.claim("N2")
    once.complete(claim, {"outcome": "delivered", "reply": "250 ok"})
    once.complete(claim, {"outcome": "delivered", "reply": "250 ok"})  # a retry after a lost answer
    assert once.claim("N2").stored == {"outcome": "delivered", "reply": "250 ok"}
    assert once.stored("N2") == {"outcome": "delivered", "reply": "250 ok"}


def test_a_released_claim_frees_the_notification_at_once(guard):
    once, _ = guard
    once.release(once.claim("N3"))
    again = once.claim("N3")
    assert not again.taken_over and once.stored("N3") is None


def test_a_claim_that_ran_out_is_taken_over_and_its_old_holder_cannot_store(guard):
    once, clock = guard
    stale = once.claim("N4")
    clock.now += WINDOW + 1
    fresh = once.claim("N4")
    assert fresh.taken_over and fresh.token != stale.token
    with pytest.raises(ClaimLost):
        once.complete(stale, {"outcome": "delivered"})
    once.release(stale)  # a stale release changes nothing either
    with pytest.raises(AlreadyInProgress):
        once.claim("N4")


def test_a_claim_whose_put_lost_its_answer_is_still_ours(aws_stack_env):
    import boto3

    clock = Clock()
    table = boto3.resource("dynamodb").Table(aws_stack_env["RELAYDESK_IDEMPOTENCY_TABLE"])
    once = DynamoOnce(table, in_progress_seconds=WINDOW, now=clock)
    FAULTS.set([Rule("dynamodb", operations=frozenset({"PutItem"}), lost_response=True, times=1)], seed=1)
    try:
        claim = once.claim("N5")
    finally:
        FAULTS.set([])
    assert claim.token and claim.taken_over  # what the lost put replaced is unknown: the relay looks at the ticket
    once.complete(claim, {"outcome": "delivered"})
    assert once.stored("N5") == {"outcome": "delivered"}


def test_a_stored_outcome_past_its_expiry_is_gone_even_before_dynamodb_deletes_it(aws_stack_env):
    import boto3

    clock = Clock()
    table = boto3.resource("dynamodb").Table(aws_stack_env["RELAYDESK_IDEMPOTENCY_TABLE"])
    once = DynamoOnce(table, in_progress_seconds=WINDOW, expiry_seconds=100, now=clock)
    once.complete(once.claim("N6"), {"outcome": "delivered"})
    clock.now += 101
    assert once.stored("N6") is None and once.claim("N6").stored is None


def test_an_outcome_and_its_ticket_record_are_written_together_or_not_at_all(aws_stack_env):
    """`DynamoOutcomeWrites`: one TransactWriteItems for the final outcome and the delivery on the ticket; a claim
    taken over meanwhile writes neither (ClaimLost), so the ticket never says delivered for another's attempt."""
    import boto3
    from relaydesk.store.dynamodb import DynamoTickets
    from relaydesk.store.outcome_writes import DynamoOutcomeWrites
    from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord

    clock = Clock()
    dynamodb = boto3.resource("dynamodb")
    once = DynamoOnce(dynamodb.Table(aws_stack_env["RELAYDESK_IDEMPOTENCY_TABLE"]), in_progress_seconds=WINDOW,
                      expiry_seconds=18 * 86400, now=clock)
    tickets = DynamoTickets(dynamodb.Table(aws_stack_env["RELAYDESK_TICKETS_TABLE"]))
    writes = DynamoOutcomeWrites(once, tickets)
    delivered = DeliveryAttempt(status=DeliveryStatus.DELIVERED, route="connector:smtp.acme.test:587", smtp_code=250,
                                reply="250 2.0.0 Ok")

    def record(notification_id: str) -> NotificationRecord:
        return NotificationRecord(notification_id=notification_id, message_id=f"<{notification_id}@acme.test>",
                                  recipients=["jane@example.net"])

    claim = once.claim("N1")
    writes.complete_and_record(claim, {"outcome": "delivered"}, "T1", record("N1"), delivered)
    assert once.stored("N1") == {"outcome": "delivered"}
    assert tickets.get_notification("T1", "N1").status is DeliveryStatus.DELIVERED

    stale = once.claim("N2")
    clock.now += WINDOW + 1
    once.claim("N2")  # taken over by another invocation
    with pytest.raises(ClaimLost):
        writes.complete_and_record(stale, {"outcome": "delivered"}, "T1", record("N2"), delivered)
    assert once.stored("N2") is None and tickets.get_notification("T1", "N2") is None


def test_fresh_notifications_are_claimed_together_or_none_is(guard):
    once, _clock = guard
    claims = once.claim_fresh(["N1", "N2", "N3"])
    assert sorted(claims) == ["N1", "N2", "N3"] and len({c.token for c in claims.values()}) == 3
    with pytest.raises(AlreadyInProgress):
        once.claim("N2")  # held like any claim
    assert once.claim_fresh(["N4", "N2"]) is None  # one of them has a record: nothing is claimed
    assert once.claim("N4").stored is None  # N4 was not claimed by the refused write
    once.release_all([claims["N1"], claims["N3"]])
    assert not once.claim("N1").taken_over and not once.claim("N3").taken_over  # released: fresh again
    once.complete(claims["N2"], {"outcome": "delivered"})
    assert once.claim_fresh(["N2", "N5"]) is None and once.stored("N2") == {"outcome": "delivered"}
