"""SES receiving as Lambda runs it for the inbound function: the raw mail stored at `inbound/<ses message id>`, then
an asynchronous invocation with SES's event on a worker process; a failed one (raised, killed, timed out) is retried
twice after a pause (the function's EventInvokeConfig), then its failure record goes to the inbound DLQ (the
on-failure destination), with the error that ended the last try."""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chaos.workers import Invocation, KillPlan, WorkerPool
from local.ses_receiving import failure_record, ses_event

RETRY_PAUSE_SECONDS = (0.3, 0.6)  # Lambda waits about one and two minutes; scaled like the relay's delays


class InboundSource:
    def __init__(self, *, s3: Any, bucket: str, sqs: Any, dlq_url: str, pool: WorkerPool, timeout: float,
                 grace: float, function_arn: str, retries: int = 2) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.pool = pool
        self.timeout = timeout
        self.grace = grace
        self.function_arn = function_arn
        self.retries = retries
        self.rules: list = []
        self.kill_plan: Callable[[random.Random], KillPlan | None] = lambda rng: None
        self.on_killed: Callable[[str, str], None] = lambda ses_id, how: None
        self.rng = random.Random(0)
        self.injected: dict[str, int] = {}  # AWS faults the workers injected
        self._rng_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=len(pool.workers), thread_name_prefix="chaos-inbound")
        self.invocations = 0
        self.outcomes: dict[str, str] = {}  # SES message id -> how its invocations ended (for the report)

    def receive(self, ses_message_id: str, raw: bytes, *, mail_from: str, recipients: list[str]) -> Future:
        """Store the mail as SES's S3 action does, then invoke (in the background)."""
        self.s3.put_object(Bucket=self.bucket, Key=f"inbound/{ses_message_id}", Body=raw)
        event = ses_event(raw=raw, mail_from=mail_from, recipients=recipients, message_id=ses_message_id,
                          now=datetime.now(UTC), verdicts={}, function_arn=self.function_arn)
        return self._executor.submit(self._run, ses_message_id, event)

    def _run(self, ses_message_id: str, event: dict) -> str:
        error = ""
        for attempt in range(1 + self.retries):
            if attempt:
                time.sleep(RETRY_PAUSE_SECONDS[min(attempt, len(RETRY_PAUSE_SECONDS)) - 1])
            with self._rng_lock:
                kill = self.kill_plan(self.rng)
                seed = self.rng.randrange(1 << 30)
            worker = self.pool.acquire(timeout=3600)
            assert worker is not None
            try:
                self.invocations += 1
                outcome = worker.invoke(Invocation("inbound", event, self.timeout, list(self.rules), seed, kill),
                                        grace=self.grace)
            finally:
                self.pool.release(worker)
            with self._rng_lock:
                for key, count in outcome.injected.items():
                    self.injected[key] = self.injected.get(key, 0) + count
            if outcome.status == "done":
                results = (outcome.response or {}).get("results") or [{}]
                self.outcomes[ses_message_id] = (f"try {attempt + 1}: {results[0].get('outcome')} "
                                                 f"{results[0].get('reason') or ''}").strip()
                return "done"
            if outcome.status in ("killed", "timeout"):
                self.on_killed(ses_message_id, outcome.status)
                error = "Runtime exited with error: signal: killed" if outcome.status == "killed" else \
                    f"Task timed out after {self.timeout:.2f} seconds"
            else:
                error = outcome.error
        record = failure_record(event, self.function_arn, None, 1 + self.retries)
        record["responsePayload"] = {"errorType": error.split(":", 1)[0] or "Unknown", "errorMessage": error}
        self.sqs.send_message(QueueUrl=self.dlq_url, MessageBody=json.dumps(record))
        return "dlq"

    def stop(self) -> None:
        self._executor.shutdown(wait=True)
