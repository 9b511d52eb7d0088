"""The project's local smarthost (STARTTLS + AUTH, local CA) in a process of its own, for benchmarks.

A benchmark's client and the server must not share one interpreter's GIL: a real smarthost is another machine.
The parent talks to it over a pipe: how many messages arrived, the messages themselves, stop.
"""

from __future__ import annotations

import secrets
import tempfile
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bench.child_process import ChildProcess

_CHILD = "import sys; from bench.smarthost_process import serve_fd; serve_fd(int(sys.argv[1]))"

USER = "relay@acme.test"


def serve_fd(fd: int) -> None:
    """The child's entry point: the parent's end of a socket pair is `fd`; the first thing sent is the password and
    the sending limits to enforce (keyword arguments of `local.provider_limits.SendingLimits`, or None)."""
    connection = Connection(fd)
    password, limits, username = connection.recv()
    _serve(connection, password, limits, username)


def _serve(connection: Connection, password: str, limits: dict | None = None, username: str = USER) -> None:
    import warnings

    # aiosmtpd 1.4.6 warns about its own deprecated Session.login_data on every AUTH: noise in a benchmark.
    warnings.filterwarnings("ignore", message="Session.login_data is deprecated")
    from local.ca import LocalCA
    from local.provider_limits import SendingLimits
    from local.smarthost import SmtpServer

    with tempfile.TemporaryDirectory(prefix="relaydesk-bench-ca-") as directory:
        ca = LocalCA(directory)
        enforced = SendingLimits(**limits) if limits else None
        server = SmtpServer(ca, users={username: password}, limits=enforced).start()
        try:
            connection.send((server.port, ca.pem))
            while True:
                command, argument = connection.recv()
                if command == "wait":  # block until `argument` messages arrived; forget them, reply the count
                    server.wait_for(argument, timeout=120)
                    taken, server.received = server.received, []
                    connection.send(len(taken))
                elif command == "take":  # the messages themselves: (envelope from, recipients, exact bytes)
                    taken, server.received = server.received, []
                    connection.send([(r.mail_from, list(r.rcpt_tos), r.data) for r in taken])
                elif command == "end_of_data_wait":  # seconds before answering the end of DATA
                    server.end_of_data_wait = argument
                    connection.send(argument)
                elif command == "stats":
                    connection.send((server.stats.connections, server.stats.auth_attempts))
                elif command == "arrivals":  # (X-Relaydesk-Email-Id, wall time taken, recipients); forgets them
                    taken, server.received = server.received, []
                    connection.send([(_email_id(r.data), r.received_at, len(r.rcpt_tos)) for r in taken])
                elif command == "limits":  # what the sending limits saw (local.provider_limits.SendingLimits.report)
                    connection.send(enforced.report() if enforced else None)
                elif command == "stop":
                    break
        finally:
            server.stop()
            connection.send("stopped")


def _email_id(data: bytes) -> str:
    head = data.split(b"\r\n\r\n", 1)[0]
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"x-relaydesk-email-id:"):
            return line.split(b":", 1)[1].strip().decode("ascii", "replace")
    return ""


@dataclass
class SmarthostProcess:
    """Start with `with SmarthostProcess() as host:`; `host.port`, `host.ca_pem`, `host.username`, `host.password`."""

    host: str = "127.0.0.1"
    port: int = 0
    ca_pem: str = ""
    username: str = USER
    password: str = ""
    limits: dict | None = None  # SendingLimits' keyword arguments: the provider's limits this smarthost enforces

    def __enter__(self) -> SmarthostProcess:
        self.password = secrets.token_urlsafe(16)
        self._child = ChildProcess(_CHILD, "the benchmark smarthost")
        # the password, the limits and the user over the socket pair, never on argv
        self.port, self.ca_pem = self._child.start(hello=(self.password, self.limits, self.username))
        self._process = self._child.process
        return self

    def _ask(self, command: str, argument=None):
        return self._child.ask(command, argument)

    def wait(self, count: int) -> int:
        """Block until `count` messages arrived since the last call; returns how many (and forgets them)."""
        return self._ask("wait", count)

    def take(self) -> list[tuple[str, list[str], bytes]]:
        return self._ask("take")

    def set_end_of_data_wait(self, seconds: float) -> None:
        """Wait that long before answering each end of DATA (a server that scans what it receives)."""
        self._ask("end_of_data_wait", seconds)

    def stats(self) -> tuple[int, int]:
        """(connections, AUTH attempts) since start."""
        return self._ask("stats")

    def arrivals(self) -> list[tuple[str, float, int]]:
        """(notification id, wall-clock time taken, recipients) of the messages since the last call."""
        return self._ask("arrivals")

    def limits_report(self) -> dict | None:
        return self._ask("limits")

    def __exit__(self, *exc) -> None:
        self._child.stop()
