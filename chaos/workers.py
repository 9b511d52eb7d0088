"""Lambda containers as worker processes: each runs one invocation at a time of the real handler
(functions/<name>/app.py), with the AWS faults of its fault class, and can be killed at any point.

The processes fork from a forkserver that imported the handlers' modules once, so a container killed mid-batch is
replaced in milliseconds (a cold start, as Lambda would start one). The parent sends `(function, event, timeout,
rules, seed, kill)`; the worker answers `("done", response)` or `("raised", text)`. A worker that dies answers
nothing: its pipe closes. One that outlives its timeout is killed by the parent, as Lambda kills it.

A kill plan is carried out inside the worker, with SIGKILL on itself: at its n-th AWS call (before the call is
sent, or after its answer came back), or after some seconds (wherever it is then: an SMTP exchange, a pause).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PRELOAD = ["chaos.worker_main"]
INIT_LIMIT_SECONDS = 60.0  # Lambda allows 10 s of init; a loaded 2-core machine may need more


@dataclass(frozen=True)
class KillPlan:
    """Where the worker kills itself: at AWS call `at_call` (1-based, `phase` "before" or "after"), or after
    `after_seconds`."""

    at_call: int | None = None
    phase: str = "before"
    after_seconds: float | None = None
    at_predicate: str | None = None  # a name in chaos.faults.PREDICATES: the first call it matches

    def describe(self) -> str:
        if self.at_call is not None:
            return f"{self.phase} AWS call {self.at_call}"
        if self.at_predicate is not None:
            return f"{self.phase} the {self.at_predicate}"
        return f"after {self.after_seconds:.2f} s"


@dataclass(frozen=True)
class Invocation:
    function: str  # "relay" or "inbound"
    event: dict
    timeout: float
    rules: list = field(default_factory=list)
    seed: int = 0
    kill: KillPlan | None = None


@dataclass
class Outcome:
    """How an invocation ended: "done" (response), "raised" (the handler raised: text), "killed" (its plan or a
    crash), "timeout" (it outlived its timeout and was killed)."""

    status: str
    response: Any = None
    error: str = ""
    started: float = 0.0
    ended: float = 0.0
    worker: str = ""
    injected: dict = field(default_factory=dict)  # AWS faults the worker injected: "service.Operation.code" -> n


class Worker:
    """The parent's end of one worker process."""

    def __init__(self, context: Any, name: str, log_dir: Path, env: dict[str, str]) -> None:
        self.name = name
        self._context = context
        self._log = log_dir / f"{name}.log"
        self._env = env
        self.starts = 0
        self._start()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        self.process = self._context.Process(target=_serve, args=(child, str(self._log), self._env),
                                             name=self.name, daemon=True)
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.starts += 1
        self._ready = False

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def _wait_ready(self) -> None:
        """A new container's init phase (imports, clients) ends before its first invocation's clock starts."""
        if not self._ready:
            if self.conn.poll(INIT_LIMIT_SECONDS):
                self.conn.recv()
            self._ready = True

    def invoke(self, invocation: Invocation, *, grace: float) -> Outcome:
        try:
            self._wait_ready()
        except (EOFError, OSError):
            self._reap()
            return Outcome("killed", worker=self.name)
        started = time.monotonic()
        try:
            self.conn.send(invocation)
            answered = self.conn.poll(invocation.timeout + grace)
            if not answered:
                self.kill()
                return Outcome("timeout", started=started, ended=time.monotonic(), worker=self.name)
            status, payload, injected = self.conn.recv()
        except (EOFError, OSError, BrokenPipeError):
            self._reap()
            return Outcome("killed", started=started, ended=time.monotonic(), worker=self.name)
        ended = time.monotonic()
        if status == "done":
            return Outcome("done", response=payload, started=started, ended=ended, worker=self.name,
                           injected=injected)
        return Outcome("raised", error=payload, started=started, ended=ended, worker=self.name, injected=injected)

    def kill(self) -> None:
        if self.process.is_alive() and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def _reap(self) -> None:
        self.process.join(5)
        self.conn.close()
        self._start()  # the next invocation gets a cold container

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(5)
        if self.process.is_alive() and self.process.pid is not None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.join(5)
        self.conn.close()


class WorkerPool:
    """Idle workers of one function; `acquire` waits for one."""

    def __init__(self, function: str, size: int, log_dir: Path, env: dict[str, str]) -> None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOAD)
        log_dir.mkdir(parents=True, exist_ok=True)
        self.function = function
        self.workers = [Worker(context, f"{function}-{n}", log_dir, env) for n in range(size)]
        self._idle = list(self.workers)
        self._lock = threading.Condition()

    def acquire(self, timeout: float) -> Worker | None:
        with self._lock:
            if not self._idle and not self._lock.wait_for(lambda: bool(self._idle), timeout):
                return None
            return self._idle.pop()

    def try_acquire(self) -> Worker | None:
        with self._lock:
            return self._idle.pop() if self._idle else None

    def release(self, worker: Worker) -> None:
        with self._lock:
            self._idle.append(worker)
            self._lock.notify()

    @property
    def busy(self) -> int:
        with self._lock:
            return len(self.workers) - len(self._idle)

    @property
    def cold_starts(self) -> int:
        return sum(w.starts for w in self.workers) - len(self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


def _serve(conn: Connection, log_path: str, env: dict[str, str]) -> None:
    from chaos.worker_main import serve

    serve(conn, log_path, env)
