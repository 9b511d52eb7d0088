"""A benchmark's helper process (the smarthost, the network), spoken to over a socket pair: a benchmark's client
and its servers must not share one interpreter's GIL, as a real smarthost is another machine."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """`code` runs in a new interpreter with the socket pair's other end as `sys.argv[1]` (a file descriptor)."""

    def __init__(self, code: str, name: str) -> None:
        self.code = code
        self.name = name

    def start(self, hello=None, timeout: float = 60):
        """Start it, send `hello` first when given (a secret goes this way, never on a command line), and return
        the first thing it sends back."""
        ours, theirs = socket.socketpair()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen([sys.executable, "-c", self.code, str(theirs.fileno())],
                                        pass_fds=[theirs.fileno()], cwd=ROOT, env=env)
        theirs.close()
        self.pipe = Connection(ours.detach())
        if hello is not None:
            self.pipe.send(hello)
        if not self.pipe.poll(timeout):
            self.process.kill()
            raise RuntimeError(f"{self.name} did not start")
        return self.pipe.recv()

    def ask(self, command: str, argument=None):
        self.pipe.send((command, argument))
        return self.pipe.recv()

    def stop(self) -> None:
        try:
            self.ask("stop")
        except (OSError, EOFError):
            pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.pipe.close()
