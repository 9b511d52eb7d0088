"""Test kit for the relay's unit tests: a connector address in memory stores, and a fake smarthost (no sockets)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field, replace

from relaydesk.accounts import Account, Brand
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError, NothingAcceptedError, SmtpDeliveryError, TransientDeliveryError
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.policy import error_for_reply
from relaydesk.outbound.relay import Relay
from relaydesk.outbound.smtp import OUT_OF_TIME, Accepted
from relaydesk.store.memory import MemoryHeld, MemoryOnce, MemoryOutbox
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import RecipientOutcome, Ticket

PASSWORD = "Tr0ub4dor&3-not-in-logs"
SUPPORT = "support@acme.test"
SECRET = "relaydesk/connector/support@acme.test"


class FakeSmarthost:
    """Records every login and transaction; `replies` scripts the answers to the end of data, in order."""

    def __init__(self, password: str = PASSWORD) -> None:
        self.password = password
        self.logins: list[tuple[str, bool]] = []
        self.transactions: list[tuple[str, list[str], bytes]] = []
        self.replies: list[tuple[int, str]] = []
        self.refuse: dict[str, str] = {}  # recipient -> RCPT reply, e.g. "452 4.2.2 Mailbox full"
        self.connections = 0
        self.open_now = 0
        self.max_connections: int | None = None  # more at once are refused, as Microsoft 365 refuses a fourth
        self.slow_until_open: int | None = None  # after the first mail, answers wait (<= 5 s) for that many sessions
        self.answer_delay = 0.0  # seconds each end of data waits for its answer, as across a network
        self.streaming = True  # sessions stream as PipelinedSubmission does: the next envelope rides with the dot
        self.rides = 0  # envelopes that rode in the same write as the previous message's final dot
        self.on_transaction = lambda envelope_from: None  # called after each accepted transaction

    def submission(self, credentials: SmtpCredentials, *, version_id: str | None = None, timeouts: object = None,
                   local_hostname: str = "") -> FakeSession:
        return (StreamingFakeSession if self.streaming else FakeSession)(self, credentials)


class FakeSession:
    def __init__(self, host: FakeSmarthost, credentials: SmtpCredentials) -> None:
        self.host = host
        self.credentials = credentials
        self.connected = False
        self.route = f"connector:{credentials.host}:{credentials.port}"

    async def open(self) -> None:
        self.host.connections += 1
        if self.host.max_connections is not None and self.host.open_now >= self.host.max_connections:
            raise TransientDeliveryError("432 4.3.2 Concurrent connections limit exceeded", smtp_code=432)
        ok = self.credentials.password.get_secret_value() == self.host.password
        self.host.logins.append((self.credentials.username, ok))
        if not ok:
            raise AuthenticationFailedError("refused", smtp_code=535, enhanced_status="5.7.8",
                                            server_reply="535 5.7.8 Username and Password not accepted")
        self.connected = True
        self.host.open_now += 1

    async def send(self, envelope_from: str, recipients: list[str], data: bytes, *,
                   deadline: float | None = None) -> Accepted:
        if not self.connected:
            raise TransientDeliveryError("not connected")
        if self.host.slow_until_open and self.host.transactions:  # a server far away: the others get to open
            for _ in range(500):
                if self.host.open_now >= self.host.slow_until_open:
                    break
                await asyncio.sleep(0.01)
        if self.host.answer_delay:
            await asyncio.sleep(self.host.answer_delay)
        code, text = self.host.replies.pop(0) if self.host.replies else (250, "2.0.0 Ok: queued as FAKE1")
        if code is None:  # the connection drops after the final dot
            self.host.transactions.append((envelope_from, recipients, data))
            self.connected = False
            raise TransientDeliveryError("connection lost after end of data")
        if code >= 300:
            raise error_for_reply(code, text, f"refused: {code} {text}")
        refused = [RecipientOutcome(recipient=r, smtp_code=int(self.host.refuse[r][:3]),
                                    enhanced_status=self.host.refuse[r].split()[1], reply=self.host.refuse[r])
                   for r in recipients if r in self.host.refuse]
        accepted = [r for r in recipients if r not in self.host.refuse]
        self.host.transactions.append((envelope_from, accepted, data))
        self.host.on_transaction(envelope_from)
        return Accepted(code=code, reply=f"{code} {text}", refused=refused)

    async def close(self) -> None:
        if self.connected:
            self.host.open_now -= 1
        self.connected = False


class StreamingFakeSession(FakeSession):
    """`PipelinedSubmission.stream`'s contract: the message after the current one is taken (`ready`) before the
    current one's end of data is answered, as its envelope rides in the same write; each taken message is reported
    once; when the connection drops, the one that rode along is reported as not accepted."""

    async def stream(self, source, report) -> None:
        message = await source.next() if self.connected else None
        while message is not None:
            # The envelope's round trip: on a network it outlasts the next message's preparation, so that message is
            # ready to ride with this one's final dot; here the round trip lasts until it is (at most 2 s).
            for _ in range(2000):
                if not getattr(source, "preparing", False):
                    break
                await asyncio.sleep(0.001)
            following = source.ready()
            self.host.rides += following is not None
            try:
                if message.deadline is not None and time.monotonic() > message.deadline:
                    raise TransientDeliveryError(OUT_OF_TIME)  # as PipelinedSubmission: not sent at all
                sent = await self.send(message.envelope_from, list(message.recipients), message.data,
                                       deadline=message.deadline)
            except SmtpDeliveryError as error:
                sent = error
            report(message, sent)
            if not self.connected:
                if following is not None:
                    report(following, NothingAcceptedError("the connection dropped before the body"))
                return
            message = following if following is not None else await source.next()


@dataclass
class World:
    stores: Stores
    ticket: Ticket
    smarthost: FakeSmarthost
    once: MemoryOnce = field(default_factory=MemoryOnce)

    def relay(self, **kwargs) -> Relay:
        credentials = kwargs.pop("credentials", None) or CredentialCache(self.stores.secrets, 300)
        submission = kwargs.pop("submission", None) or self.smarthost.submission
        return Relay(self.stores, credentials=credentials, once=self.once, submission=submission, **kwargs)

    def notification(self, **overrides) -> Notification:
        values = dict(notification_id=new_id("N"), account_id="A1", ticket_id=self.ticket.ticket_id,
                      support_address=SUPPORT, recipients=["jane@example.net"],
                      subject=f"Printer jammed [RD#{self.ticket.ticket_id}]", text_body="We are on it.")
        values.update(overrides)
        return Notification(**values)

    def address(self) -> SupportAddress:
        found = self.stores.directory.get_address(SUPPORT)
        assert found is not None
        return found

    def record(self, notification: Notification):
        return self.stores.tickets.get_notification(self.ticket.ticket_id, notification.notification_id)


def sqs_record(notification: Notification, receive_count: int = 1, message_id: str | None = None) -> dict:
    return {"messageId": message_id or f"m-{notification.notification_id}", "receiptHandle": f"rh-{receive_count}",
            "body": json.dumps(notification.model_dump(mode="json")),
            "attributes": {"ApproximateReceiveCount": str(receive_count)}}


def make_world(memory_stores: Stores, *, state: ConnectorState = ConnectorState.ACTIVE, kind=AddressKind.SMTP_CONNECTOR,
               include_attachments: bool = True, password: str = PASSWORD) -> World:
    stores = replace(memory_stores, mailer=MemoryOutbox(), held=MemoryHeld())
    account = Account(account_id="A1", subdomain="acme", name="Acme Inc",
                      brands=[Brand(brand_id="B1", name="Acme Help")])
    account.settings.include_attachments_in_email = include_attachments
    stores.directory.create_account(account)
    secret = stores.secrets.create(SECRET, SmtpCredentials(host="smtp.acme.test", username=SUPPORT,
                                                           password=password).to_secret_string(), {})
    connector = Connector(host="smtp.acme.test", secret_arn=secret, state=state) \
        if kind is AddressKind.SMTP_CONNECTOR else None
    stores.directory.create_address(SupportAddress(
        email=SUPPORT, account_id="A1", brand_id="B1", kind=kind, connector=connector,
        outbound=Verification(status=VerificationStatus.VERIFIED)))
    ticket = Ticket(ticket_id=new_id("T"), account_id="A1", support_address=SUPPORT, subject="Printer jammed",
                    requester="jane@example.net")
    stores.tickets.create_ticket(ticket)
    return World(stores=stores, ticket=ticket, smarthost=FakeSmarthost())


def rotate_secret(stores: Stores, password: str, stage: str = "AWSCURRENT") -> str:
    return stores.secrets.put_version(SECRET, SmtpCredentials(host="smtp.acme.test", username=SUPPORT,
                                                              password=password).to_secret_string(), [stage])
