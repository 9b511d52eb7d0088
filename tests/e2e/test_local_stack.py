"""The local stack does what its AWS counterparts do: SES receiving, the SQS event source, SES sending, the
customer's server-level forward; and it leaves nothing running behind it."""

from __future__ import annotations

import json
import os
import smtplib
from email.message import EmailMessage

import boto3
import pytest

from local import lambdas
from local.stack import LocalStack

# One demo run (one stack) serves every test here: `make test` keeps a module on one xdist worker (`--dist loadfile`).
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("stack")) as running:
        running.customer.forward("support@acme.test", f"support@acme.{running.mail_domain}")
        yield running


@pytest.fixture
def invocations(monkeypatch):
    """Record what the stack hands to each function instead of running it; `fail` makes a function fail."""
    calls: dict[str, list[dict]] = {"inbound": [], "relay": []}
    behaviour: dict = {}

    def invoke(name, event, **_):
        calls[name].append(event)
        if name in behaviour:
            return behaviour[name](event)
        return {"batchItemFailures": []} if name == "relay" else None

    monkeypatch.setattr(lambdas, "invoke", invoke)
    calls["behaviour"] = behaviour
    return calls


def mail(subject="Printer jammed", to="support@acme.test") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@example.net>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@mail.example.net>"
    message.set_content("Hello\n")
    return message


def send(stack, server, message, rcpts):
    with smtplib.SMTP(server.host, server.port, timeout=10) as client:
        client.starttls(context=stack.client_tls())
        client.send_message(message, from_addr="jane@example.net", to_addrs=rcpts)


def test_mail_to_the_support_address_is_forwarded_stored_in_s3_and_handed_to_inbound_as_ses_does(
        stack, invocations):
    mark = len(stack.journal)

    send(stack, stack.customer.mx, mail("Forward me"), ["support@acme.test"])
    entry = stack.journal.wait_for("inbound", after=mark, timeout=30)

    [event] = invocations["inbound"]
    record = event["Records"][0]
    ses_id = record["ses"]["mail"]["messageId"]
    assert ses_id == entry.data["message_id"] and len(ses_id) == 40
    assert record["eventSource"] == "aws:ses"
    assert record["ses"]["mail"]["destination"] == [f"support@acme.{stack.mail_domain}"]
    receipt = record["ses"]["receipt"]
    assert receipt["action"]["type"] == "Lambda" and receipt["action"]["invocationType"] == "Event"
    assert {receipt[k]["status"] for k in ("spamVerdict", "virusVerdict", "spfVerdict", "dkimVerdict",
                                           "dmarcVerdict")} == {"PASS"}
    assert record["ses"]["mail"]["commonHeaders"]["subject"] == "Forward me"
    raw = boto3.client("s3").get_object(Bucket=stack.env["RELAYDESK_RAW_MAIL_BUCKET"],
                                        Key=f"inbound/{ses_id}")["Body"].read()
    assert b"X-MS-Exchange-Organization-AutoForwarded: true" in raw
    assert b"X-MS-Exchange-ForwardingLoop: support@acme.test;" in raw
    assert b"To: support@acme.test" in raw  # a server-level forward leaves the original headers alone
    header_names = [h["name"] for h in record["ses"]["mail"]["headers"]]
    assert header_names[:2] == ["Return-Path", "Received"]


def test_inbound_mx_refuses_recipients_outside_the_mail_domain(stack, invocations):
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(stack, stack.inbound_mx, mail("Elsewhere", to="someone@example.org"), ["someone@example.org"])
    assert invocations["inbound"] == []


def test_sqs_event_source_deletes_only_the_records_the_relay_did_not_report(stack, invocations):
    sqs = boto3.client("sqs")
    queue = stack.env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"]
    invocations["behaviour"]["relay"] = lambda event: {"batchItemFailures": [
        {"itemIdentifier": r["messageId"]} for r in event["Records"] if json.loads(r["body"])["n"] == 1]}
    mark = len(stack.journal)

    for n in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"notification_id": f"N{n}", "n": n}))
    seen: set = set()
    while len(seen) < 3:
        entry = stack.journal.wait_for("relay", after=mark, timeout=30)
        mark = stack.journal.entries().index(entry) + 1
        seen.update(entry.data["notification_ids"])

    records = [r for event in invocations["relay"] for r in event["Records"]]
    assert all(r["eventSource"] == "aws:sqs" and r["attributes"]["ApproximateReceiveCount"] == "1"
               for r in records)
    assert len(invocations["relay"][0]["Records"]) <= 10
    attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    # the reported one waits for its visibility timeout; the two others are gone
    assert (int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])) \
        == (0, 1)


def test_ses_sending_delivers_to_the_internet_mailbox_and_to_acme_through_its_mx(stack, invocations):
    mark = len(stack.journal)
    raw = (f"From: support@acme.{stack.mail_domain}\r\nTo: jane@example.net, someone@acme.test\r\n"
           "Subject: via SES\r\nMessage-ID: <ses-1@relaydesk.test>\r\n\r\nbody\r\n")

    boto3.client("ses").send_raw_email(Source=f"support@acme.{stack.mail_domain}",
                                       Destinations=["jane@example.net", "someone@acme.test"],
                                       RawMessage={"Data": raw.encode()})

    jane = stack.mailboxes.wait_for("jane@example.net", lambda m: m["Subject"] == "via SES", timeout=30)
    acme = stack.mailboxes.wait_for("someone@acme.test", lambda m: m["Subject"] == "via SES", timeout=30)
    assert jane.message()["Message-ID"] == "<ses-1@relaydesk.test>"
    assert acme.message()["Delivered-To"] == "someone@acme.test"
    acme_hop = stack.journal.wait_for("ses", lambda e: e.data["rcpt"] == "someone@acme.test", after=mark)
    assert acme_hop.data["where"] == f"smtp://127.0.0.1:{stack.customer.mx.port}"


def test_env_file_points_a_subprocess_at_the_same_stack(stack):
    env_sh = (stack.state_dir / "env.sh").read_text()
    env = json.loads((stack.state_dir / "env.json").read_text())

    assert f"export AWS_ENDPOINT_URL={stack.moto.endpoint}" in env_sh
    assert env["RELAYDESK_TICKETS_TABLE"] == os.environ["RELAYDESK_TICKETS_TABLE"]
    assert env["AWS_ACCESS_KEY_ID"] == "testing"

