"""One chaos run: the world, then lanes that each run fault classes one after another, a table per class.

A lane is one isolated slice of the system: its own notifications queue and DLQ (made like template.yaml's), its
own smarthost, its own relay and inbound workers (Lambda containers) with its class's faults, its own event source
mapping. Lanes share moto (tables, bucket, secrets, SES) as the real functions share AWS. Several lanes run at once
so one class's retry delays overlap another's work.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from chaos.classes import FaultClass
from chaos.event_source import Batch, EventSourceMapping
from chaos.inbound_source import InboundSource
from chaos.ledger import (
    Deliveries,
    InboundTally,
    Oracle,
    Tally,
    Windows,
    dead_letters,
    inbound_dead_letters,
    notifications_of,
    tally,
)
from chaos.smtp_faults import RandomFaults
from chaos.workers import WorkerPool
from chaos.world import LaneResources, Timing, World

log = logging.getLogger(__name__)
SETTLE_LIMIT_SECONDS = 240.0
INBOUND_ARN = "arn:aws:lambda:us-east-1:123456789012:function:chaos-inbound"


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
    account_id: str = ""  # the class's tenant and mails: counted again after the redrives
    mails: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.notifications.ok and self.inbound.ok and not self.unsettled

    def as_dict(self) -> dict:
        from chaos.report import as_dict

        return as_dict(self)


@dataclass
class RedriveCheck:
    """`relaydesk dlq redrive --all` and `relaydesk inbound replay --all` with the faults gone: what waited is sent
    once, what had gone is not sent again (and leaves the DLQ), the DLQs are empty afterwards, and counted again
    every notification went (or failed with its reason on the ticket) and every mail made exactly one comment."""

    waiting: int = 0
    delivered_before: int = 0
    sent_once_after: int = 0
    sent_again: list[str] = field(default_factory=list)
    still_missing: list[str] = field(default_factory=list)
    left_in_dlq: int = 0
    inbound_replayed: int = 0
    left_in_inbound_dlq: int = 0
    final: Tally = field(default_factory=Tally)
    final_inbound: InboundTally = field(default_factory=InboundTally)

    @property
    def final_ok(self) -> bool:
        n, i = self.final, self.final_inbound
        return (n.ok and i.ok and not (n.dlq_reason or n.behind_inbound_dlq or i.dlq_reason)
                and n.once + n.twice_window + n.failed == n.sent and i.once == i.sent)

    @property
    def ok(self) -> bool:
        return not (self.sent_again or self.still_missing or self.left_in_dlq or self.left_in_inbound_dlq) \
            and self.final_ok

    def render(self) -> str:
        lines = [f"\ndlq redrive --all, faults gone: {self.waiting} waiting in the DLQs sent again, "
                 f"{self.sent_once_after} delivered once now; {self.delivered_before} already delivered (one per "
                 f"lane planted as SQS's backstop leaves it) taken out without another copy; {self.left_in_dlq} "
                 "left in the DLQs"]
        lines += [f"  ! sent again although its delivery was known: {nid}" for nid in self.sent_again]
        lines += [f"  ! still not delivered: {nid}" for nid in self.still_missing]
        n, i = self.final, self.final_inbound
        lines.append(f"inbound replay --all, faults gone: {self.inbound_replayed} mails replayed from the inbound "
                     f"DLQ, {self.left_in_inbound_dlq} left in it")
        lines.append(f"counted again: notifications {n.sent}, {n.once} once, {n.twice_window} twice in the window, "
                     f"{n.twice_other} twice otherwise, {n.failed} failed with their reason, {n.lost} lost, "
                     f"{n.dlq_reason + n.dlq_no_reason} in the DLQ, {n.behind_inbound_dlq} behind the inbound DLQ; "
                     f"inbound mails {i.sent}, {i.once} once, {i.twice} twice, {i.lost} lost")
        lines += [f"  ! {problem}" for problem in [*n.problems, *i.problems][:20]]
        lines.append("  ok" if self.ok else "  FAILED")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        from dataclasses import asdict

        def counts(tally: Tally | InboundTally) -> dict:
            return {k: v for k, v in asdict(tally).items() if k not in ("problems", "notes")}

        return {"waiting": self.waiting, "delivered_before": self.delivered_before,
                "sent_once_after": self.sent_once_after, "sent_again": self.sent_again,
                "still_missing": self.still_missing, "left_in_dlq": self.left_in_dlq,
                "inbound_replayed": self.inbound_replayed, "left_in_inbound_dlq": self.left_in_inbound_dlq,
                "final": counts(self.final), "final_inbound": counts(self.final_inbound), "ok": self.ok}


class Lane:
    def __init__(self, run: Run, number: int, relay_workers: int, inbound_workers: int) -> None:
        world = run.world
        self.run = run
        self.number = number
        self.resources: LaneResources = world.lane(number)
        env = world.worker_env(self.resources)
        logs = run.state_dir / "logs"
        self.relay_pool = WorkerPool(f"lane{number}-relay", relay_workers, logs, env)
        self.inbound_pool = WorkerPool(f"lane{number}-inbound", inbound_workers, logs, env)
        timing = world.timing
        self.mapping = EventSourceMapping(world.sqs, self.resources.queue_url, self.relay_pool,
                                          timeout=timing.relay_timeout, grace=timing.grace)
        self.inbound = InboundSource(s3=world.s3, bucket=world.settings.raw_mail_bucket, sqs=world.sqs,
                                     dlq_url=world.settings.inbound_dlq_url, pool=self.inbound_pool,
                                     timeout=timing.inbound_timeout, grace=timing.grace, function_arn=INBOUND_ARN)
        self.mapping.on_batch = self._on_batch
        self.mapping.on_killed = run.on_killed
        self.inbound.on_killed = lambda ses_id, how: run.count_kill(how, self)
        self.invocations = self.killed = self.duplicates = 0
        self.mapping.start()

    def _on_batch(self, batch: Batch) -> None:
        self.invocations += 1
        self.duplicates += int(batch.duplicate)

    def stop(self) -> None:
        self.mapping.stop()
        self.inbound.stop()
        self.relay_pool.stop()
        self.inbound_pool.stop()

    def queued(self) -> int:
        attributes = self.run.world.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        return sum(int(value) for value in attributes.values())

    def settle(self, pending: Iterable[Future]) -> int:
        """Wait until every inbound mail was handled and the queue is empty with nothing in flight; returns what
        was still queued at the limit."""
        deadline = time.monotonic() + SETTLE_LIMIT_SECONDS
        for future in pending:
            future.result(timeout=max(1.0, deadline - time.monotonic()))
        quiet = 0
        while time.monotonic() < deadline:
            if self.queued() == 0 and self.mapping.in_flight == 0:
                quiet += 1
                if quiet >= 2:
                    return 0
            else:
                quiet = 0
            time.sleep(0.4)
        return self.queued()

    def run_class(self, fault_class: FaultClass, class_seed: int, scale: float) -> ClassReport:
        world, run = self.run.world, self.run
        rng = random.Random(class_seed)
        smarthost = self.resources.smarthost
        tenant = world.tenant(fault_class.name, smarthost)
        rules = fault_class.rules(world.settings)
        self.mapping.rules, self.inbound.rules = rules, rules
        self.mapping.kill_plan = fault_class.relay_kill
        self.inbound.kill_plan = fault_class.inbound_kill
        self.mapping.duplicate_chance = fault_class.duplicate_batches
        self.mapping.rng = random.Random(class_seed + 1)
        self.inbound.rng = random.Random(class_seed + 2)
        smtp = RandomFaults(fault_class.smtp, class_seed + 3)
        smarthost.faults = smtp
        before = (self.invocations, self.duplicates, run.kills(self))
        self.mapping.injected.clear()
        self.inbound.injected.clear()
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
                                   queue_url=self.resources.queue_url,
                                   attachment=rng.random() < fault_class.attachment_share)
        unsettled = self.settle(pending)
        seconds = time.monotonic() - started
        smarthost.faults = RandomFaults([], 0)
        self.mapping.rules, self.inbound.rules = [], []
        self.mapping.kill_plan = self.inbound.kill_plan = lambda rng: None
        self.mapping.duplicate_chance = 0.0
        notifications, inbound = tally(world, tenant.account_id, run.deliveries, run.windows, mails, run.oracle,
                                       dlq_url=self.resources.dlq_url, inbound_outcomes=self.inbound.outcomes)
        kills = run.kills(self)
        return ClassReport(fault_class.name, class_seed, notifications, inbound, seconds,
                           invocations=self.invocations - before[0], killed=kills[0] - before[2][0],
                           timeouts=kills[1] - before[2][1], duplicate_batches=self.duplicates - before[1],
                           injected={**{f"smtp {key}": value for key, value in smtp.drawn.items()},
                                     **_merged(self.mapping.injected, self.inbound.injected)},
                           unsettled=unsettled, account_id=tenant.account_id, mails=mails)


class Run:
    def __init__(self, *, state_dir: Path, timing: Timing, lanes: int = 3, relay_workers: int = 2,
                 inbound_workers: int = 1) -> None:
        self.state_dir = state_dir
        self.world = World(state_dir, timing)
        self.lane_count = lanes
        self.relay_workers = relay_workers
        self.inbound_workers = inbound_workers
        self._kills: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> Run:
        world = self.world.start()
        os.environ.update(world.timing.env())  # the forkserver (and so every worker) starts with these
        from relaydesk.store.once_dynamodb import dynamo_once

        self.oracle = Oracle(world.stores, dynamo_once(world.settings.idempotency_table,
                                                       session=world.moto.session()))
        self.windows = Windows()
        self.lanes = [Lane(self, number, self.relay_workers, self.inbound_workers)
                      for number in range(self.lane_count)]
        self.deliveries = Deliveries([lane.resources.smarthost for lane in self.lanes],
                                     world.timing.smtp_data)
        return self

    def __exit__(self, *exc: object) -> None:
        for lane in getattr(self, "lanes", []):
            lane.stop()
        self.world.stop()

    def kills(self, lane: Lane) -> tuple[int, int]:
        with self._lock:
            killed, timeouts = self._kills.get(id(lane), [0, 0])
        return killed, timeouts

    def count_kill(self, how: str, lane: Lane | None = None) -> None:
        with self._lock:
            counts = self._kills.setdefault(id(lane) if lane else 0, [0, 0])
            counts[0 if how == "killed" else 1] += 1

    def on_killed(self, event: dict, how: str) -> None:
        """A relay worker is gone: whatever of its batch arrived somewhere without a stored outcome is in the
        window (a SIGKILL) or must not be (the invocation's own timeout)."""
        lane = next((lane for lane in self.lanes if lane.mapping.queue_arn == _arn_of(event)), None)
        self.count_kill(how, lane)
        time.sleep(0.1)  # a request the worker sent just before it died may still be landing at moto
        self.deliveries.refresh()
        for nid, ticket_id in notifications_of(event):
            if self.deliveries.count(nid) and not self.oracle.durable(nid, ticket_id):
                marks = self.windows.sigkill if how == "killed" else self.windows.timeout
                marks[nid] += 1

    def run_classes(self, chosen: list[FaultClass], seed: int, scale: float,
                    on_report: Callable[[ClassReport], None]) -> list[ClassReport]:
        """Each lane takes the next class when it is free; reports come back in the classes' order."""
        todo = list(enumerate(chosen))
        todo_lock = threading.Lock()
        reports: dict[int, ClassReport] = {}

        def work(lane: Lane) -> None:
            while True:
                with todo_lock:
                    if not todo:
                        return
                    index, fault_class = todo.pop(0)
                report = lane.run_class(fault_class, seed + 1000 * (index + 1), scale)
                reports[index] = report
                on_report(report)

        with ThreadPoolExecutor(max_workers=len(self.lanes)) as pool:
            for future in [pool.submit(work, lane) for lane in self.lanes]:
                future.result()
        return [reports[index] for index in sorted(reports)]

    def redrive_check(self, reports: list[ClassReport]) -> RedriveCheck:
        """With the faults gone, what an operator does: per lane, a delivered notification planted in its DLQ (as
        SQS's own redrive leaves one whose delivering invocations kept being killed), then `relaydesk dlq redrive
        --all`; then `relaydesk inbound replay --all`; then every class counted again."""
        world = self.world
        check = RedriveCheck()
        self.deliveries.refresh()
        befores = []
        for lane in self.lanes:
            planted = next((n for nid, n in world.enqueued.items() if self.deliveries.count(nid) == 1
                            and not any(c.in_doubt for c in self.deliveries.copies[nid])), None)
            if planted is not None:
                world.sqs.send_message(QueueUrl=lane.resources.dlq_url, MessageBody=planted.model_dump_json())
            before = {nid: self.deliveries.count(nid) for nid in dead_letters(world, lane.resources.dlq_url)}
            check.waiting += sum(1 for count in before.values() if count == 0)
            check.delivered_before += sum(1 for count in before.values() if count)
            befores.append(before)
            code, out = self._cli(lane, ["dlq", "redrive", "--all"])
            if code != 0:
                check.still_missing.append(f"lane {lane.number}: dlq redrive exited {code}: {out[-300:]}")
        # The inbound DLQ is shared; the acknowledgements a replay sends go to the first lane's queue.
        check.inbound_replayed = len(inbound_dead_letters(world))
        code, out = self._cli(self.lanes[0], ["inbound", "replay", "--all"])
        if code != 0:
            check.still_missing.append(f"inbound replay exited {code}: {out[-300:]}")
        for lane in self.lanes:
            lane.settle([])
        self.deliveries.refresh()
        for lane, before in zip(self.lanes, befores, strict=True):
            for nid, count in before.items():
                now = self.deliveries.count(nid)
                copies = self.deliveries.copies.get(nid, [])
                if count and now != count and not all(c.in_doubt for c in copies[:count]):
                    check.sent_again.append(nid)  # a copy had been answered, yet it went again
                elif (count and now != count) or (not count and now == 1):
                    check.sent_once_after += 1  # every earlier copy was in doubt (the documented window), or none
                elif not count:
                    check.still_missing.append(f"{nid} ({now} copies)")
            check.left_in_dlq += len(dead_letters(world, lane.resources.dlq_url))
        check.left_in_inbound_dlq = len(inbound_dead_letters(world))
        for report in reports:
            lane_of_class = self.lanes[0]  # any lane's DLQ: all are empty now unless the check above failed
            notifications, inbound = tally(world, report.account_id, self.deliveries, self.windows, report.mails,
                                           self.oracle, dlq_url=lane_of_class.resources.dlq_url)
            for total, part in ((check.final, notifications), (check.final_inbound, inbound)):
                for name, value in vars(part).items():
                    if isinstance(value, int):
                        setattr(total, name, getattr(total, name) + value)
                    else:
                        getattr(total, name).extend(f"{report.name}: {line}" for line in value)
        return check

    def _cli(self, lane: Lane, args: list[str]) -> tuple[int, str]:
        """`relaydesk ...` in this process, on this lane's queues."""
        from relaydesk.cli import main as cli

        from local.moto_stack import clear_relaydesk_caches

        saved = {name: os.environ.get(name) for name in ("RELAYDESK_NOTIFICATIONS_QUEUE_URL",
                                                           "RELAYDESK_NOTIFICATIONS_DLQ_URL")}
        os.environ.update({"RELAYDESK_NOTIFICATIONS_QUEUE_URL": lane.resources.queue_url,
                           "RELAYDESK_NOTIFICATIONS_DLQ_URL": lane.resources.dlq_url})
        clear_relaydesk_caches()
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                code = cli(args)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            clear_relaydesk_caches()
        return code, out.getvalue()


def _arn_of(event: dict) -> str:
    records = event.get("Records") or [{}]
    return records[0].get("eventSourceARN", "")


def _merged(*counts: dict[str, int]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for each in counts:
        for key, value in each.items():
            merged[key] = merged.get(key, 0) + value
    return merged
