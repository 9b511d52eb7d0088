"""The network between a sender and a smarthost, on loopback, in a process of its own: TCP proxies that hold every
chunk for a configurable one-way delay in each direction, and a Postfix policy service that holds the end of DATA.

- `DelayProxy`: listens on 127.0.0.1; each accepted connection is joined to the upstream port. Bytes keep their
  order and are released `delay` seconds after they arrived, in both directions; the upstream connection itself
  starts `delay` after the client's (the SYN's trip), so a connection costs a round trip as across a network.
- `EndOfDataPolicy`: Postfix's policy delegation protocol (one request: `name=value` lines and an empty line);
  it answers `action=DUNNO` after `wait` seconds, so a Postfix smarthost with `smtpd_end_of_data_restrictions =
  check_policy_service` answers the end of DATA that much later, as Exchange Online does while it scans.

The parent talks to it over a socket pair (`NetworkProcess`): open a proxy, set the delay, set the wait, stop. The
proxies run in their own interpreter so that neither the senders nor the smarthost share their GIL.
"""

from __future__ import annotations

import asyncio
import socket
from collections import deque
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.child_process import ChildProcess

_CHILD = "import sys; from bench.network_process import serve_fd; serve_fd(int(sys.argv[1]))"
BUFFER_LIMIT = 4 * 1024 * 1024  # bytes held in one direction before the proxy stops reading that side


@dataclass
class Settings:
    delay: float = 0.0  # seconds, one way, every direction of every proxy
    wait: float = 0.0  # seconds before the policy service answers


class _Direction:
    """Bytes from one side on their way to the other, each released `delay` after it arrived."""

    def __init__(self, loop: asyncio.AbstractEventLoop, settings: Settings) -> None:
        self._loop = loop
        self._settings = settings
        self._held: deque[tuple[float, bytes]] = deque()
        self._held_bytes = 0
        self._timer: asyncio.TimerHandle | None = None
        self._closing = False
        self.source: asyncio.Transport | None = None
        self.target: asyncio.Transport | None = None

    def feed(self, data: bytes) -> None:
        self._held.append((self._loop.time() + self._settings.delay, data))
        self._held_bytes += len(data)
        if self._held_bytes > BUFFER_LIMIT and self.source is not None:
            self.source.pause_reading()
        self._release()

    def close_after_held(self) -> None:
        self._closing = True
        self._release()

    def _release(self) -> None:
        if self.target is None:
            return  # the upstream connection is still being made
        now = self._loop.time()
        while self._held and self._held[0][0] <= now:
            _, data = self._held.popleft()
            self._held_bytes -= len(data)
            self.target.write(data)
        if self.source is not None and self._held_bytes <= BUFFER_LIMIT // 2:
            self.source.resume_reading()
        if self._held:
            if self._timer is None:
                self._timer = self._loop.call_at(self._held[0][0], self._fire)
        elif self._closing and not self.target.is_closing():
            self.target.close()

    def _fire(self) -> None:
        self._timer = None
        self._release()

    def connected(self, target: asyncio.Transport) -> None:
        self.target = target
        self._release()


class _Side(asyncio.Protocol):
    def __init__(self, outgoing: _Direction, incoming: _Direction, on_data=None) -> None:
        self.outgoing = outgoing  # what this side sends
        self.incoming = incoming  # what this side receives
        self._on_data = on_data

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.outgoing.source = transport
        self.incoming.connected(transport)

    def data_received(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(self)
        self.outgoing.feed(data)

    def eof_received(self) -> bool:
        self.outgoing.close_after_held()
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self.outgoing.close_after_held()


class DelayProxy:
    def __init__(self, upstream_port: int, settings: Settings) -> None:
        self.upstream_port = upstream_port
        self.settings = settings
        self.port = 0
        self._server: asyncio.Server | None = None
        self.busy: set[_Side] = set()  # connections whose client sent anything since the last `count_busy`

    def busy_add(self, side: _Side) -> None:
        self.busy.add(side)

    def count_busy(self) -> int:
        """How many connections carried a client's bytes since the last call (a sender's connections in use)."""
        count, self.busy = len(self.busy), set()
        return count

    async def start(self) -> DelayProxy:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def _accept(self) -> _Side:
        loop = asyncio.get_running_loop()
        up, down = _Direction(loop, self.settings), _Direction(loop, self.settings)
        client = _Side(outgoing=up, incoming=down, on_data=self.busy_add)
        loop.call_later(self.settings.delay, lambda: loop.create_task(self._connect_upstream(up, down)))
        return client

    async def _connect_upstream(self, up: _Direction, down: _Direction) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(lambda: _Side(outgoing=down, incoming=up), "127.0.0.1", self.upstream_port)
        except OSError:
            if up.source is not None:
                up.source.close()


class EndOfDataPolicy:
    """Postfix policy delegation (SMTPD_POLICY_README): answers DUNNO after `settings.wait` seconds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.port = 0
        self.requests = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> EndOfDataPolicy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.strip():
                    continue  # an attribute of the request; the empty line ends it
                self.requests += 1
                if self.settings.wait > 0:
                    await asyncio.sleep(self.settings.wait)
                writer.write(b"action=DUNNO\n\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def serve_fd(fd: int) -> None:
    asyncio.run(_serve(Connection(fd)))


async def _serve(pipe: Connection) -> None:
    loop = asyncio.get_running_loop()
    settings = Settings()
    policy = await EndOfDataPolicy(settings).start()
    proxies: dict[int, DelayProxy] = {}  # by the port it listens on
    pipe.send(policy.port)
    while True:
        command, argument = await loop.run_in_executor(None, pipe.recv)
        if command == "proxy":  # a new proxy to `argument` (an upstream port); replies its port
            proxy = await DelayProxy(argument, settings).start()
            proxies[proxy.port] = proxy
            pipe.send(proxy.port)
        elif command == "busy":  # connections of the proxy on port `argument` that carried client bytes lately
            pipe.send(proxies[argument].count_busy())
        elif command == "delay":
            settings.delay = argument
            pipe.send(settings.delay)
        elif command == "wait":
            settings.wait = argument
            pipe.send(settings.wait)
        elif command == "stop":
            pipe.send("stopped")
            return


class NetworkProcess:
    """`with NetworkProcess() as net:` `net.proxy(upstream_port)` -> a port that adds the delay;
    `net.set_delay(seconds)`, `net.set_wait(seconds)`; `net.policy_port` for Postfix's end of DATA."""

    def __enter__(self) -> NetworkProcess:
        self._child = ChildProcess(_CHILD, "the benchmark's network process")
        self.policy_port: int = self._child.start()
        return self

    def _ask(self, command: str, argument=None):
        return self._child.ask(command, argument)

    def proxy(self, upstream_port: int) -> int:
        return self._ask("proxy", upstream_port)

    def busy_connections(self, proxy_port: int) -> int:
        """Connections of the proxy on `proxy_port` that carried a client's bytes since the last call for it."""
        return self._ask("busy", proxy_port)

    def set_delay(self, seconds: float) -> None:
        self._ask("delay", seconds)

    def set_wait(self, seconds: float) -> None:
        self._ask("wait", seconds)

    def __exit__(self, *exc) -> None:
        self._child.stop()
