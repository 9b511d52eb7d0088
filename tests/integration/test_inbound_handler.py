"""The inbound function against moto resources built from template.yaml: SES event in, ticket in DynamoDB,
notification on the queue, raw mail kept; failures raise for Lambda's retry; `relaydesk inbound replay` recovers."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import NotFoundError
from relaydesk.notification import Notification

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "data" / "inbound"
SYSTEM_ADDRESS = "support@acme.mail.relaydesk.test"


@dataclass
class Context:
    function_name: str = "relaydesk-inbound"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:relaydesk-inbound"
    aws_request_id: str = "3d1f8c2e-0000-4000-8000-000000000001"
    timeout_ms: int = 120_000  # the function's (template.yaml)
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return self.timeout_ms - int((time.monotonic() - self.started) * 1000)


def load_handler():
    spec = importlib.util.spec_from_file_location("relaydesk_inbound_app_under_test",
                                                  ROOT / "functions" / "inbound" / "app.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.handler


def ses_event(message_id: str, **verdicts: str) -> dict:
    event = json.loads((ROOT / "events" / "inbound_ses.json").read_text())
    record = event["Records"][0]["ses"]
    record["mail"]["messageId"] = message_id
    record["receipt"]["recipients"] = [SYSTEM_ADDRESS]
    for name, status in verdicts.items():
        record["receipt"][f"{name}Verdict"] = {"status": status}
    return event


@pytest.fixture
def stack(aws_stack):
    aws_stack.directory.create_account(Account(account_id="A01M8000000000000AC", subdomain="acme", name="Acme"))
    aws_stack.directory.create_address(SupportAddress(email="support@acme.test", account_id="A01M8000000000000AC",
                                                      is_default=True))
    return aws_stack


def deliver(stack, name: str, message_id: str) -> None:
    stack.blobs.put(f"inbound/{message_id}", (CORPUS / name).read_bytes())


def queued(stack) -> list[Notification]:
    import boto3

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.settings.notifications_queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=0).get("Messages", [])
    return [Notification.model_validate_json(m["Body"]) for m in messages]


def test_a_forwarded_request_becomes_a_ticket_and_one_queued_acknowledgement(stack, capsys, caplog):
    handler = load_handler()
    deliver(stack, "outlook_new_request_m365_forward.eml", "ses0000000000000001")

    response = handler(ses_event("ses0000000000000001"), Context())
    again = handler(ses_event("ses0000000000000001"), Context())  # SES/Lambda may invoke twice

    [result] = response["results"]
    assert result["outcome"] == "new_ticket"
    assert again["results"][0]["ticket_id"] == result["ticket_id"]
    ticket = stack.tickets.get_ticket(result["ticket_id"])
    assert (ticket.requester, ticket.support_address, ticket.ccs) == (
        "jane@example.net", "support@acme.test", ["max@example.net"])
    assert len(stack.tickets.list_tickets("A01M8000000000000AC")) == 1
    [note] = queued(stack)
    assert note.ticket_id == ticket.ticket_id and note.recipients == ["jane@example.net"]
    assert ticket.notifications[0].notification_id == note.notification_id
    assert stack.blobs.exists("inbound/ses0000000000000001")
    assert flood_count(stack, "jane@example.net") == 1  # the second invocation counted nothing
    # A logger made by an earlier test keeps the stdout of that moment, so the records are read too, with their
    # extra fields (what the JSON line would carry).
    printed = capsys.readouterr()
    logs = printed.out + printed.err + "\n".join(json.dumps(vars(record), default=str) for record in caplog.records)
    assert '"outcome": "new_ticket"' in logs or '"outcome":"new_ticket"' in logs  # the outcome is logged ...
    assert "paper jam" not in logs  # ... the customer's words are not


def test_manual_forward_is_suspended_beside_the_normal_ticket(stack):
    handler = load_handler()
    deliver(stack, "outlook_new_request_m365_forward.eml", "ses0000000000000002")
    deliver(stack, "manual_forward_outlook.eml", "ses0000000000000003")
    handler(ses_event("ses0000000000000002"), Context())
    handler(ses_event("ses0000000000000003"), Context())
    tickets = {t.status.value: t for t in stack.tickets.list_tickets("A01M8000000000000AC")}
    assert set(tickets) == {"new", "suspended"}
    assert tickets["suspended"].suspension_reason.value == "manual_forward"


def test_attachments_land_in_s3_under_the_ticket(stack):
    handler = load_handler()
    deliver(stack, "apple_mail_pdf_postfix_forward.eml", "ses0000000000000004")
    [result] = handler(ses_event("ses0000000000000004"), Context())["results"]
    [attachment] = stack.tickets.get_ticket(result["ticket_id"]).comments[0].attachments
    assert attachment.s3_key.startswith(f"attachments/A01M8000000000000AC/{result['ticket_id']}/")
    assert stack.blobs.get(attachment.s3_key).startswith(b"%PDF-1.4")


def flood_count(stack, sender: str) -> int:
    import boto3

    key = "inbound-sender#A01M8000000000000AC#" + sender + "#2026112409"  # events/inbound_ses.json's hour
    item = boto3.resource("dynamodb").Table(stack.settings.counters_table).get_item(
        Key={"pk": key}, ConsistentRead=True).get("Item")
    return int(item["count"]) if item else 0


def test_the_flood_counter_is_shared_in_dynamodb(stack):
    import boto3
    from relaydesk.store.inbound_dynamodb import DynamoCounters

    key = "inbound-sender#A#x@example.net#2026112409"
    one, other = (DynamoCounters(boto3.session.Session().resource("dynamodb").Table(stack.settings.counters_table))
                  for _ in range(2))  # two Lambda containers
    assert [one.count_once(key, "m1", 1_790_000_000), other.count_once(key, "m2", 1_790_000_000),
            one.count_once(key, "m3", 1_790_000_000)] == [1, 2, 3]


def test_a_missing_raw_mail_raises_so_lambda_retries_and_the_dlq_replay_recovers_it(stack, capsys):
    import boto3
    from relaydesk.cli import main

    handler = load_handler()
    event = ses_event("ses0000000000000005")
    with pytest.raises(NotFoundError):  # raised, not swallowed: Lambda retries, then the on-failure destination
        handler(event, Context())
    # Lambda's on-failure destination puts its record (with the event) on the inbound DLQ
    boto3.client("sqs").send_message(QueueUrl=stack.settings.inbound_dlq_url, MessageBody=json.dumps(
        {"version": "1.0", "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
         "requestPayload": event, "responseContext": {"functionError": "Unhandled"}}))
    deliver(stack, "outlook_new_request_m365_forward.eml", "ses0000000000000005")  # S3 caught up
    capsys.readouterr()  # the handler's own log lines

    code = main(["--json", "inbound", "replay", "--all"])

    rows = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["ses_message_id"], r["outcome"]) for r in rows] == [("ses0000000000000005", "new_ticket")]
    assert len(stack.tickets.list_tickets("A01M8000000000000AC")) == 1
    left = boto3.client("sqs").receive_message(QueueUrl=stack.settings.inbound_dlq_url, WaitTimeSeconds=0)
    assert not left.get("Messages")


def test_replay_by_ses_message_id_reads_the_raw_mail_when_the_dlq_does_not_hold_it(stack, capsys):
    from relaydesk.cli import main

    raw = (CORPUS / "gmail_inline_image_google_forward.eml").read_bytes()
    stored = (b"Return-Path: <sam.lee@gmail.com>\r\nReceived: from mail-sor-f41.google.com by "
              b"inbound-smtp.us-east-1.amazonaws.com with SMTP id ses0000000000000006 for "
              b"support@acme.mail.relaydesk.test; Tue, 24 Nov 2026 10:03:12 +0000\r\n"
              b"X-SES-Spam-Verdict: PASS\r\nX-SES-Virus-Verdict: PASS\r\n") + raw
    stack.blobs.put("inbound/ses0000000000000006", stored)

    code = main(["--json", "inbound", "replay", "--ses-message-id", "ses0000000000000006"])

    rows = json.loads(capsys.readouterr().out)
    assert code == 0 and rows[0]["outcome"] == "new_ticket"
    ticket = stack.tickets.get_ticket(rows[0]["ticket"])
    assert ticket.requester == "sam.lee@gmail.com"


def test_the_ledger_keeps_the_first_decision_of_an_ses_message(stack):
    from relaydesk.store.inbound_dynamodb import aws_inbound_ports

    ledger = aws_inbound_ports().ledger
    assert ledger.get("ses0000000000000007") is None
    assert ledger.claim("ses0000000000000007", '{"first": true}') == '{"first": true}'
    assert ledger.claim("ses0000000000000007", '{"second": true}') == '{"first": true}'
    ledger.complete("ses0000000000000007")
    assert ledger.get("ses0000000000000007") == ('{"first": true}', True)


class DynamoDbThrottling:
    """The stack's DynamoDB clients (the handler's stores and inbound ports) answer as a throttled table does once the
    SDK's own retries ran out: per operation, the first `first` calls refused (None: all of them, those of `only`),
    then the next `lost` ones made and their answer lost (a read timeout)."""

    def __init__(self, first: int | None, *, lost: int = 0, only: frozenset[str] = frozenset()) -> None:
        self.first, self.lost, self.only = first, lost, only
        self.calls: dict[str, int] = {}
        self.refused = 0

    def before(self, model, **_):
        from botocore.awsrequest import AWSResponse

        n = self.calls[model.name] = self.calls.get(model.name, 0) + 1
        if (self.only and model.name not in self.only) or (self.first is not None and n > self.first):
            return None
        self.refused += 1
        return AWSResponse("https://dynamodb.invalid/", 400, {}, None), {
            "Error": {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeded"},
            "ResponseMetadata": {"HTTPStatusCode": 400}}

    def after(self, model, **_):
        from botocore.exceptions import ReadTimeoutError

        if self.first is not None and self.first < self.calls[model.name] <= self.first + self.lost:
            raise ReadTimeoutError(endpoint_url="https://dynamodb.invalid/")

    def clients(self, stack):
        from relaydesk.store.inbound_dynamodb import aws_inbound_ports

        ports = aws_inbound_ports()
        return {id(c): c for c in (stack.tickets._table.meta.client, stack.directory._table.meta.client,
                                   ports.ledger._table.meta.client, ports.counters._client)}.values()

    def __call__(self, stack):
        import contextlib

        @contextlib.contextmanager
        def active():
            clients = self.clients(stack)
            for client in clients:
                client.meta.events.register_first("before-call.dynamodb", self.before, unique_id="throttling")
                client.meta.events.register_first("after-call.dynamodb", self.after, unique_id="lost-answers")
            try:
                yield self
            finally:
                for client in clients:
                    client.meta.events.unregister("before-call.dynamodb", unique_id="throttling")
                    client.meta.events.unregister("after-call.dynamodb", unique_id="lost-answers")

        return active()


def test_under_throttling_each_call_is_tried_again_and_the_mail_becomes_one_ticket(stack):
    handler = load_handler()
    deliver(stack, "outlook_new_request_m365_forward.eml", "ses0000000000000008")

    with DynamoDbThrottling(first=2, lost=1)(stack) as throttling:
        [result] = handler(ses_event("ses0000000000000008"), Context())["results"]

    assert throttling.refused >= 2 * len(throttling.calls) >= 2 * 5  # GetItem, PutItem, Query, TransactWriteItems, ...
    assert result["outcome"] == "new_ticket" and not result["replayed"]
    [ticket] = stack.tickets.list_tickets("A01M8000000000000AC")
    assert ticket.ticket_id == result["ticket_id"] and len(ticket.comments) == 1
    assert [n.notification_id for n in queued(stack)] == [result["notification_id"]]
    assert flood_count(stack, "jane@example.net") == 1  # the counter's lost answer did not count the mail twice


def test_throttled_until_the_time_is_spent_the_mail_goes_to_the_dlq_with_its_error_then_replays_once(stack, capsys):
    import boto3
    from botocore.exceptions import ClientError
    from relaydesk.cli import main

    handler = load_handler()
    deliver(stack, "outlook_new_request_m365_forward.eml", "ses0000000000000009")
    event = ses_event("ses0000000000000009")

    with DynamoDbThrottling(None, only=frozenset({"TransactWriteItems"}))(stack) as throttling, \
            pytest.raises(ClientError, match="ProvisionedThroughputExceededException") as raised:
        handler(event, Context(timeout_ms=1200))  # short of time: a few tries, then it is handed back

    assert throttling.refused >= 2
    assert stack.tickets.list_tickets("A01M8000000000000AC") == []
    assert stack.blobs.exists("inbound/ses0000000000000009")
    boto3.client("sqs").send_message(QueueUrl=stack.settings.inbound_dlq_url, MessageBody=json.dumps(
        {"version": "1.0", "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 3},
         "requestPayload": event, "responseContext": {"functionError": "Unhandled"},
         "responsePayload": {"errorType": type(raised.value).__name__, "errorMessage": str(raised.value)}}))
    capsys.readouterr()

    assert main(["--json", "inbound", "replay", "--all"]) == 0
    assert [row["outcome"] for row in json.loads(capsys.readouterr().out)] == ["new_ticket"]
    left = boto3.client("sqs").receive_message(QueueUrl=stack.settings.inbound_dlq_url, WaitTimeSeconds=0)
    assert not left.get("Messages")

    [ticket] = stack.tickets.list_tickets("A01M8000000000000AC")
    assert len(ticket.comments) == 1
    assert [n.notification_id for n in queued(stack)] == [ticket.notifications[0].notification_id]
