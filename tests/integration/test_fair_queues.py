"""SQS fair queues, as the local stack gives them to moto's standard queues: a tenant (MessageGroupId) with a
disproportionate share of the in-flight messages is a noisy neighbour, and a quiet tenant's message is handed out
first; without them moto hands out arrival order. Lambda's event records carry the group."""

from __future__ import annotations

import boto3
import pytest

from local import fair_queues
from local.sqs_events import sqs_event


@pytest.fixture
def queue(aws_stack):
    fair_queues.install()
    yield boto3.client("sqs"), aws_stack.settings.notifications_queue_url
    fair_queues.uninstall()


def send(sqs, url, group: str, n: int) -> None:
    for start in range(0, n, 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"{group}-{start + i}", "MessageGroupId": group}
            for i in range(min(10, n - start))])


def receive(sqs, url, n: int = 10) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"],
                               VisibilityTimeout=300).get("Messages", [])


def test_a_quiet_tenant_is_handed_out_before_a_noisy_neighbours_backlog(queue):
    sqs, url = queue
    send(sqs, url, "ACCOUNT-A", 100)
    in_flight = [m for _ in range(4) for m in receive(sqs, url)]  # four workers busy with A: 40 in flight
    assert {m["Attributes"]["MessageGroupId"] for m in in_flight} == {"ACCOUNT-A"}
    send(sqs, url, "ACCOUNT-B", 1)

    [first, *rest] = receive(sqs, url)
    assert first["Body"] == "ACCOUNT-B-0" and all(m["Body"].startswith("ACCOUNT-A") for m in rest)
    record = sqs_event([first], queue_arn="arn:aws:sqs:us-east-1:123456789012:q", region="us-east-1")["Records"][0]
    assert record["attributes"]["MessageGroupId"] == "ACCOUNT-B"


def test_without_the_fair_order_moto_hands_out_arrival_order(aws_stack):
    sqs, url = boto3.client("sqs"), aws_stack.settings.notifications_queue_url
    send(sqs, url, "ACCOUNT-A", 100)
    for _ in range(4):
        receive(sqs, url)
    send(sqs, url, "ACCOUNT-B", 1)
    assert all(m["Body"].startswith("ACCOUNT-A") for m in receive(sqs, url))


def test_when_only_the_noisy_tenant_waits_it_is_served_as_usual(queue):
    sqs, url = queue
    send(sqs, url, "ACCOUNT-A", 50)
    for _ in range(4):
        receive(sqs, url)
    assert len(receive(sqs, url)) == 10
