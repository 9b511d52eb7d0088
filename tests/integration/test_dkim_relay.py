"""The relay function with DKIM on, end to end: moto from template.yaml, the relay handler on an SQS batch, a local
STARTTLS + AUTH smarthost. What reaches the smarthost carries our two signatures, and dkimpy verifies them."""

from __future__ import annotations

import boto3
import pytest
from relaydesk.accounts import Account, Brand
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.dkim import domains
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.outbound import dkim as outbound_dkim
from relaydesk.tickets.model import DeliveryStatus, Ticket

from local.lambdas import LambdaContext, load, unload_all
from local.sqs_events import sqs_event
from tests.dkim_helpers import offline_dns, verify_all

ACCOUNT = "A01DKIMRELAY000001"
SUPPORT = "support@acme.test"


@pytest.fixture
def relay_with_dkim(aws_stack_env, smarthost, monkeypatch):
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    for name in ("CONNECT", "COMMAND", "DATA"):
        monkeypatch.setenv(f"RELAYDESK_SMTP_{name}_TIMEOUT", "5")
    get_settings.cache_clear()
    aws_stores.cache_clear()
    outbound_dkim.clear_cache()
    stores = aws_stores()
    stores.directory.create_account(Account(account_id=ACCOUNT, subdomain="acme", name="Acme",
                                            brands=[Brand(brand_id="B1", name="Acme Help")]))
    credentials = SmtpCredentials(host="127.0.0.1", port=smarthost.port, tls_mode=TlsMode.STARTTLS,
                                  username=smarthost.username, password=smarthost.password,
                                  ca_bundle_pem=smarthost.ca_pem)
    secret = stores.secrets.create(stores.settings.secret_prefix + SUPPORT, credentials.to_secret_string(), {})
    stores.directory.create_address(SupportAddress(
        email=SUPPORT, account_id=ACCOUNT, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
        connector=Connector(host="127.0.0.1", port=smarthost.port, secret_arn=secret, state=ConnectorState.ACTIVE),
        outbound=Verification(status=VerificationStatus.VERIFIED)))
    ticket = Ticket(ticket_id=new_id("T"), account_id=ACCOUNT, support_address=SUPPORT, subject="Printer jammed",
                    requester="jane@example.net")
    stores.tickets.create_ticket(ticket)
    keyring, _ = domains.setup(stores, "acme.test")
    domains.set_signing(stores, "acme.test", True)  # the records are "published" in offline_dns below
    unload_all()
    handler = load("relay").handler
    sqs = boto3.client("sqs")

    def send_one() -> Notification:
        notification = Notification(notification_id=new_id("N"), account_id=ACCOUNT, ticket_id=ticket.ticket_id,
                                    support_address=SUPPORT, recipients=["jane@example.net"],
                                    subject=f"Printer jammed [RD#{ticket.ticket_id}]", text_body="We are on it.",
                                    html_body="<p>We are on it.</p>")
        stores.queue.send(notification)
        url = stores.settings.notifications_queue_url
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       AttributeNames=["All"], MessageAttributeNames=["All"])["Messages"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        response = handler(sqs_event(messages, queue_arn=arn, region="us-east-1"),
                           LambdaContext(function_name="relaydesk-test-relay", timeout_seconds=60))
        assert response["batchItemFailures"] == []
        record = stores.tickets.get_notification(ticket.ticket_id, notification.notification_id)
        assert record.status is DeliveryStatus.DELIVERED
        return notification

    yield stores, keyring, send_one
    unload_all()
    outbound_dkim.clear_cache()


def test_the_relay_sends_notifications_signed_with_both_keys_of_the_customer_domain(relay_with_dkim, smarthost):
    _, keyring, send_one = relay_with_dkim

    send_one()

    [received] = smarthost.wait_for(1)
    dns = offline_dns(keyring)
    assert received.data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=acme.test;")
    assert verify_all(received.data, dns) == [True, True]
    second_from = received.data.replace(b"\r\nFrom: ", b"\r\nFrom: Mallory <m@acme.test>\r\nFrom: ", 1)
    assert verify_all(second_from, dns) == [False, False]


def test_with_signing_disabled_the_relay_sends_no_signature_at_all(relay_with_dkim, smarthost):
    stores, _, send_one = relay_with_dkim
    domains.set_signing(stores, "acme.test", False)

    send_one()

    [received] = smarthost.wait_for(1)
    assert b"DKIM-Signature" not in received.data
