"""One chaos run: the world, the worker pools, the event sources, then each fault class in turn and its table."""

from __future__ import annotations

import logging
import random
import sys
import time
from collections.abc import Iterable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from chaos.classes import FaultClass
from chaos.event_source import Batch, EventSourceMapping
from chaos.inbound_source import InboundSource
from chaos.ledger import Deliveries, InboundTally, Oracle, Tally, Windows, notifications_of, tally
from chaos.smtp_faults import RandomFaults
from chaos.workers import WorkerPool
from chaos.world import Timing, World

log = logging.getLogger(__name__)
SETTLE_LIMIT_SECONDS = 240.0


@dataclass
class ClassReport:
    name: str
    seed: int
    notifications: Tally
    inbound: InboundTally
    seconds: float
    invocations: int = 0
    killed: int = 0
    timeouts: int = 0
    duplicate_batches: int = 0
    injected: dict[str, int] = field(default_factory=dict)
    unsettled: int = 0

    @property
    def ok(self) -> bool:
        return self.notifications.ok and self.inbound.ok and not self.unsettled

    def as_dict(self) -> dict:
        from chaos.report import as_dict

        return as_dict(self)


@dataclass
class RedriveCheck:
    """`relaydesk dlq redrive --all` with the faults gone: what waited is sent once, what had gone is not sent
    again (and leaves the DLQ), and the DLQ is empty afterwards."""

    waiting: int = 0
    delivered_before: int = 0
    sent_once_after: int = 0
    sent_again: list[str] = field(default_factory=list)
    still_missing: list[str] = field(default_factory=list)
    left_in_dlq: int = 0
    output: str = ""

    @property
    def ok(self) -> bool:
        return not (self.sent_again or self.still_missing or self.left_in_dlq)

    def render(self) -> str:
        lines = [f"\ndlq redrive --all, faults gone: {self.waiting} waiting in the DLQ sent again, "
                 f"{self.sent_once_after} delivered once now; {self.delivered_before} already delivered "
                 f"(one planted as SQS's backstop leaves it) taken out without a second copy; "
                 f"{self.left_in_dlq} left in the DLQ"]
        lines += [f"  ! sent again although delivered: {nid}" for nid in self.sent_again]
        lines += [f"  ! still not delivered: {nid}" for nid in self.still_missing]
        lines.append("  ok" if self.ok else "  FAILED")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"waiting": self.waiting, "delivered_before": self.delivered_before,
                "sent_once_after": self.sent_once_after, "sent_again": self.sent_again,
                "still_missing": self.still_missing, "left_in_dlq": self.left_in_dlq, "ok": self.ok}


@dataclass
class Counters:
    invocations: int = 0
    killed: int = 0
    timeouts: int = 0
    duplicate_batches: int = 0


class Run:
    def __init__(self, *, state_dir: Path, timing: Timing, seed: int, relay_workers: int = 3,
                 inbound_workers: int = 2, out: TextIO = sys.stdout) -> None:
        self.state_dir = state_dir
        self.timing = timing
        self.seed = seed
        self.out = out
        self.world = World(state_dir, timing)
        self.relay_workers = relay_workers
        self.inbound_workers = inbound_workers

    def __enter__(self) -> Run:
        world = self.world.start()
        env = world.worker_env()
        logs = self.state_dir / "logs"
        self.relay_pool = WorkerPool("relay", self.relay_workers, logs, env)
        self.inbound_pool = WorkerPool("inbound", self.inbound_workers, logs, env)
        settings = world.settings
        self.mapping = EventSourceMapping(world.sqs, settings.notifications_queue_url, self.relay_pool,
                                          timeout=self.timing.relay_timeout, grace=self.timing.grace)
        self.inbound = InboundSource(s3=world.s3, bucket=settings.raw_mail_bucket, sqs=world.sqs,
                                     dlq_url=settings.inbound_dlq_url, pool=self.inbound_pool,
                                     timeout=self.timing.inbound_timeout, grace=self.timing.grace,
                                     function_arn="arn:aws:lambda:us-east-1:123456789012:function:chaos-inbound")
        from relaydesk.store.once_dynamodb import dynamo_once

        self.oracle = Oracle(world.stores, dynamo_once(settings.idempotency_table, session=world.moto.session()))
        self.deliveries = Deliveries(world.smarthost, self.timing.smtp_data)
        self.windows = Windows()
        self.counters = Counters()
        self.mapping.on_batch = self._on_batch
        self.mapping.on_killed = self._on_killed
        self.mapping.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.mapping.stop()
        self.inbound.stop()
        self.relay_pool.stop()
        self.inbound_pool.stop()
        self.world.stop()

    # --- what the event source tells ----------------------------------------------------------------------------

    def _on_batch(self, batch: Batch) -> None:
        self.counters.invocations += 1
        self.counters.duplicate_batches += int(batch.duplicate)

    def _on_killed(self, event: dict, how: str) -> None:
        """The worker is gone: whatever of its batch arrived somewhere without a stored outcome is in the window."""
        if how == "killed":
            self.counters.killed += 1
        else:
            self.counters.timeouts += 1
        time.sleep(0.1)  # a request the worker sent just before it died may still be landing at moto
        self.deliveries.refresh()
        for nid, ticket_id in notifications_of(event):
            if self.deliveries.count(nid) and not self.oracle.durable(nid, ticket_id):
                marks = self.windows.sigkill if how == "killed" else self.windows.timeout
                marks[nid] += 1

    # --- one class ----------------------------------------------------------------------------------------------

    def run_class(self, fault_class: FaultClass, class_seed: int, scale: float) -> ClassReport:
        world = self.world
        rng = random.Random(class_seed)
        tenant = world.tenant(fault_class.name)
        rules = fault_class.rules(world.settings)
        self.mapping.rules = rules
        self.mapping.kill_plan = fault_class.relay_kill
        self.mapping.duplicate_chance = fault_class.duplicate_batches
        self.mapping.rng = random.Random(class_seed + 1)
        self.inbound.rules = rules
        self.inbound.kill_plan = fault_class.inbound_kill
        self.inbound.rng = random.Random(class_seed + 2)
        smtp = RandomFaults(fault_class.smtp, class_seed + 3)
        world.smarthost.faults = smtp
        before = Counters(**vars(self.counters))
        started = time.monotonic()

        mails: dict[str, str] = {}
        pending: list[Future] = []
        count = max(1, round(fault_class.notifications * scale))
        mail_count = max(1, round(fault_class.mails * scale))
        ticket = None
        for number in range(max(count, mail_count)):
            if number < mail_count:
                sender, raw, message_id = world.mail(tenant, number, attachment=rng.random() < 0.2)
                ses_id = f"chaos{class_seed:x}{number:05d}{rng.getrandbits(64):016x}"[:40]
                mails[ses_id] = message_id
                pending.append(self.inbound.receive(ses_id, raw, mail_from=sender,
                                                    recipients=[tenant.system_address]))
            if number < count:
                if number % 5 == 0:
                    ticket = world.ticket(tenant, f"requester{number}@example.net")
                assert ticket is not None
                readers = [f"reader{number}@example.net"]
                via_ses = rng.random() < fault_class.ses_share
                if rng.random() < fault_class.unreachable_share:
                    readers, via_ses = [f"unreachable{number}@example.net"], False
                    smtp.reply("RCPT", "451 4.2.1 Mailbox temporarily unavailable", recipient=readers[0])
                elif rng.random() < fault_class.two_recipients_share:
                    readers.append(f"reader{number}-b@example.net")
                world.notification(tenant, ticket, via_ses=via_ses, recipients=readers,
                                   attachment=rng.random() < fault_class.attachment_share)
        unsettled = self._settle(pending)
        seconds = time.monotonic() - started
        world.smarthost.faults = RandomFaults([], 0)
        self.mapping.rules, self.inbound.rules = [], []
        self.mapping.kill_plan = self.inbound.kill_plan = lambda rng: None
        self.mapping.duplicate_chance = 0.0
        notifications, inbound = tally(world, tenant.account_id, self.deliveries, self.windows, mails, self.oracle)
        after = self.counters
        injected = {f"smtp {key}": value for key, value in smtp.drawn.items()}
        return ClassReport(fault_class.name, class_seed, notifications, inbound, seconds,
                           invocations=after.invocations - before.invocations, killed=after.killed - before.killed,
                           timeouts=after.timeouts - before.timeouts,
                           duplicate_batches=after.duplicate_batches - before.duplicate_batches,
                           injected=injected, unsettled=unsettled)

    def redrive_check(self) -> RedriveCheck:
        import contextlib
        import io

        from relaydesk.cli import main as cli

        from chaos.ledger import dead_letters

        world = self.world
        self.deliveries.refresh()
        delivered = next((n for nid, n in world.enqueued.items() if self.deliveries.count(nid) == 1), None)
        if delivered is not None:  # as SQS's own redrive leaves one whose delivering invocations kept being killed
            world.sqs.send_message(QueueUrl=world.settings.notifications_dlq_url,
                                   MessageBody=delivered.model_dump_json())
        letters = dead_letters(world)
        before = {nid: self.deliveries.count(nid) for nid in letters}
        check = RedriveCheck(waiting=sum(1 for c in before.values() if c == 0),
                             delivered_before=sum(1 for c in before.values() if c))
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = cli(["dlq", "redrive", "--all"])
        check.output = out.getvalue()
        if code != 0:
            check.still_missing.append(f"dlq redrive exited {code}: {check.output[-300:]}")
        self._settle([])
        self.deliveries.refresh()
        for nid, count in before.items():
            now = self.deliveries.count(nid)
            if count and now != count:
                check.sent_again.append(nid)
            elif not count and now == 1:
                check.sent_once_after += 1
            elif not count:
                check.still_missing.append(f"{nid} ({now} copies)")
        check.left_in_dlq = len(dead_letters(world))
        return check

    def _settle(self, pending: Iterable[Future]) -> int:
        """Wait until every inbound mail was handled and the queue is empty with nothing in flight; returns what
        was still queued at the limit."""
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        for future in pending:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
        quiet = 0
        while time.monotonic() < deadline:
            left = self._queued()
            if left == 0 and self.mapping.in_flight == 0:
                quiet += 1
                if quiet >= 2:
                    return 0
            else:
                quiet = 0
            time.sleep(0.5)
        return self._queued()

    def _queued(self) -> int:
        attributes = self.world.sqs.get_queue_attributes(
            QueueUrl=self.world.settings.notifications_queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(value) for value in attributes.values())
