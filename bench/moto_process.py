"""moto's server in a process of its own (with SQS fair queues' order, `local/fair_queues.py`), for a benchmark whose
relay workers must not share their interpreter with AWS's stand-in: in AWS, SQS and DynamoDB are other machines.

    with MotoProcess() as endpoint:   # http://127.0.0.1:<port>; stopped (the process gone) on leaving
        ...
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_CHILD = """
import sys, logging
logging.getLogger("werkzeug").setLevel(logging.ERROR)
from moto.server import ThreadedMotoServer
import time
from moto.sqs import models
# moto's SQS reads the clock through datetime arithmetic, for every message at every call: with a thousand delayed
# messages queued each SendMessage or ReceiveMessage cost about 50 ms here, which real SQS does not. Same value,
# read directly: the benchmark measures the relay, not moto's clock.
_plain_millis = models.unix_time_millis
models.unix_time_millis = lambda dt=None: time.time() * 1000.0 if dt is None else _plain_millis(dt)
# moto's long poll wakes for a message sent meanwhile but not for a delayed one becoming visible: that one waited
# for the poll's end (a second here). SQS answers a long poll as soon as any message is available, a delayed one
# included: sleep until the first one becomes visible (or a new one comes), then look.
def _wait_for_messages(self, timeout):
    end = time.time() + timeout
    with self._messages_lock:
        while (left := end - time.time()) > 0:
            now = time.time() * 1000.0
            due = min((max(m.visible_at, m.delayed_until) for m in self._messages), default=None)
            if due is not None and due < now:
                return
            self._messages_lock.wait(left if due is None else min(left, (due - now) / 1000.0 + 0.001))
models.Queue.wait_for_messages = _wait_for_messages
if sys.argv[1] == "fair":
    from local import fair_queues
    fair_queues.install()
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the parent closes it
server.stop()
"""


class MotoProcess:
    def __init__(self, *, fair: bool = True) -> None:
        self.fair = fair
        self.endpoint = ""

    def __enter__(self) -> str:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen([sys.executable, "-c", _CHILD, "fair" if self.fair else "plain"], cwd=ROOT,
                                         env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        port = self._process.stdout.readline().strip()  # type: ignore[union-attr]
        if not port.isdigit():
            self._process.kill()
            raise RuntimeError("the benchmark's moto server did not start")
        self.endpoint = f"http://127.0.0.1:{port}"
        return self.endpoint

    def __exit__(self, *exc) -> None:
        try:
            self._process.stdin.close()  # type: ignore[union-attr]
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
