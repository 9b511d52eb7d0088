"""Under DynamoDB throttling a mail still lands, and lands once: every store call the inbound function makes is tried
again while the invocation has time (relaydesk.store.retrying), including a write whose answer was lost. A call that
stays throttled until the time is spent raises, so Lambda retries and then hands the mail to the inbound DLQ with
the error; the retry (or `inbound replay`) ends the mail as a clean run ends it, never with a second ticket."""

from __future__ import annotations

import dataclasses
import logging

import pytest
from botocore.exceptions import ClientError
from relaydesk import durable
from relaydesk.inbound.service import process_inbound
from relaydesk.store.retrying import is_transient, retrying

from .conftest import corpus, make_world, ses_record
from .faults import FaultPlan, Throttle, answer_lost, throttled, with_faults
from .test_inbound_faults import CASES, outcome_of, run

INVOCATION_MS = 120_000  # the inbound function's timeout (template.yaml)


class InvocationClock:
    """The invocation's time left, spent by the retries' pauses only (nothing really sleeps)."""

    def __init__(self, monkeypatch, budget_ms: int = INVOCATION_MS) -> None:
        self.left_ms = budget_ms
        self.pauses: list[float] = []
        monkeypatch.setattr(durable.time, "sleep", self.sleep)

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.left_ms -= int(seconds * 1000)

    def remaining_ms(self) -> int:
        return self.left_ms


def run_throttled(world, raw: bytes, throttle: Throttle, clock: InvocationClock):
    world.stores.blobs.put("inbound/ses-throttle-1", raw)
    stores, ports = with_faults(world, throttle)
    return process_inbound(retrying(stores, clock.remaining_ms), ses_record("ses-throttle-1"),
                           ports=retrying(ports, clock.remaining_ms), on_verification=world.verify)


@pytest.mark.parametrize("case", CASES)
def test_the_first_calls_of_each_kind_throttled_and_answers_lost_the_mail_lands_once(case, monkeypatch):
    file, expected = CASES[case]
    clean = make_world()
    run(clean, corpus(file), FaultPlan())
    world, clock = make_world(), InvocationClock(monkeypatch)
    throttle = Throttle(first=2, lost=1)

    result = run_throttled(world, corpus(file), throttle, clock)

    assert result.outcome.value == expected
    assert outcome_of(world) == outcome_of(clean)  # one ticket (or comment, report), one notification id queued
    assert set(throttle.calls) >= {"ledger.get", "ledger.claim", "ledger.complete", "blobs.chunks"}
    assert all(count >= 4 for count in throttle.calls.values())  # each kind: two throttled, one lost, one answered
    assert throttle.lost_answers == len(throttle.calls)
    assert clock.left_ms > INVOCATION_MS / 2  # a few pauses per call, not the invocation's whole time


def test_a_lost_answer_to_the_ticket_write_is_recognised_not_written_twice(monkeypatch):
    world, clock = make_world(), InvocationClock(monkeypatch)
    throttle = Throttle(first=0, lost=1, only=frozenset({"ledger.claim", "tickets.create_ticket", "queue.send"}))

    result = run_throttled(world, corpus("apple_mail_pdf_postfix_forward.eml"), throttle, clock)

    assert throttle.lost_answers == 3 and not result.replayed  # the ledger gave back this invocation's own decision
    tickets = world.stores.tickets.list_tickets(world.account.account_id)
    assert [len(t.comments) for t in tickets if t.ticket_id == result.ticket_id] == [1]
    assert {n.notification_id for n in world.sent} == {result.notification_id}  # sent twice, the same id: sent once


def test_throttled_for_ever_raises_with_its_error_and_the_retry_makes_one_ticket(monkeypatch, caplog):
    world, clock = make_world(), InvocationClock(monkeypatch)
    raw = corpus("outlook_new_request_m365_forward.eml")
    throttle = Throttle(first=None, only=frozenset({"tickets.create_ticket"}))

    with caplog.at_level(logging.WARNING), pytest.raises(ClientError) as raised:
        run_throttled(world, raw, throttle, clock)

    # what Lambda's on-failure record (the inbound DLQ) carries, and what `inbound replay` shows
    assert raised.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert clock.left_ms < durable.ANSWER_MARGIN_MS + 1000  # tried until the invocation's time was spent
    assert throttle.calls["tickets.create_ticket"] > 20
    assert world.stores.tickets.list_tickets(world.account.account_id) == [world.ticket("T01M8000000000000TK")]
    assert world.stores.blobs.get("inbound/ses-throttle-1") == raw  # the raw mail is kept for the replay
    assert "provisioned throughput" not in caplog.text  # the error's type is logged, not its words

    retried = run_throttled(world, raw, Throttle(first=0), clock)  # Lambda's retry, the throttling over

    assert retried.outcome.value == "new_ticket"
    assert len(world.stores.tickets.list_tickets(world.account.account_id)) == 2  # the seeded one and this one


@pytest.mark.parametrize("case", ["new ticket with an attachment", "reply that adds a comment"])
def test_any_call_throttled_for_ever_then_the_retry_ends_as_a_clean_run(case, monkeypatch):
    file, _ = CASES[case]
    clean = make_world()
    run(clean, corpus(file), FaultPlan())
    kinds = Throttle(first=0)
    run_throttled(make_world(), corpus(file), kinds, InvocationClock(monkeypatch))

    for kind in kinds.calls:
        world = make_world()
        with pytest.raises(ClientError):
            run_throttled(world, corpus(file), Throttle(first=None, only=frozenset({kind})),
                          InvocationClock(monkeypatch))
        run_throttled(world, corpus(file), Throttle(first=0), InvocationClock(monkeypatch))
        assert outcome_of(world) == outcome_of(clean), kind


def test_a_failure_another_try_cannot_mend_is_raised_at_once(monkeypatch):
    world, clock = make_world(), InvocationClock(monkeypatch)
    calls: list[str] = []

    class DeniedTickets:
        def __getattr__(self, name):
            def refuse(*args, **kwargs):
                calls.append(name)
                raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"},
                                   "ResponseMetadata": {"HTTPStatusCode": 400}}, name)
            return refuse

    stores = dataclasses.replace(world.stores, tickets=DeniedTickets())
    world.stores.blobs.put("inbound/ses-denied", corpus("outlook_new_request_m365_forward.eml"))

    with pytest.raises(ClientError, match="AccessDenied"):
        process_inbound(retrying(stores, clock.remaining_ms), ses_record("ses-denied"), ports=world.ports,
                        on_verification=world.verify)
    assert len(calls) == 1 and clock.pauses == []


def _cancelled(*reasons: str) -> ClientError:
    return ClientError({"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
                        "CancellationReasons": [{"Code": r} for r in reasons]}, "TransactWriteItems")


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize(("error", "transient"), [
    (throttled("PutItem"), True),
    (_error("ThrottlingException"), True),  # Secrets Manager, SQS
    (_error("SlowDown", 503), True),  # S3
    (_error("InternalServerError", 500), True),
    (_error("SomethingNew", 503), True),  # any 5xx
    (_error("TransactionConflictException"), True),
    (_cancelled("None", "TransactionConflict"), True),
    (_cancelled("ThrottlingError"), True),
    (answer_lost("PutItem"), True),
    (_cancelled("ConditionalCheckFailed", "None"), False),  # the ticket exists: handled by the caller
    (_error("ConditionalCheckFailedException"), False),
    (_error("ValidationException"), False),
    (_error("AccessDeniedException"), False),
    (_error("ResourceNotFoundException"), False),
    (ValueError("not an AWS failure"), False),
])
def test_only_throttling_and_failures_in_passing_are_tried_again(error, transient):
    assert is_transient(error) is transient
