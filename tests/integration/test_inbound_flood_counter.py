"""The sender flood counter in DynamoDB (moto, tables from template.yaml): a mail whose invocation Lambda retries is
counted once, racing invocations each get their own count, the once-per-mail records expire with the counter, and
the inbound function's IAM policy allows every call the counter makes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from relaydesk.inbound.loops import count_sender, flood_key

from .test_inbound_handler import CORPUS, Context, load_handler, ses_event

ACCOUNT = "A01M8000000000000AC"
RECEIVED_AT = datetime(2026, 11, 24, 9, 15, 2, tzinfo=UTC)  # events/inbound_ses.json
# TransactWriteItems is authorized per item, by the action each item performs.
TRANSACT_ITEM_ACTIONS = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                         "ConditionCheck": "dynamodb:ConditionCheckItem"}


@pytest.fixture
def stack(aws_stack):
    from relaydesk.accounts import Account
    from relaydesk.addresses.model import SupportAddress

    aws_stack.directory.create_account(Account(account_id=ACCOUNT, subdomain="acme", name="Acme"))
    aws_stack.directory.create_address(SupportAddress(email="support@acme.test", account_id=ACCOUNT, is_default=True))
    return aws_stack


@pytest.fixture
def counters(stack):
    from relaydesk.store.inbound_dynamodb import aws_inbound_ports

    return aws_inbound_ports().counters


def counter_items(stack) -> dict[str, dict]:
    import boto3

    table = boto3.resource("dynamodb").Table(stack.settings.counters_table)
    return {item["pk"]: item for item in table.scan(ConsistentRead=True)["Items"]}


def mail_from(sender: str, subject: str) -> bytes:
    return (f"X-MS-Exchange-Organization-AutoForwarded: true\r\nFrom: {sender}\r\nTo: support@acme.test\r\n"
            f"Subject: {subject}\r\nMessage-ID: <{subject.replace(' ', '.')}@example.net>\r\n"
            "Content-Type: text/plain\r\n\r\nPlease help.\r\n").encode()


def test_an_invocation_that_fails_after_counting_is_retried_and_the_mail_counts_once(stack, monkeypatch):
    from relaydesk.store.inbound_dynamodb import DynamoLedger

    real_claim, throttled = DynamoLedger.claim, [True]

    def claim_throttled_for_the_first_invocation(self, ses_message_id: str, decision_json: str) -> str:
        if throttled[0]:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}},
                              "PutItem")
        return real_claim(self, ses_message_id, decision_json)

    monkeypatch.setattr(DynamoLedger, "claim", claim_throttled_for_the_first_invocation)
    handler = load_handler()
    stack.blobs.put("inbound/ses0000000000000101", (CORPUS / "outlook_new_request_m365_forward.eml").read_bytes())

    with pytest.raises(ClientError):  # the claim is tried again until the invocation's (short) time is spent
        handler(ses_event("ses0000000000000101"), Context(timeout_ms=1000))
    throttled[0] = False
    [result] = handler(ses_event("ses0000000000000101"), Context())["results"]  # Lambda's retry

    assert result["outcome"] == "new_ticket"
    assert len(stack.tickets.list_tickets(ACCOUNT)) == 1
    assert counter_items(stack)[flood_key(ACCOUNT, "jane@example.net", RECEIVED_AT)]["count"] == 1


def test_the_21st_mail_of_one_sender_in_an_hour_is_rate_limited_through_the_function(stack):
    handler = load_handler()
    outcomes = []
    for i in range(21):
        ses_id = f"ses{i:016d}"
        stack.blobs.put(f"inbound/{ses_id}", mail_from("flood@example.net", f"flood {i}"))
        outcomes.append(handler(ses_event(ses_id), Context())["results"][0]["outcome"])

    assert outcomes == ["new_ticket"] * 20 + ["suspended"]
    suspended = [t for t in stack.tickets.list_tickets(ACCOUNT) if t.status.value == "suspended"]
    assert [t.suspension_reason.value for t in suspended] == ["rate_limited"]


def test_the_same_mail_counted_again_gets_its_first_count_and_adds_nothing(counters, stack):
    key = flood_key(ACCOUNT, "kim@example.net", RECEIVED_AT)
    first = [counters.count_once(key, f"ses{i}", expires_at=1_790_000_000) for i in range(3)]

    again = counters.count_once(key, "ses1", expires_at=1_790_000_000)

    assert (first, again) == ([1, 2, 3], 2)
    assert counter_items(stack)[key]["count"] == 3


def test_counts_in_dynamodb_are_per_account_per_sender_and_per_clock_hour(counters):
    at = datetime(2026, 11, 24, 9, 59, 59, tzinfo=UTC)
    assert [count_sender(counters, "A1", "kim@example.net", at, f"m{i}") for i in range(2)] == [1, 2]
    assert count_sender(counters, "A2", "kim@example.net", at, "m2") == 1
    assert count_sender(counters, "A1", "lee@example.net", at, "m3") == 1
    assert count_sender(counters, "A1", "kim@example.net", at + timedelta(seconds=1), "m4") == 1


def test_the_once_per_mail_records_expire_with_the_counter(counters, stack):
    count_sender(counters, ACCOUNT, "kim@example.net", RECEIVED_AT, "ses1")
    count_sender(counters, ACCOUNT, "kim@example.net", RECEIVED_AT, "ses2")

    items = counter_items(stack)

    end_of_next_hour = int(datetime(2026, 11, 24, 11, 0, tzinfo=UTC).timestamp())
    assert len(items) == 3  # the counter and one record per mail
    assert {int(item["expires_at"]) for item in items.values()} == {end_of_next_hour}


def test_a_mail_counted_concurrently_with_another_gets_its_own_count(counters, stack):
    """Another invocation counts its mail between this one's read and its write: this one reads again."""
    key = flood_key(ACCOUNT, "kim@example.net", RECEIVED_AT)
    table = counters._table
    real_get_item, raced = table.get_item, []

    class RacingTable:
        name, meta = table.name, table.meta

        def get_item(self, **kwargs):
            item = real_get_item(**kwargs)
            if not raced:
                raced.append(counters.count_once(key, "rival", expires_at=1_790_000_000))
            return item

    from relaydesk.store.inbound_dynamodb import DynamoCounters

    mine = DynamoCounters(RacingTable()).count_once(key, "mine", expires_at=1_790_000_000)

    assert (raced, mine) == ([1], 2)
    assert counter_items(stack)[key]["count"] == 2


def test_the_inbound_policy_allows_every_call_the_flood_counter_makes(counters, stack):
    from local.aws_resources import load_template

    from .test_inbound_handler import ROOT

    called: set[str] = set()

    def record(params, model, **_):
        if model.name == "TransactWriteItems":
            called.update(TRANSACT_ITEM_ACTIONS[op] for item in params["TransactItems"] for op in item)
        else:
            called.add(f"dynamodb:{model.name}")

    counters._client.meta.events.register("provide-client-params.dynamodb.*", record)
    try:
        key = flood_key(ACCOUNT, "kim@example.net", RECEIVED_AT)
        counters.count_once(key, "ses1", expires_at=1_790_000_000)
        counters.count_once(key, "ses1", expires_at=1_790_000_000)  # the repeat: reads the mail's record
    finally:
        counters._client.meta.events.unregister("provide-client-params.dynamodb.*", record)

    policies = load_template(ROOT / "template.yaml")["Resources"]["InboundFunction"]["Properties"]["Policies"]
    granted = {action for policy in policies for statement in policy.get("Statement", [])
               if statement["Resource"] == {"Fn::GetAtt": ["CountersTable", "Arn"]}
               for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    assert called == {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"}
    assert called <= granted
