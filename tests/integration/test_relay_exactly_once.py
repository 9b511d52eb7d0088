"""Exactly once under storage faults and stopped invocations: the relay handler against a real local smarthost and
moto built from template.yaml, with faults injected at the AWS SDK boundary (chaos/faults.py) and invocations
stopped the way Lambda stops them (nothing after the stop runs, nothing is deleted from the queue)."""

from __future__ import annotations

import json
from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.tickets.model import DeliveryStatus

from chaos.faults import DYNAMODB_THROTTLED, FAULTS, TRANSACTION_CANCELLED, Rule, is_ticket_delivery_write
from local.lambdas import LambdaContext
from local.sqs_events import sqs_event
from tests.integration.relay_harness import relay_harness


def stop_at_the_ticket_write(phase, service, operation, params):
    """The invocation stopped right before a delivery is recorded on the ticket on its own (not in a transaction)."""
    if phase == "before" and service == "dynamodb" and operation == "UpdateItem" and is_ticket_delivery_write(params):
        raise Stopped


class Stopped(BaseException):
    """The invocation is stopped here (SIGKILL, Lambda's timeout): raised through everything, like the end of the
    process."""


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    FAULTS.clear()
    FAULTS.set([], seed=11)
    yield from relay_harness(aws_stack_env, monkeypatch)
    FAULTS.clear()
    FAULTS.set([])


def ids_received(server) -> list[str]:
    return [message_from_bytes(r.data, policy=default)["X-Relaydesk-Email-Id"] for r in server.received]


def receive(relay) -> list[dict]:
    url = relay.stores.settings.notifications_queue_url
    messages = relay.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                         AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
    handles = relay.__dict__.setdefault("receipt_handles", {})
    handles.update((m["MessageId"], m["ReceiptHandle"]) for m in messages)
    return messages


def invoke(relay, messages: list[dict], *, timeout_seconds: float = 60) -> dict | None:
    """One invocation as the event source mapping makes it; None when it was stopped (nothing is deleted)."""
    url = relay.stores.settings.notifications_queue_url
    arn = relay.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    context = LambdaContext(function_name="relaydesk-test-relay", timeout_seconds=timeout_seconds)
    try:
        response = relay.handler(sqs_event(messages, queue_arn=arn, region="us-east-1"), context)
    except Stopped:
        return None
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            relay.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return response


def time_passes(relay) -> None:
    """Past every visibility timeout and every in-progress window: each message in the queue is visible again and
    no invocation holds a notification any more (the invocations that held one were stopped)."""
    url = relay.stores.settings.notifications_queue_url
    for handle in relay.__dict__.get("receipt_handles", {}).values():
        try:
            relay.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=0)
        except relay.sqs.exceptions.ClientError:
            pass  # deleted meanwhile
    table = relay.stores.settings.idempotency_table
    import boto3

    dynamodb = boto3.client("dynamodb")
    for item in dynamodb.scan(TableName=table).get("Items", []):
        if item.get("status", {}).get("S") == "INPROGRESS":
            dynamodb.update_item(TableName=table, Key={"id": item["id"]},
                                 UpdateExpression="SET in_progress_expiration = :past",
                                 ExpressionAttributeValues={":past": {"N": "0"}})


def run_until_settled(relay, rounds: int = 12) -> None:
    for _ in range(rounds):
        messages = receive(relay)
        if not messages:
            time_passes(relay)
            messages = receive(relay)
            if not messages:
                return
        invoke(relay, messages)
    raise AssertionError("the queue did not settle")


# --- a storage error after acceptance ---------------------------------------------------------------------------

def test_a_throttled_completed_write_after_the_250_is_retried_not_sent_again(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")
    # The joint write (outcome and ticket record in one transaction) fails both its tries, then the once guard's
    # own write once: each is retried, nothing is sent again.
    FAULTS.set([Rule("dynamodb", DYNAMODB_THROTTLED, operations=frozenset({"UpdateItem", "TransactWriteItems"}),
                     tables=frozenset({relay.stores.settings.idempotency_table}), match="completed_write", times=3)])
    relay.enqueue(notification)
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
    assert relay.queued() == 0


def test_a_failed_ticket_write_after_delivery_touches_no_batch_mate_and_delivery_is_recorded(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    first, second = relay.notification("support@acme.test"), relay.notification("support@acme.test")
    FAULTS.set([Rule("dynamodb", DYNAMODB_THROTTLED, operations=frozenset({"UpdateItem", "TransactWriteItems"}),
                     tables=frozenset({relay.stores.settings.tickets_table}), match="ticket_delivery_write",
                     times=1)])
    relay.enqueue(first, second)
    response = invoke(relay, receive(relay))
    assert response is not None  # the batch was answered: one record's storage error is that record's alone
    run_until_settled(relay)
    assert sorted(ids_received(smarthost)) == sorted([first.notification_id, second.notification_id])
    assert relay.record(first).status is DeliveryStatus.DELIVERED
    assert relay.record(second).status is DeliveryStatus.DELIVERED


def test_a_stop_after_the_outcome_was_stored_leaves_the_replay_to_record_delivery(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")

    # The outcome and the ticket record are written together (one transaction): that write refused, the relay
    # writes them one after the other, and the invocation is stopped between the two.
    FAULTS.set([Rule("dynamodb", TRANSACTION_CANCELLED, operations=frozenset({"TransactWriteItems"}))])
    FAULTS.listen(stop_at_the_ticket_write)
    relay.enqueue(notification)
    assert invoke(relay, receive(relay)) is None
    FAULTS.clear()
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    assert relay.record(notification).status is DeliveryStatus.DELIVERED


# --- stops and the dead-letter queue ----------------------------------------------------------------------------

def test_a_notification_stopped_at_every_attempt_reaches_the_dlq_with_its_reason_on_the_ticket(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")

    def stop_at_the_claim(phase, service, operation, params):
        if phase == "before" and service == "dynamodb" and operation == "PutItem" and \
                params.get("TableName") == relay.stores.settings.idempotency_table:
            raise Stopped

    FAULTS.listen(stop_at_the_claim)
    relay.enqueue(notification)
    for _ in range(12):
        messages = receive(relay)
        if not messages:
            break
        assert invoke(relay, messages) is None
        time_passes(relay)
    assert relay.queued() == 0 and relay.queued(relay.stores.settings.notifications_dlq_url) == 1
    assert smarthost.received == []
    record = relay.record(notification)
    assert record is not None and record.attempts, "the ticket says nothing about why"
    assert "dead-letter queue" in record.attempts[-1].reply


def test_dlq_redrive_recognises_a_delivered_notification_and_does_not_send_it_again(relay, smarthost, capsys):
    from relaydesk.cli import main

    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    # A copy in the DLQ, as SQS's own redrive leaves one when the invocations that delivered it kept being stopped.
    relay.sqs.send_message(QueueUrl=relay.stores.settings.notifications_dlq_url,
                           MessageBody=notification.model_dump_json())
    capsys.readouterr()
    assert main(["dlq", "redrive", "--all"]) == 0
    output = capsys.readouterr().out
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    assert "delivered" in output
    assert relay.queued(relay.stores.settings.notifications_dlq_url) == 0


def test_the_invocations_own_time_limit_never_falls_between_the_end_of_data_and_the_stored_outcome(relay, smarthost):
    import time

    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")
    # A slow smarthost, each step under its timeout (3 s per command, 2 s for the end of data; relay_harness).
    smarthost.faults.stall("EHLO", 1.5, times=2)
    smarthost.faults.stall("MAIL", 2.6, times=1)
    smarthost.faults.stall("RCPT", 2.6, times=1)
    smarthost.faults.stall("DATA", 1.5, times=1)
    timeout = 8.8  # just enough to start: the relay starts no transaction with less than 3 + 2 + 3 s left
    deadline = time.monotonic() + timeout

    def lambda_stops_it_at_its_timeout(phase, service, operation, params):
        if time.monotonic() > deadline:
            raise Stopped

    FAULTS.listen(lambda_stops_it_at_its_timeout)
    relay.enqueue(notification)
    invoke(relay, receive(relay), timeout_seconds=timeout)
    FAULTS.clear()
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    assert relay.record(notification).status is DeliveryStatus.DELIVERED


# --- SES ---------------------------------------------------------------------------------------------------------

def test_ses_throttling_and_a_paused_account_are_deferrals_and_the_mail_goes_once_later(relay):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    from chaos.faults import SES_PAUSED, SES_THROTTLED

    notification = relay.notification("support@acme.test")  # no connector: the default outbound (SES)
    FAULTS.set([Rule("ses", SES_THROTTLED, operations=frozenset({"SendRawEmail"}), times=1),
                Rule("ses", SES_PAUSED, operations=frozenset({"SendRawEmail"}), times=1)])
    relay.enqueue(notification)
    invoke(relay, receive(relay))
    assert relay.record(notification).attempts[-1].status is DeliveryStatus.DEFERRED
    assert "Throttling" in relay.record(notification).attempts[-1].reply
    run_until_settled(relay)
    replies = [a.reply for a in relay.record(notification).attempts]
    assert any("AccountSendingPausedException" in reply for reply in replies)
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
    sent = [m for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages
            if notification.notification_id in (m.raw_data or "")]
    assert len(sent) == 1


# --- the DLQ, as an operator reads it --------------------------------------------------------------------------

def test_dlq_list_shows_every_dead_letter_and_whether_it_went_after_all(relay, smarthost, capsys):
    from relaydesk.cli import main

    relay.connect("support@acme.test", smarthost)
    delivered = relay.notification("support@acme.test")
    relay.enqueue(delivered)
    run_until_settled(relay)
    dlq = relay.stores.settings.notifications_dlq_url
    waiting = [relay.notification("support@acme.test") for _ in range(24)]
    for notification in [delivered, *waiting]:
        relay.sqs.send_message(QueueUrl=dlq, MessageBody=notification.model_dump_json())
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    rows = {row["notification"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {n.notification_id for n in [delivered, *waiting]}  # all 25, not a sample of ten
    assert rows[delivered.notification_id]["state"] == "delivered"
    assert {rows[n.notification_id]["state"] for n in waiting} == {"waiting"}
    assert relay.queued(dlq) == 25  # a look leaves them all there, visible
    assert len(relay.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]) == 10


def test_dlq_redrive_sends_back_a_notification_whose_outcome_is_stored_and_the_relay_only_records_it(
        relay, smarthost, capsys):
    from relaydesk.cli import main

    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")

    # The outcome and the ticket record are written together (one transaction): that write refused, the relay
    # writes them one after the other, and the invocation is stopped between the two.
    FAULTS.set([Rule("dynamodb", TRANSACTION_CANCELLED, operations=frozenset({"TransactWriteItems"}))])
    FAULTS.listen(stop_at_the_ticket_write)
    relay.enqueue(notification)
    assert invoke(relay, receive(relay)) is None  # delivered and stored; stopped before the ticket said so
    FAULTS.clear()
    relay.sqs.send_message(QueueUrl=relay.stores.settings.notifications_dlq_url,
                           MessageBody=notification.model_dump_json())
    capsys.readouterr()
    assert main(["dlq", "list", "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["state"] == "stored delivered"
    assert main(["dlq", "redrive", "--all"]) == 0
    out, err = capsys.readouterr()
    assert "sends nothing" in out + err
    run_until_settled(relay)
    assert ids_received(smarthost) == [notification.notification_id]
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
