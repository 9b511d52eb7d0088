"""A rotation in the deployed shape: notifications go through the queue to the relay's Lambda handler while the
admin changes the password on the customer's server and the rotation function's handler runs its four steps.
None is lost, none waits for a retry."""

from __future__ import annotations

import boto3
import pytest
from relaydesk.addresses import rotation
from relaydesk.addresses.model import ConnectorState
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store.ports import CURRENT

from local.lambdas import invoke, unload_all
from local.sqs_events import SqsEventSource
from tests.integration.test_rotation import EMAIL, NEW_PASSWORD, connected, credentials_for, secret_password
from tests.tenancy import account_of

__all__ = ["connected"]  # the fixture, shared with test_rotation


@pytest.fixture
def functions(aws_stack):
    unload_all()  # the handlers are loaded against this test's moto stack
    yield
    unload_all()


def send(stores, account_id: str, n: int) -> Notification:
    note = Notification(notification_id=new_id("N"), account_id=account_id, support_address=EMAIL,
                        recipients=["jane@example.net"], subject=f"[RD#T{n}] Printer jammed", text_body="On it.")
    stores.queue.send(note)
    return note


def test_notifications_queued_during_a_rotation_are_all_delivered_first_time(aws_stack, smarthost, connected,
                                                                            functions):
    responses: list[dict] = []
    source = SqsEventSource(boto3.client("sqs"), aws_stack.settings.notifications_queue_url,
                            lambda event: responses.append(invoke("relay", event)) or responses[-1])
    secret_arn = connected.connector.secret_arn
    sent = [send(aws_stack, connected.account_id, 0)]
    source.poll_once()  # the old password, now in the relay's warm credential cache

    smarthost.set_password(smarthost.username, NEW_PASSWORD)  # the admin changes it on the server ...
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, credentials_for(smarthost, NEW_PASSWORD),
                                    start=lambda *_: None)  # ... and runs `rotate`: staged, steps not run yet
    sent.append(send(aws_stack, connected.account_id, 1))
    source.poll_once()  # the cached AWSCURRENT gets 535: the relay tries AWSPENDING
    for step in rotation.Step:  # Secrets Manager invokes the rotation function
        invoke("rotation", {"SecretId": secret_arn, "ClientRequestToken": token, "Step": step.value})
    sent += [send(aws_stack, connected.account_id, n) for n in (2, 3)]
    source.poll_once()

    assert [r["batchItemFailures"] for r in responses] == [[], [], []]  # nothing deferred, nothing retried
    received = smarthost.wait_for(len(sent))
    email_ids = {line.split(b":", 1)[1].strip().decode() for message in received
                 for line in message.data.splitlines() if line.lower().startswith(b"x-relaydesk-email-id:")}
    assert email_ids == {note.notification_id for note in sent}
    assert len(received) == len(sent)  # and none twice
    assert secret_password(aws_stack, secret_arn, CURRENT) == NEW_PASSWORD
    assert aws_stack.directory.get_address(EMAIL).connector.state is ConnectorState.ACTIVE
