"""SMTP command pipelining (RFC 2920) on aiosmtplib's protocol layer: a group of commands goes out in one write and
every reply the server sends back is kept, in order, for the command it answers.

aiosmtplib reads one reply per command: a reply that arrives in the same read as the one before it is left in the
buffer until more data comes (which, for the last reply of a group, is never), and data that arrives while a reply
is waiting to be picked up is dropped. `PipeliningProtocol` keeps aiosmtplib's parsing, its command lock, its
STARTTLS (with the discarding of anything sent after the 220) and its handling of a lost connection, and counts the
replies it owes instead: every owed reply a read completes is queued; bytes that arrive when no reply is owed are
dropped as aiosmtplib drops them, so nothing unsolicited is ever paired with a command. A read completes no more
replies than are owed: after STARTTLS's 220 nothing is owed, so whatever a server (or a man in the middle) sent
behind it is discarded (RFC 3207 4.2). `PipeliningSMTP` is
aiosmtplib's client on that protocol, so EHLO, STARTTLS and AUTH are aiosmtplib's own.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib
from aiosmtplib.protocol import MAX_RESPONSE_LENGTH, SMTPProtocol
from aiosmtplib.response import SMTPResponse

_WAKE_UP = SMTPResponse(0, "replies are queued")  # what the waiter is set to; the replies wait in the queue


@dataclass(frozen=True)
class GroupReplies:
    """The replies to one group, in the order of its commands; fewer than asked when `failure` cut it short
    (a timeout, a lost connection, a malformed reply)."""

    replies: list[SMTPResponse]
    failure: aiosmtplib.SMTPException | None = None
    written: bool = True  # False: the connection was gone before any of the group left
    written_at: float = 0.0  # the event loop's clock when the group was written
    arrived: tuple[float, ...] = ()  # when each reply was read off the connection (the same clock)


class PipeliningProtocol(SMTPProtocol):
    """aiosmtplib's protocol that reads every reply owed to a group of commands written at once."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None, connection_lost_callback=None) -> None:
        self._owed = 0  # replies to commands already written that have not been parsed yet
        self._replies: deque[SMTPResponse] = deque()
        self._arrivals: deque[float] = deque()  # when each queued reply was read (the event loop's clock)
        self.last_arrival = 0.0  # when the reply `read_response` returned last was read
        super().__init__(loop=loop, connection_lost_callback=connection_lost_callback)

    # aiosmtplib sets `_response_pending = True` before it writes one command (and at the greeting); it reads the
    # reply before it sends anything else, so one owed reply is what that means.
    @property
    def _response_pending(self) -> bool:
        return self._owed > 0

    @_response_pending.setter
    def _response_pending(self, expected: bool) -> None:
        if expected and self._owed == 0:
            self._expect(1)

    def _expect(self, count: int) -> None:
        if self._owed == 0:
            # Whatever is left of a read that answered more than was asked is not a reply to what comes next.
            del self._buffer[:]
            self._replies.clear()
            self._arrivals.clear()
        self._owed += count

    def data_received(self, data: bytes) -> None:
        waiter = self._response_waiter
        if waiter is None or self._owed == 0:
            return  # nothing asked: dropped, as aiosmtplib drops unsolicited data
        self._buffer.extend(data)
        try:
            while self._owed:
                reply = self._read_response_from_buffer()
                if reply is None:
                    break
                self._owed -= 1
                self._replies.append(reply)
                self._arrivals.append(self._loop.time())
            if self._owed and len(self._buffer) > MAX_RESPONSE_LENGTH:
                raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        except aiosmtplib.SMTPResponseException as error:
            del self._buffer[:]
            self._owed = 0
            if not waiter.done():
                self._set_response_exception(waiter, error)
            return
        if self._replies and not waiter.done():
            waiter.set_result(_WAKE_UP)

    async def read_response(self, timeout: float | None = None) -> SMTPResponse:
        """The next reply in order; waits at most `timeout` seconds for it to arrive."""
        if not self._replies:
            waiter = self._response_waiter
            if waiter is None:
                raise aiosmtplib.SMTPServerDisconnected("Connection lost")
            try:
                woken = await asyncio.wait_for(waiter, timeout)
            except TimeoutError as error:
                raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from error
            finally:
                self._response_waiter = self._fresh_waiter()
            if not self._replies:
                self.last_arrival = self._loop.time()
                return woken  # aiosmtplib's 221 for a connection closed after QUIT
        waiter = self._response_waiter
        if waiter is not None and waiter.done() and not waiter.cancelled() and waiter.exception() is None \
                and waiter.result() is _WAKE_UP:
            self._response_waiter = self._fresh_waiter()  # spent: the replies it announced are queued
        self.last_arrival = self._arrivals.popleft()
        return self._replies.popleft()

    def _fresh_waiter(self) -> asyncio.Future[SMTPResponse] | None:
        return None if self.transport is None else self._loop.create_future()

    async def exchange(self, group: bytes, timeouts: Sequence[float]) -> GroupReplies:
        """Write `group` (one or more commands, CRLF-terminated, and possibly a message body before them) in one
        write and read one reply per entry of `timeouts`, each within its own timeout."""
        if self._command_lock is None:
            return GroupReplies([], aiosmtplib.SMTPServerDisconnected("Server not connected"), written=False)
        replies: list[SMTPResponse] = []
        arrived: list[float] = []
        async with self._command_lock:
            self._expect(len(timeouts))
            written_at = self._loop.time()
            try:
                self.write(group)
            except aiosmtplib.SMTPException as error:
                return GroupReplies([], error, written=False)
            try:
                for timeout in timeouts:
                    replies.append(await self.read_response(timeout))
                    arrived.append(self.last_arrival)
            except aiosmtplib.SMTPException as error:
                return GroupReplies(replies, error, written_at=written_at, arrived=tuple(arrived))
        return GroupReplies(replies, written_at=written_at, arrived=tuple(arrived))


class PipeliningSMTP(aiosmtplib.SMTP):
    """aiosmtplib's client (connect, EHLO, STARTTLS, AUTH, QUIT unchanged) speaking through `PipeliningProtocol`."""

    @property
    def pipelining(self) -> bool:
        """The server advertised PIPELINING in its last EHLO reply (after TLS, the only one that counts)."""
        return self.supports_extension("pipelining")

    @property
    def chunking(self) -> bool:
        """The server advertised CHUNKING (RFC 3030: BDAT) in its last EHLO reply."""
        return self.supports_extension("chunking")

    @property
    def size_limit(self) -> int | None:
        """The largest message the server takes, when its SIZE keyword names one (RFC 1870 4; 0: no limit)."""
        value = self.esmtp_extensions.get("size", "")
        return int(value) if value.isascii() and value.isdigit() and 0 < len(value) < 19 and int(value) else None

    async def exchange(self, group: bytes, timeouts: Sequence[float]) -> GroupReplies:
        """One group in one write, its replies in order (see `PipeliningProtocol.exchange`). A timeout or a lost
        connection closes the client: replies still owed would be paired with the wrong commands."""
        protocol = self.protocol
        if not isinstance(protocol, PipeliningProtocol):
            return GroupReplies([], aiosmtplib.SMTPServerDisconnected("Server not connected"), written=False)
        result = await protocol.exchange(group, timeouts)
        if result.failure is not None:
            self.close()
        return result

    async def _create_connection(self, timeout: float | None) -> SMTPResponse:
        # aiosmtplib builds its protocol here; the same steps, with ours: to a host and port, or through the
        # connected socket the relay hands over (to an address relaydesk.destinations checked). No Unix socket.
        if self.loop is None:
            raise RuntimeError("No event loop set")
        if self.socket_path is not None:
            raise ValueError("PipeliningSMTP connects to a host and port, or through a connected socket, only")
        hostname = self.hostname or "localhost"
        port = self.port or self._get_default_port()
        protocol = PipeliningProtocol(loop=self.loop, connection_lost_callback=self._on_connection_lost)
        tls_context = await self._get_tls_context() if self.use_tls else None
        handshake = timeout if self.use_tls else None
        connecting = self.loop.create_connection(
            lambda: protocol, sock=self.sock, ssl=tls_context, server_hostname=hostname if self.use_tls else None,
            ssl_handshake_timeout=handshake) if self.sock is not None else self.loop.create_connection(
            lambda: protocol, host=hostname, port=port, ssl=tls_context, ssl_handshake_timeout=handshake,
            local_addr=self.source_address)
        try:
            transport, _ = await asyncio.wait_for(connecting, timeout=timeout)
        except TimeoutError as error:
            raise aiosmtplib.SMTPConnectTimeoutError(f"Timed out connecting to {hostname} on port {port}") \
                from error
        except OSError as error:
            raise aiosmtplib.SMTPConnectError(f"Error connecting to {hostname} on port {port}: {error}") from error
        self.protocol = protocol
        self.transport = transport
        try:
            response = await protocol.read_response(timeout=timeout)
        except aiosmtplib.SMTPServerDisconnected as error:
            raise aiosmtplib.SMTPConnectError(f"Error connecting to {hostname} on port {port}: {error}") from error
        except aiosmtplib.SMTPTimeoutError as error:
            raise aiosmtplib.SMTPConnectTimeoutError("Timed out waiting for server ready message") from error
        if response.code != aiosmtplib.SMTPStatus.ready:
            raise aiosmtplib.SMTPConnectResponseError(response.code, response.message)
        return response
