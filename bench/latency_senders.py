"""The senders the latency benchmark compares, each behind the same two calls: `prepare(count)` before the clock
(returns the notification ids that must arrive), `send()` timed (returns seconds).

- `RelaydeskSender`: the relay path as bench/bench_relay.py drives it (`Relay` + `relay_event`, memory stores,
  SQS batches of 10): it composes, signs, sends and records inside the clock. `before=True`: the same relay, stores
  and smarthost with the send path it had before pipelining and several connections (one connection per smarthost,
  `SmtpSubmission`'s one command at a time), measured in the same run.
- `PostfixSender`: the same kind of messages, composed and signed before the clock, handed to a Postfix relay
  client (held); the clock runs from their release to the last `status=sent`.
- `RawSender`: the same signed bytes pushed by aiosmtplib over connections opened, secured and authenticated
  before the clock; each connection waits for every reply (`pipelined=False`) or pipelines with
  `relaydesk.outbound.pipelined` (one round trip per message).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass

from bench.bench_relay import ADDRESS, PAYLOADS, MemoryRelay, notification, sqs_batches

PAYLOAD = PAYLOADS[0]  # ~5 KB of text and HTML, one recipient: a ticket update


@dataclass(frozen=True)
class Endpoint:
    """Where the senders connect (the delay proxy in front of the smarthost) and as whom."""

    host: str
    port: int
    username: str
    password: str
    ca_pem: str


def signed_messages(relay: MemoryRelay, count: int):
    """`count` new notifications composed and DKIM-signed exactly as the relay does it (outbound/connector.py),
    as `Outgoing` messages tagged with their notification id."""
    from relaydesk.attachments.linker import link_builder
    from relaydesk.outbound import dkim
    from relaydesk.outbound.compose import Sender, compose, display_name
    from relaydesk.outbound.envelope import Outgoing

    stores = relay.stores
    address = stores.directory.get_address(ADDRESS)
    assert address is not None
    messages = []
    for _ in range(count):
        item = notification(relay.world, PAYLOAD)
        account = stores.directory.get_account(item.account_id)
        sender = Sender(address=address.email, display_name=display_name(account, address),
                        reply_to=address.email, message_id_domain=address.domain)
        composed = compose(item, sender, inline_attachments=account.settings.include_attachments_in_email,
                           fetch=stores.blobs.get, link=link_builder(stores, item.account_id))
        signer = dkim.signer_for(address, stores.secrets)
        data = signer.sign(composed.to_bytes()) if signer is not None else composed.to_bytes()
        messages.append(Outgoing(composed.envelope_from, composed.recipients, data, tag=item.notification_id))
    return messages


class RelaydeskSender:
    name = "Relaydesk relay"

    def __init__(self, relay: MemoryRelay, *, before: bool = False) -> None:
        from relaydesk.outbound.credentials import CredentialCache
        from relaydesk.outbound.relay import Relay
        from relaydesk.outbound.smtp import SmtpSubmission
        from relaydesk.store.memory import MemoryOnce

        self.relay = relay
        self._relay = relay.relay
        if before:
            self.name = "Relaydesk relay before (1 connection, one command at a time)"
            self._relay = Relay(relay.stores, credentials=CredentialCache(relay.stores.secrets, 300), once=MemoryOnce(),
                                submission=SmtpSubmission, connections_per_smarthost=1)
        self._events: list[dict] = []
        self._count = 0

    def prepare(self, count: int) -> set[str]:
        notifications = [notification(self.relay.world, PAYLOAD) for _ in range(count)]
        self._events, self._count = sqs_batches(notifications), count
        return {n.notification_id for n in notifications}

    def send(self) -> float:
        started = time.perf_counter()
        from relaydesk.outbound.batch import relay_event

        responses = [relay_event(self._relay, event, None) for event in self._events]
        seconds = time.perf_counter() - started
        deferred = sum(len(r.get("batchItemFailures", [])) for r in responses)
        if deferred:
            raise RuntimeError(f"the relay deferred {deferred} of {self._count} notifications")
        return seconds


class PostfixSender:
    name = "Postfix relay client"

    def __init__(self, relay: MemoryRelay, client) -> None:
        self.relay = relay
        self.client = client
        self._count = 0

    def prepare(self, count: int) -> set[str]:
        messages = signed_messages(self.relay, count)
        self.client.hand_over([(m.envelope_from, m.recipients, m.data) for m in messages])
        self._count = count
        return {m.tag for m in messages}

    def send(self) -> float:
        return self.client.release_and_wait(self._count)


class RawSender:
    """Signed bytes over `connections` connections opened before the clock; `pipelined` uses the pipelining
    client (several messages in flight on each connection), otherwise stock aiosmtplib waits for every reply."""

    def __init__(self, relay: MemoryRelay, endpoint: Endpoint, connections: int, *, pipelined: bool) -> None:
        self.relay = relay
        self.endpoint = endpoint
        self.connections = connections
        self.pipelined = pipelined
        kind = "raw pipelined" if pipelined else "raw"
        self.name = f"{kind}, {connections} connection{'s' if connections > 1 else ''}"
        self._messages: list = []
        self._sessions: list = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def prepare(self, count: int) -> set[str]:
        self._messages = signed_messages(self.relay, count)
        self._loop = asyncio.new_event_loop()
        self._sessions = self._loop.run_until_complete(self._open())
        return {m.tag for m in self._messages}

    def send(self) -> float:
        assert self._loop is not None
        try:
            started = time.perf_counter()
            self._loop.run_until_complete(self._send())
            return time.perf_counter() - started
        finally:
            self._loop.run_until_complete(self._close())
            self._loop.close()
            self._loop = None

    async def _open(self) -> list:
        from relaydesk.credentials import SmtpCredentials
        from relaydesk.outbound.fanout import open_sessions
        from relaydesk.outbound.pipelined import PipelinedSubmission
        from relaydesk.outbound.smtp import Timeouts

        endpoint = self.endpoint
        if self.pipelined:
            credentials = SmtpCredentials(host=endpoint.host, port=endpoint.port, username=endpoint.username,
                                          password=endpoint.password, ca_bundle_pem=endpoint.ca_pem)
            timeouts = Timeouts(connect=30, command=60, data=60)
            sessions = await open_sessions(lambda: PipelinedSubmission(credentials, timeouts=timeouts),
                                           self.connections)
            if len(sessions) != self.connections:
                raise RuntimeError(f"{self.name}: {len(sessions)} of {self.connections} connections opened")
            return sessions
        return list(await asyncio.gather(*(self._plain() for _ in range(self.connections))))

    async def _plain(self):
        import aiosmtplib
        from relaydesk.outbound.tls import client_tls_context

        endpoint = self.endpoint
        smtp = aiosmtplib.SMTP(hostname=endpoint.host, port=endpoint.port, start_tls=False,
                               tls_context=client_tls_context(endpoint.ca_pem), timeout=60)
        await smtp.connect()
        await smtp.starttls()
        await smtp.login(endpoint.username, endpoint.password)
        return smtp

    async def _send(self) -> None:
        if self.pipelined:
            from relaydesk.outbound.fanout import send_over
            from relaydesk.outbound.smtp import Accepted

            results = await send_over(self._sessions, self._messages)
            refused = [r for r in results if not isinstance(r, Accepted)]
            if refused:
                raise RuntimeError(f"{self.name}: {len(refused)} messages not accepted: {refused[0]}")
            return
        waiting = deque(self._messages)

        async def one_connection(smtp) -> None:
            while waiting:
                message = waiting.popleft()
                await smtp.sendmail(message.envelope_from, list(message.recipients), message.data)

        await asyncio.gather(*(one_connection(smtp) for smtp in self._sessions))

    async def _close(self) -> None:
        for session in self._sessions:
            if hasattr(session, "quit"):
                if session.is_connected:
                    await session.quit()
            else:
                await session.close()
        self._sessions = []

