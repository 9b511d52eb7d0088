"""The stack a chaos run drives, on loopback: moto with template.yaml's resources (local/moto_stack.py), the
customer's smarthost (local/smarthost.py, STARTTLS + AUTH with a local CA), and per fault class one account with
a support address on its own smarthost connector and one on the default outbound (SES).

Time is scaled so a run takes minutes: the relay's timeout, the queue's visibility timeout, the claim's window and
the retry delays are seconds, in the same order as the template's (claim > visibility timeout > timeout).
"""

from __future__ import annotations

import json
import secrets
import tempfile
from dataclasses import dataclass
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from relaydesk.accounts import Account, Brand, system_address
from relaydesk.addresses.limits import set_limits
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.clock import utcnow
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.ids import new_id
from relaydesk.markers import message_id_for
from relaydesk.notification import AttachmentRef, Notification, NotificationKind
from relaydesk.tickets.model import NotificationRecord, Ticket

from local.ca import LocalCA
from local.moto_stack import MotoStack
from local.smarthost import SmtpServer


@dataclass(frozen=True)
class Timing:
    """Seconds. The template's are 60 (relay timeout), 370 (visibility), 430 (claim), 120 (first retry)."""

    relay_timeout: float = 8.0
    visibility_timeout: int = 9
    claim_window: float = 10.0
    first_retry: float = 0.4  # 1, 1, 4, 11 s after attempts 1 to 4 (rounded up to whole seconds by SQS)
    smtp_connect: float = 1.0
    smtp_command: float = 1.0
    smtp_data: float = 1.0
    inbound_timeout: float = 20.0
    grace: float = 2.0  # how long past its timeout an invocation may answer before it counts as killed

    def env(self) -> dict[str, str]:
        return {"RELAYDESK_SMTP_CONNECT_TIMEOUT": str(self.smtp_connect),
                "RELAYDESK_SMTP_COMMAND_TIMEOUT": str(self.smtp_command),
                "RELAYDESK_SMTP_DATA_TIMEOUT": str(self.smtp_data),
                "RELAYDESK_RELAY_IN_PROGRESS_SECONDS": str(self.claim_window),
                "RELAYDESK_RETRY_FIRST_SECONDS": str(self.first_retry),
                "POWERTOOLS_LOG_LEVEL": "INFO", "POWERTOOLS_METRICS_DISABLED": "true"}


@dataclass
class ClassAccount:
    """One fault class's tenant: its account, connector address (smarthost) and default-outbound address (SES)."""

    name: str
    account_id: str
    subdomain: str
    connector_address: str
    ses_address: str
    system_address: str


@dataclass
class LaneResources:
    """What one lane (one class at a time) owns: its notifications queue and DLQ, made like template.yaml's, and
    its own smarthost (so one class's SMTP faults never reach another's mail)."""

    queue_url: str
    dlq_url: str
    smarthost: SmtpServer


class World:
    def __init__(self, state_dir: Path, timing: Timing) -> None:
        self.state_dir = state_dir
        self.timing = timing
        self.moto = MotoStack(state_dir / "aws")
        self._ca_dir = tempfile.TemporaryDirectory(prefix="relaydesk-chaos-ca-")
        self.ca = LocalCA(self._ca_dir.name)
        self.password = secrets.token_urlsafe(16)
        self.smarthosts: list[SmtpServer] = []
        self.stores: Any = None
        self.settings: Any = None
        self.enqueued: dict[str, Notification] = {}  # what this run queued itself, by notification id

    def start(self) -> World:
        from chaos import moto_fidelity

        moto_fidelity.apply()
        self.moto.start()
        from relaydesk.wiring import aws_stores

        self.stores = aws_stores()
        self.settings = self.stores.settings
        self.sqs = self.moto.session().client("sqs")
        self.s3 = self.moto.session().client("s3")
        return self

    def stop(self) -> None:
        for smarthost in self.smarthosts:
            smarthost.stop()
        self.moto.stop()
        self._ca_dir.cleanup()

    def lane(self, number: int) -> LaneResources:
        """A copy of the template's notifications queue and DLQ (same retention and maxReceiveCount), with the
        scaled visibility timeout, and a smarthost."""
        template = self.sqs.get_queue_attributes(QueueUrl=self.settings.notifications_queue_url,
                                                 AttributeNames=["All"])["Attributes"]
        dlq_template = self.sqs.get_queue_attributes(QueueUrl=self.settings.notifications_dlq_url,
                                                     AttributeNames=["All"])["Attributes"]
        dlq_url = self.sqs.create_queue(QueueName=f"chaos-lane{number}-dlq", Attributes={
            "MessageRetentionPeriod": dlq_template["MessageRetentionPeriod"]})["QueueUrl"]
        dlq_arn = self.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        redrive = json.loads(template["RedrivePolicy"])
        queue_url = self.sqs.create_queue(QueueName=f"chaos-lane{number}", Attributes={
            "MessageRetentionPeriod": template["MessageRetentionPeriod"],
            "VisibilityTimeout": str(self.timing.visibility_timeout),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn,
                                         "maxReceiveCount": redrive["maxReceiveCount"]})})["QueueUrl"]
        smarthost = SmtpServer(self.ca, hostname="smtp.chaos.test").start()  # each tenant adds its own mailbox
        self.smarthosts.append(smarthost)
        return LaneResources(queue_url, dlq_url, smarthost)

    def worker_env(self, lane: LaneResources) -> dict[str, str]:
        return {**self.moto.env, **self.timing.env(), "RELAYDESK_NOTIFICATIONS_QUEUE_URL": lane.queue_url,
                "RELAYDESK_NOTIFICATIONS_DLQ_URL": lane.dlq_url}

    # --- a fault class's tenant -----------------------------------------------------------------------------------

    def tenant(self, name: str, smarthost: SmtpServer) -> ClassAccount:
        subdomain = name.replace("_", "").lower()[:20] + secrets.token_hex(2)
        account_id = new_id("A")
        directory = self.stores.directory
        directory.create_account(Account(account_id=account_id, subdomain=subdomain, name=f"Chaos {name}",
                                         brands=[Brand(brand_id="B1", name=f"Chaos {name} Help")]))
        connector_address = f"support@{subdomain}.test"
        # Each tenant signs in as its own mailbox, as customers do: the shaper's sending limits are per mailbox at
        # its smarthost, so classes running side by side on 127.0.0.1 do not share one mailbox's 30 a minute.
        username = f"relay-{subdomain}@chaos.test"
        smarthost.set_password(username, self.password)
        credentials = SmtpCredentials(host="127.0.0.1", port=smarthost.port, tls_mode=TlsMode.STARTTLS,
                                      username=username, password=self.password, ca_bundle_pem=smarthost.ca_pem)
        secret = self.stores.secrets.create(self.settings.secret_prefix + connector_address,
                                            credentials.to_secret_string(), {})
        directory.create_address(SupportAddress(
            email=connector_address, account_id=account_id, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
            connector=Connector(host="127.0.0.1", port=smarthost.port, tls_mode=TlsMode.STARTTLS,
                                secret_arn=secret, state=ConnectorState.ACTIVE),
            forwarding=Verification(status=VerificationStatus.VERIFIED),
            outbound=Verification(status=VerificationStatus.VERIFIED), is_default=True))
        # The local smarthost stands for the customer's own Postfix: its profile's 60 a minute, not the 30 of an
        # unknown smarthost, so a class's burst is shaped without outlasting the run's settle limit.
        set_limits(directory, account_id, connector_address, provider="postfix")
        ses_address = f"help@{subdomain}.test"
        directory.create_address(SupportAddress(email=ses_address, account_id=account_id, brand_id="B1",
                                                forwarding=Verification(status=VerificationStatus.VERIFIED)))
        return ClassAccount(name, account_id, subdomain, connector_address, ses_address,
                            system_address(subdomain, self.settings.mail_domain))

    # --- what a class sends ---------------------------------------------------------------------------------------

    def ticket(self, tenant: ClassAccount, requester: str) -> Ticket:
        ticket = Ticket(ticket_id=new_id("T"), account_id=tenant.account_id,
                        support_address=tenant.connector_address, subject="Chaos run", requester=requester)
        self.stores.tickets.create_ticket(ticket)
        return ticket

    def notification(self, tenant: ClassAccount, ticket: Ticket, *, via_ses: bool, recipients: list[str],
                     queue_url: str, attachment: bool = False) -> Notification:
        """An agent's answer on `ticket`, recorded as queued and enqueued, as the tickets module does it."""
        address = tenant.ses_address if via_ses else tenant.connector_address
        attachments = []
        if attachment:
            key = f"attachments/{tenant.account_id}/{ticket.ticket_id}/{new_id('F')}/note.txt"
            self.s3.put_object(Bucket=self.settings.raw_mail_bucket, Key=key, Body=b"chaos attachment\n" * 20)
            attachments = [AttachmentRef(filename="note.txt", content_type="text/plain", size=340, s3_key=key)]
        notification = Notification(
            notification_id=new_id("N"), kind=NotificationKind.AGENT_REPLY, account_id=tenant.account_id,
            ticket_id=ticket.ticket_id,
            support_address=address, recipients=recipients, subject=f"Re: Chaos run [RD#{ticket.ticket_id}]",
            text_body="We are looking into it.", attachments=attachments)
        domain = address.rpartition("@")[2]
        message_id = message_id_for(notification.notification_id, domain)
        self.stores.tickets.put_notification(ticket.ticket_id, NotificationRecord(
            notification_id=notification.notification_id, message_id=message_id, recipients=recipients))
        self.stores.tickets.link_message_id(message_id, ticket.ticket_id)
        self.sqs.send_message(QueueUrl=queue_url, MessageBody=notification.model_dump_json())
        self.enqueued[notification.notification_id] = notification
        return notification

    def mail(self, tenant: ClassAccount, number: int, *, attachment: bool) -> tuple[str, bytes, str]:
        """A customer's new request, forwarded by their server (Exchange's headers): (sender, raw, Message-ID)."""
        sender = f"customer{number}-{secrets.token_hex(3)}@example.net"
        message_id = f"<chaos-{tenant.subdomain}-{number}-{secrets.token_hex(4)}@example.net>"
        head = (f"X-MS-Exchange-Organization-AutoForwarded: true\r\n"
                f"X-MS-Exchange-Inbox-Rules-Loop: {tenant.connector_address}\r\n"
                f"From: Customer {number} <{sender}>\r\nTo: Support <{tenant.connector_address}>\r\n"
                f"Subject: Request {number} about the printer\r\nMessage-ID: {message_id}\r\n"
                f"Date: {format_datetime(utcnow())}\r\nMIME-Version: 1.0\r\n")
        text = f"Hello,\r\n\r\nrequest number {number}: the printer is jammed again.\r\n\r\nThanks\r\n"
        if not attachment:
            raw = head + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        else:
            raw = (head + 'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
                   "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text + "\r\n--b1\r\n"
                   'Content-Type: application/octet-stream; name="log.bin"\r\n'
                   'Content-Disposition: attachment; filename="log.bin"\r\n'
                   "Content-Transfer-Encoding: base64\r\n\r\n" + "Y2hhb3MgbG9nIGxpbmUK" * 8 + "\r\n--b1--\r\n")
        return sender, raw.encode(), message_id
