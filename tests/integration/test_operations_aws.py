"""The operations adapters and handlers against moto, as template.yaml provisions it: the hold-alert ledger's
compare-and-set, the suppression list, the hold alerts function on a change record and on its schedule, and the SES
feedback function on an SNS message."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta
from email import message_from_string
from email.policy import default
from pathlib import Path
from types import SimpleNamespace

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import AddressKind, Connector, ConnectorState, SupportAddress
from relaydesk.alerts.model import AlertKind, AlertState, HoldAlert
from relaydesk.clock import utcnow
from relaydesk.outbound.suppression import Suppression, SuppressionReason

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = SimpleNamespace(function_name="ops", memory_limit_in_mb=256, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:ops")
EMAIL = "support@acme.test"


def handler(function: str):
    spec = importlib.util.spec_from_file_location(f"{function}_app_integration", ROOT / "functions" / function /
                                                  "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def sent_mail() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return [message_from_string(m.raw_data, policy=default)
            for m in ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages]


@pytest.fixture
def held(aws_stack):
    aws_stack.directory.create_account(Account(account_id="A1", subdomain="acme", name="Acme",
                                               admin_emails=["it@acme.test"]))
    aws_stack.directory.put_address(SupportAddress(
        email=EMAIL, account_id="A1", kind=AddressKind.SMTP_CONNECTOR, last_error=(
            "auth_failed: smtp.acme.test refused the credentials (535 5.7.8 bad). Notifications are held until the "
            "credentials change. What to do: Change the password."),
        connector=Connector(host="smtp.acme.test", secret_arn="arn:x", state=ConnectorState.AUTH_FAILED,
                            held_since=utcnow())))
    return aws_stack


def test_the_ledger_writes_are_compare_and_set(aws_stack):
    ledger = aws_stack.hold_alerts
    alert = HoldAlert(email=EMAIL, account_id="A1", held_since=utcnow(), kind=AlertKind.HOLD,
                      state=AlertState.SENDING, claimed_at=utcnow())

    assert ledger.put_if(alert, None) and not ledger.put_if(alert, None)
    assert ledger.get(EMAIL).version == 1
    assert not ledger.put_if(alert, 0) and ledger.put_if(alert, 1)
    assert [a.email for a in ledger.list()] == [EMAIL]
    assert not ledger.delete_if(EMAIL, 1) and ledger.delete_if(EMAIL, 2) and ledger.get(EMAIL) is None


def test_the_suppression_list_keeps_the_first_report_and_is_per_account(aws_stack):
    first = Suppression(account_id="A1", recipient="Jane@Example.net", reason=SuppressionReason.BOUNCE,
                        detail="550 5.1.1")
    aws_stack.suppressions.add(first)
    aws_stack.suppressions.add(first.model_copy(update={"reason": SuppressionReason.COMPLAINT}))

    found = aws_stack.suppressions.suppressed("A1", ["jane@example.net", "bob@example.net"])
    assert list(found) == ["jane@example.net"] and found["jane@example.net"].reason is SuppressionReason.BOUNCE
    assert aws_stack.suppressions.suppressed("A2", ["jane@example.net"]) == {}
    # A relay batch asks for all its accounts' recipients at once (one BatchGetItem): the same answers, by account.
    many = aws_stack.suppressions.suppressed_many({"A1": ["JANE@example.net", "bob@example.net"],
                                                   "A2": ["jane@example.net"]})
    assert {account: list(found) for account, found in many.items()} == {"A1": ["jane@example.net"], "A2": []}
    assert aws_stack.suppressions.remove("A1", "JANE@example.net") and not aws_stack.suppressions.remove(
        "A1", "jane@example.net")


def test_a_notifications_recipients_are_looked_up_in_batches_and_none_is_left_unchecked(aws_stack, monkeypatch):
    """150 recipients: two calls of 100 keys at most; keys DynamoDB leaves unprocessed are asked again, then read
    one by one, so a suppressed recipient is never missed."""
    suppressions = aws_stack.suppressions
    for recipient in ("r5@example.net", "r140@example.net"):
        suppressions.add(Suppression(account_id="A1", recipient=recipient, reason=SuppressionReason.BOUNCE))
    recipients = [f"R{i}@example.net" for i in range(150)]
    client = suppressions._table.meta.client
    calls = []
    real = client.batch_get_item
    monkeypatch.setattr(client, "batch_get_item", lambda **kw: calls.append(kw) or real(**kw))
    assert set(suppressions.suppressed("A1", recipients)) == {"r5@example.net", "r140@example.net"}
    assert [len(next(iter(c["RequestItems"].values()))["Keys"]) for c in calls] == [100, 50]

    monkeypatch.setattr(client, "batch_get_item", lambda **kw: {"Responses": {}, "UnprocessedKeys": kw["RequestItems"]})
    monkeypatch.setattr("relaydesk.store.suppressions.time.sleep", lambda seconds: None)
    assert set(suppressions.suppressed("A1", recipients[:10])) == {"r5@example.net"}


def test_a_change_record_of_a_held_address_mails_its_admins_through_ses(held):
    record = {"eventID": "1", "eventName": "MODIFY", "eventSource": "aws:dynamodb",
              "dynamodb": {"Keys": {"pk": {"S": f"ADDRESS#{EMAIL}"}, "sk": {"S": "ACCOUNT#A1"}},
                           "SequenceNumber": "100", "SizeBytes": 40, "StreamViewType": "KEYS_ONLY"}}

    response = handler("hold_alerts")({"Records": [record]}, CONTEXT)

    assert response == {"batchItemFailures": []}
    [message] = sent_mail()
    assert message["To"] == "it@acme.test" and message["X-Relaydesk-Alert"] == "hold"
    assert "535 5.7.8 bad" in message.get_content() and "Change the password." in message.get_content()


def test_the_schedule_sends_the_daily_reminder_and_counts_held_addresses(held):
    alerts = handler("hold_alerts")
    alerts({"run": "sweep"}, CONTEXT)
    record = held.hold_alerts.get(EMAIL)
    held.hold_alerts.put_if(record.model_copy(update={"notified_at": record.notified_at - timedelta(days=1)}),
                            record.version)

    result = alerts({"run": "remind"}, CONTEXT)

    assert result == {"held": 1, "sent": 1}
    assert [m["X-Relaydesk-Alert"] for m in sent_mail()] == ["hold", "reminder"]


def test_an_sns_bounce_suppresses_the_recipient(held):
    message = {"eventType": "Bounce", "mail": {"messageId": "ses-1", "headers": [
        {"name": "X-Relaydesk-From-Account-Id", "value": "A1"}]},
        "bounce": {"bounceType": "Permanent", "bouncedRecipients": [
            {"emailAddress": "it@acme.test", "status": "5.1.1", "diagnosticCode": "smtp; 550 no such user"}]}}
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message),
                                                            "Timestamp": datetime.now().isoformat()}}]}

    result = handler("ses_feedback")(event, CONTEXT)

    assert result == {"results": [{"kind": "bounce", "recorded": False, "suppressed": 1}]}
    assert [s.recipient for s in held.suppressions.list("A1")] == ["it@acme.test"]
    handler("hold_alerts")({"run": "sweep"}, CONTEXT)
    assert sent_mail() == []  # the only admin contact bounced: the alert goes to nobody rather than bounce again
