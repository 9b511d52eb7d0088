"""Inside a worker process: the handlers, the AWS faults and the kill plan of each invocation.

Imported by the forkserver before any worker forks (chaos/workers.py): the product's modules, botocore and the fault
hooks are loaded once. The handlers themselves are loaded in the worker, with its environment: a fresh container.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import traceback
from multiprocessing.connection import Connection
from typing import Any

import boto3  # noqa: F401  (imported here, so each worker forks with it loaded)
import relaydesk.inbound.service
import relaydesk.outbound.relay  # noqa: F401

from chaos.faults import FAULTS, PREDICATES


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _CallCounter:
    def __init__(self, at_call: int, phase: str) -> None:
        self.at_call = at_call
        self.phase = phase
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, phase: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if phase != self.phase:
            return
        with self._lock:
            self.calls += 1
            if self.calls == self.at_call:
                _die()


class _AtCall:
    """Kill at the first call whose parameters match a named predicate (chaos.faults.PREDICATES)."""

    def __init__(self, predicate: str, phase: str) -> None:
        self.predicate = PREDICATES[predicate]
        self.phase = phase

    def __call__(self, phase: str, service: str, operation: str, params: dict[str, Any]) -> None:
        if phase == self.phase and self.predicate(params):
            _die()


def _init(load: Any) -> None:
    """Lambda's init phase (not counted against the timeout): the handler's module and its clients."""
    from relaydesk.store.inbound_dynamodb import aws_inbound_ports
    from relaydesk.wiring import aws_stores

    stores = aws_stores()
    load("relay").services(stores)
    load("inbound")
    aws_inbound_ports()


def serve(conn: Connection, log_path: str, env: dict[str, str]) -> None:
    os.environ.update(env)
    log = open(log_path, "a", buffering=1)  # the process's own stdout and stderr until it ends
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    from local.lambdas import LambdaContext, load

    _init(load)
    conn.send(("ready", None))
    while True:
        invocation = conn.recv()
        if invocation is None:
            return
        FAULTS.clear()
        FAULTS.set(invocation.rules, seed=invocation.seed)
        FAULTS.injected.clear()
        timer = None
        plan = invocation.kill
        if plan is not None and plan.at_call is not None:
            FAULTS.listen(_CallCounter(plan.at_call, plan.phase))
        elif plan is not None and plan.at_predicate is not None:
            FAULTS.listen(_AtCall(plan.at_predicate, plan.phase))
        elif plan is not None and plan.after_seconds is not None:
            timer = threading.Timer(plan.after_seconds, _die)
            timer.daemon = True
            timer.start()
        context = LambdaContext(function_name=f"relaydesk-chaos-{invocation.function}",
                                timeout_seconds=invocation.timeout)
        try:
            response = load(invocation.function).handler(invocation.event, context)
        except Exception as error:  # noqa: BLE001  (Lambda reports it; the event source mapping deletes nothing)
            traceback.print_exc()
            answer: tuple[str, Any, dict] = ("raised", f"{type(error).__name__}: {error}"[:500], {})
        else:
            answer = ("done", response, {})
        finally:
            if timer is not None:
                timer.cancel()
            FAULTS.clear()
            FAULTS.set([])
        conn.send((answer[0], answer[1], dict(FAULTS.injected)))
