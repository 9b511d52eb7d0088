"""The relay test harness shared by the relay modules: moto built from template.yaml, the relay handler loaded as
Lambda loads it, and an SQS event source driven one batch at a time."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import SecretStr
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
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.tickets.model import Ticket

from local.lambdas import LambdaContext, load, unload_all
from local.sqs_events import sqs_event

ACCOUNT = "A01RELAYTEST000001"
FAST_SMTP = {"RELAYDESK_SMTP_CONNECT_TIMEOUT": "3", "RELAYDESK_SMTP_COMMAND_TIMEOUT": "3",
             "RELAYDESK_SMTP_DATA_TIMEOUT": "2"}


@dataclass
class Relay:
    """The deployed shape in one process: moto resources, the relay handler, an SQS event source."""

    stores: object
    sqs: object
    handler: object
    responses: list[dict] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)
    ticket: Ticket | None = None

    # --- set-up -----------------------------------------------------------------------------------------------
    def connect(self, email: str, server, *, tls: TlsMode = TlsMode.STARTTLS,
                state: ConnectorState = ConnectorState.ACTIVE, provider: str | None = None) -> str:
        """`provider`: the profile whose limits apply (None: recognised from the host, an unknown server's here)."""
        settings = self.stores.settings
        credentials = SmtpCredentials(host="127.0.0.1", port=server.port, tls_mode=tls, username=server.username,
                                      password=server.password, ca_bundle_pem=server.ca_pem)
        secret = self.stores.secrets.create(settings.secret_prefix + email, credentials.to_secret_string(), {})
        self.stores.directory.create_address(SupportAddress(
            email=email, account_id=ACCOUNT, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
            connector=Connector(host="127.0.0.1", port=server.port, tls_mode=tls, secret_arn=secret, state=state,
                                provider=provider),
            outbound=Verification(status=VerificationStatus.VERIFIED)))
        return secret

    def rotate(self, email: str, server, password: str) -> None:
        """The admin's new password: on the server and in the secret."""
        server.set_password(server.username, password)
        address = self.stores.directory.get_address(email)
        current = SmtpCredentials.model_validate_json(self.stores.secrets.get(address.connector.secret_arn).value)
        changed = current.model_copy(update={"password": SecretStr(password)})
        self.stores.secrets.put_version(address.connector.secret_arn, changed.to_secret_string(), ["AWSCURRENT"])

    def notification(self, address: str, **overrides) -> Notification:
        values = dict(notification_id=new_id("N"), account_id=ACCOUNT, ticket_id=self.ticket.ticket_id,
                      support_address=address, recipients=["jane@example.net"],
                      subject=f"Printer jammed [RD#{self.ticket.ticket_id}]", text_body="We are on it.",
                      html_body="<p>We are on it.</p>")
        values.update(overrides)
        return Notification(**values)

    # --- running ----------------------------------------------------------------------------------------------
    def enqueue(self, *notifications: Notification) -> None:
        for notification in notifications:
            self.stores.queue.send(notification)

    def invoke(self, event: dict) -> dict:
        self.events.append(event)
        response = self.handler(event, LambdaContext(function_name="relaydesk-test-relay", timeout_seconds=60))
        self.responses.append(response)
        return response

    def poll(self) -> int:
        """One batch, as the event source mapping does (deletes what is not in batchItemFailures); no long poll."""
        url = self.stores.settings.notifications_queue_url
        messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                            AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return 0
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        failed = {item["itemIdentifier"]
                  for item in self.invoke(sqs_event(messages, queue_arn=arn, region="us-east-1"))["batchItemFailures"]}
        for message in messages:
            if message["MessageId"] not in failed:
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return len(messages)

    def connections_idle_out(self) -> None:
        """The warm container's pooled connections pass their idle age (pool.MAX_IDLE_SECONDS): the next
        invocation connects and authenticates again."""
        load("relay").services(self.stores)[0].pool.close()

    def time_passes(self) -> None:
        """Every deferred message becomes visible again now, instead of after its delay."""
        url = self.stores.settings.notifications_queue_url
        failed = {item["itemIdentifier"] for item in self.responses[-1]["batchItemFailures"]}
        for record in self.events[-1]["Records"]:
            if record["messageId"] in failed:
                self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=record["receiptHandle"],
                                                   VisibilityTimeout=0)

    def queued(self, url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url or self.stores.settings.notifications_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def record(self, notification: Notification):
        return self.stores.tickets.get_notification(self.ticket.ticket_id, notification.notification_id)

    def failures(self) -> list[str]:
        return [item["itemIdentifier"] for item in self.responses[-1]["batchItemFailures"]]


def relay_harness(aws_stack_env, monkeypatch) -> Iterator[Relay]:
    """The body of each relay test module's `relay` fixture: the account, a ticket, the handler loaded fresh; the
    warm container's pooled connections closed at the end."""
    import boto3
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    for name, value in FAST_SMTP.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws_stores.cache_clear()
    stores = aws_stores()
    stores.directory.create_account(Account(account_id=ACCOUNT, subdomain="acme", name="Acme",
                                            brands=[Brand(brand_id="B1", name="Acme Help")]))
    ticket = Ticket(ticket_id=new_id("T"), account_id=ACCOUNT, support_address="support@acme.test",
                    subject="Printer jammed", requester="jane@example.net")
    stores.tickets.create_ticket(ticket)
    unload_all()
    harness = Relay(stores=stores, sqs=boto3.client("sqs"), handler=load("relay").handler, ticket=ticket)
    yield harness
    for built in load("relay")._built:  # the warm container ends: its pooled connections are closed
        built[1].close()
    unload_all()


def record_signatures(monkeypatch) -> list[bytes]:
    """DKIM signing replaced by a fake signature line in front of the message; returns each signed message, so a
    test can compare the wire with exactly what was signed."""
    from relaydesk.outbound import dkim

    signed: list[bytes] = []

    class Signer:
        def sign(self, message: bytes) -> bytes:
            signed.append(b"DKIM-Signature: v=1; a=rsa-sha256; d=acme.test; s=test; b=fake\r\n" + message)
            return signed[-1]

    monkeypatch.setattr(dkim, "signer_for", lambda address, secrets: Signer())
    return signed
