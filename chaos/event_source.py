"""The SQS event source mapping as Lambda runs it, on a pool of worker processes.

A poller receives batches of up to ten (the queue's visibility timeout starts then), hands each to an idle worker,
and deletes exactly the records its response does not list in `batchItemFailures`. An invocation that raised, was
killed or outlived its timeout deletes nothing: its records come back when their visibility timeout ends. SQS's
redrive policy (maxReceiveCount) moves a record that was received too often to the DLQ on its next receive (moto
does this as SQS does). With `duplicate_chance`, a batch is also handed to a second idle worker at the same time,
as SQS's at-least-once delivery can.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chaos.workers import Invocation, KillPlan, Outcome, Worker, WorkerPool
from local.sqs_events import sqs_event

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """One invocation of the relay: its records' notification ids and how it ended."""

    event: dict
    outcome: Outcome
    duplicate: bool
    kill: KillPlan | None


class EventSourceMapping:
    def __init__(self, sqs: Any, queue_url: str, pool: WorkerPool, *, timeout: float, grace: float,
                 region: str = "us-east-1") -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.pool = pool
        self.timeout = timeout
        self.grace = grace
        self.region = region
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        # Set per fault class (chaos/runner.py):
        self.rules: list = []
        self.kill_plan: Callable[[random.Random], KillPlan | None] = lambda rng: None
        self.duplicate_chance = 0.0
        self.on_batch: Callable[[Batch], None] = lambda batch: None
        self.on_killed: Callable[[dict, str], None] = lambda event, how: None
        self.rng = random.Random(0)
        self.injected: dict[str, int] = {}  # AWS faults the workers injected
        self._rng_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._running: set[threading.Thread] = set()
        self._lock = threading.Lock()

    def start(self) -> EventSourceMapping:
        self._thread = threading.Thread(target=self._loop, name="chaos-event-source", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
        for thread in list(self._running):
            thread.join(self.timeout + self.grace + 5)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._running)

    def _loop(self) -> None:
        while not self._stop.is_set():
            worker = self.pool.acquire(timeout=0.2)
            if worker is None:
                continue
            try:
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                    AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            except Exception:  # moto busy or stopping: poll again, as the mapping does
                log.exception("receive failed")
                messages = []
            if not messages:
                self.pool.release(worker)
                continue
            event = sqs_event(messages, queue_arn=self.queue_arn, region=self.region)
            with self._rng_lock:
                twice = self.rng.random() < self.duplicate_chance
            second = self.pool.try_acquire() if twice else None
            self._dispatch(worker, event, messages, duplicate=False)
            if second is not None:
                self._dispatch(second, event, messages, duplicate=True)

    def _dispatch(self, worker: Worker, event: dict, messages: list[dict], *, duplicate: bool) -> None:
        with self._rng_lock:
            kill = self.kill_plan(self.rng)
            seed = self.rng.randrange(1 << 30)
        thread = threading.Thread(target=self._invoke, args=(worker, event, messages, duplicate, kill, seed),
                                  daemon=True)
        with self._lock:
            self._running.add(thread)
        thread.start()

    def _invoke(self, worker: Worker, event: dict, messages: list[dict], duplicate: bool, kill: KillPlan | None,
                seed: int) -> None:
        try:
            outcome = worker.invoke(Invocation("relay", event, self.timeout, list(self.rules), seed, kill),
                                    grace=self.grace)
            with self._lock:
                for key, count in outcome.injected.items():
                    self.injected[key] = self.injected.get(key, 0) + count
            if outcome.status in ("killed", "timeout"):
                self.on_killed(event, outcome.status)
            elif outcome.status == "done":
                failed = {item["itemIdentifier"] for item in (outcome.response or {}).get("batchItemFailures", [])}
                done = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages) if m["MessageId"] not in failed]
                if done:
                    self._delete(done)
            self.on_batch(Batch(event, outcome, duplicate, kill))
        finally:
            self.pool.release(worker)
            with self._lock:
                self._running.discard(threading.current_thread())

    def _delete(self, entries: list[dict]) -> None:
        for attempt in range(5):
            try:
                self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
                return
            except Exception:  # Lambda's poller retries its deletes too
                log.exception("delete failed (attempt %d)", attempt + 1)
