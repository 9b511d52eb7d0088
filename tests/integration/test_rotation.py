"""Credential rotation end to end: Secrets Manager (moto, built from template.yaml), a real local smarthost whose
password the customer changes, the rotation steps as Secrets Manager runs them, and the relay delivering through
the whole rotation."""

from __future__ import annotations

import logging

import boto3
import pytest
from relaydesk.addresses import lifecycle, rotation
from relaydesk.addresses.model import ConnectorState, VerificationStatus
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError, RotationRefusedError
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store.ports import CURRENT, PENDING, PREVIOUS

from tests.tenancy import account_of

EMAIL = "support@acme.test"
NEW_PASSWORD = "n3w-Rotated-Pa55!"


def credentials_for(smarthost, password: str) -> SmtpCredentials:
    return SmtpCredentials(host="127.0.0.1", port=smarthost.port, username=smarthost.username, password=password,
                           ca_bundle_pem=smarthost.ca_pem)


@pytest.fixture
def connected(aws_stack, smarthost):
    """An address connected (live check against the smarthost), verified both ways and active."""
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    address, _ = lifecycle.connect_address(aws_stack, account.account_id, EMAIL,
                                           credentials_for(smarthost, smarthost.password), "Acme Support")
    address.forwarding.status = address.outbound.status = VerificationStatus.VERIFIED
    address.connector.state = ConnectorState.ACTIVE
    aws_stack.directory.put_address(address)
    return address


def secret_password(stores, secret_id: str, stage: str) -> str:
    return SmtpCredentials.model_validate_json(stores.secrets.get(secret_id, stage).value).password.get_secret_value()


def in_process(stores):
    return lambda secret_id, token: rotation.rotate_in_process(stores, secret_id, token)


def test_rotation_promotes_the_password_the_customer_set_on_the_server(aws_stack, smarthost, connected):
    secret = connected.connector.secret_arn
    old_password = smarthost.password
    old_version = aws_stack.secrets.get(secret, CURRENT).version_id
    smarthost.set_password(smarthost.username, NEW_PASSWORD)  # the admin changes it on the mail server first

    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, credentials_for(smarthost, NEW_PASSWORD),
                                    start=in_process(aws_stack))

    assert secret_password(aws_stack, secret, CURRENT) == NEW_PASSWORD
    assert aws_stack.secrets.get(secret, CURRENT).version_id == token
    assert aws_stack.secrets.get(secret, PREVIOUS).version_id == old_version
    assert secret_password(aws_stack, secret, PREVIOUS) == old_password
    stages = aws_stack.secrets.describe_stages(secret)
    assert not any(PENDING in labels for labels in stages.values())
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.credentials_version == token
    assert address.connector.state is ConnectorState.ACTIVE
    assert smarthost.stats.auth_failures == 0


def test_rotation_with_a_wrong_password_keeps_the_current_one_and_says_why(aws_stack, smarthost, connected):
    secret = connected.connector.secret_arn
    current = aws_stack.secrets.get(secret, CURRENT)

    with pytest.raises(AuthenticationFailedError) as caught:
        rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                EMAIL, credentials_for(smarthost, "not-the-server-password"),
                                start=in_process(aws_stack))

    assert "current credentials stay live" in caught.value.message
    assert aws_stack.secrets.get(secret, CURRENT) == current
    assert not any(PENDING in labels for labels in aws_stack.secrets.describe_stages(secret).values())
    last_error = aws_stack.directory.get_address(EMAIL).last_error
    assert last_error.startswith("credential rotation failed at auth")
    assert "535" in last_error
    assert "not-the-server-password" not in last_error
    assert smarthost.password not in last_error


def test_create_step_with_nothing_staged_refuses_and_changes_nothing(aws_stack, connected):
    secret = connected.connector.secret_arn
    before = aws_stack.secrets.describe_stages(secret)

    with pytest.raises(RotationRefusedError) as caught:
        rotation.run_step(aws_stack, secret, "0f0e0d0c-0b0a-4909-8807-060504030201", "createSecret")

    assert "cannot invent a password" in caught.value.message
    assert aws_stack.secrets.describe_stages(secret) == before


def test_steps_accept_the_arn_secrets_manager_sends(aws_stack, smarthost, connected):
    secret_arn = connected.connector.secret_arn
    assert secret_arn.startswith("arn:aws:secretsmanager:")
    smarthost.set_password(smarthost.username, NEW_PASSWORD)
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, credentials_for(smarthost, NEW_PASSWORD),
                                    start=lambda *_: None)

    for step in rotation.Step:
        rotation.run_step(aws_stack, secret_arn, token, step)

    assert secret_password(aws_stack, secret_arn, CURRENT) == NEW_PASSWORD


def test_no_password_in_logs_errors_or_records_of_a_rotation(aws_stack, smarthost, connected, caplog, capsys):
    # Everything at INFO, ours at DEBUG. botocore's own DEBUG wire trace prints request bodies (PutSecretValue
    # included) whatever the caller does: it must never be switched on in a deployed function.
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="relaydesk")
    old_password = smarthost.password
    seen: list[str] = []
    try:
        rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                EMAIL, credentials_for(smarthost, "Wr0ng-Pa55word"),
                                start=in_process(aws_stack))
    except AuthenticationFailedError as error:
        seen += [str(error), repr(error), error.server_reply, error.action or ""]
    smarthost.set_password(smarthost.username, NEW_PASSWORD)
    rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                            EMAIL, credentials_for(smarthost, NEW_PASSWORD), start=in_process(aws_stack))

    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text, aws_stack.directory.get_address(EMAIL).model_dump_json()]
    assert seen[0]  # the failure was reported ...
    for password in (old_password, NEW_PASSWORD, "Wr0ng-Pa55word"):
        assert all(password not in text for text in seen)  # ... with no password anywhere


# --- the relay through a rotation ---------------------------------------------------------------------------------

def notification(account_id: str, n: int) -> Notification:
    return Notification(notification_id=new_id("N"), account_id=account_id, support_address=EMAIL,
                        recipients=["customer@example.net"], subject=f"[RD#T{n}] Your request", text_body="Hello")


def relay_one(relay, note: Notification):
    record = {"messageId": note.notification_id, "receiptHandle": "rh", "body": note.model_dump_json(),
              "attributes": {"ApproximateReceiveCount": "1"}}
    (result,) = relay.relay_batch([record])
    return result.result


def test_notifications_keep_flowing_through_a_rotation_with_none_lost(aws_stack, smarthost, connected):
    relay_module = pytest.importorskip("relaydesk.outbound.relay")
    from relaydesk.outbound.credentials import CredentialCache
    from relaydesk.outbound.once import MemoryOnce

    relay = relay_module.Relay(aws_stack, credentials=CredentialCache(aws_stack.secrets, 300), once=MemoryOnce())
    sent = [notification(connected.account_id, n) for n in range(4)]

    before = relay_one(relay, sent[0])  # the old password, cached by the relay
    smarthost.set_password(smarthost.username, NEW_PASSWORD)  # the admin changes it on the server ...
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, credentials_for(smarthost, NEW_PASSWORD),
                                    start=lambda *_: None)  # ... and stages it; the rotation has not run yet
    during = relay_one(relay, sent[1])  # 535 with AWSCURRENT: the relay tries AWSPENDING
    for step in rotation.Step:
        rotation.run_step(aws_stack, connected.connector.secret_arn, token, step)
    after = [relay_one(relay, note) for note in sent[2:]]

    assert [r.outcome.value for r in (before, during, *after)] == ["delivered"] * 4
    assert smarthost.stats.auth_failures >= 1  # the old password was refused during the overlap ...
    assert {r.auth_user for r in smarthost.received} == {smarthost.username}  # ... and every message got through
    delivered = smarthost.wait_for(4)
    ids = {note.notification_id for note in sent}
    assert {line.split(b":", 1)[1].strip().decode() for r in delivered for line in r.data.splitlines()
            if line.lower().startswith(b"x-relaydesk-email-id:")} == ids
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.state is ConnectorState.ACTIVE
    assert address.connector.credentials_version == token


def test_notifications_held_for_a_refused_password_go_out_after_the_rotation(aws_stack, smarthost, connected):
    relay_module = pytest.importorskip("relaydesk.outbound.relay")
    from relaydesk.outbound.credentials import CredentialCache
    from relaydesk.outbound.once import MemoryOnce

    relay = relay_module.Relay(aws_stack, credentials=CredentialCache(aws_stack.secrets, 300), once=MemoryOnce())
    held = [notification(connected.account_id, n) for n in range(2)]
    smarthost.set_password(smarthost.username, NEW_PASSWORD)  # changed on the server, not in Relaydesk yet

    outcomes = [relay_one(relay, note).outcome.value for note in held]
    assert aws_stack.directory.get_address(EMAIL).connector.state is ConnectorState.AUTH_FAILED
    rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                            EMAIL, credentials_for(smarthost, NEW_PASSWORD), start=in_process(aws_stack))
    # finishSecret released the parked notifications: they are back on the queue, and the relay sends them.
    messages = boto3.client("sqs").receive_message(
        QueueUrl=aws_stack.settings.notifications_queue_url, MaxNumberOfMessages=10,
        AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
    results = relay.relay_batch([{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
                                  "attributes": m.get("Attributes", {})} for m in messages])

    assert set(outcomes) <= {"auth_failed", "held"}
    assert len(messages) == len(held)
    assert [r.result.outcome.value for r in results] == ["delivered"] * len(held)
    assert aws_stack.directory.get_address(EMAIL).connector.state is ConnectorState.ACTIVE
    assert len(smarthost.wait_for(len(held))) == len(held)
