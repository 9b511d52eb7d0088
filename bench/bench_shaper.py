"""Sending limits and fairness under a burst: one tenant pushes N notifications for one Microsoft 365 mailbox through
four concurrent relay workers while a second tenant keeps sending; time-scaled so a minute passes in seconds.

- The world: moto (in process) with template.yaml's resources; the notifications queue with SQS fair queues'
  order (`local/fair_queues.py`); the event source mapping's pollers (`local/sqs_events.py`), one per worker, each
  worker a `Relay` of its own (its own AWS clients, connection pool, credential cache) with the DynamoDB shaper on
  a scaled clock: a container each.
- Tenant A's smarthost (a process of its own) enforces Exchange Online's SMTP AUTH limits on the same scaled clock
  (`local/provider_limits.py`): 30 messages a minute, 10,000 recipients a day, 3 concurrent transactions. Each of
  A's notifications has 10 recipients, so 1,000 of them are exactly one day's recipients.
- Tenant B (another account, another smarthost) sends one notification every `b_interval` seconds: first alone (its
  idle latency), then during A's burst. Latency: queued to taken by B's smarthost.

Reported: throttle replies (must be 0), A's rate against the limit (target >= 95%: the burst's span against the
shortest that 30 messages in any minute allows), the most recipients in any day (<= 10,000), each notification taken
exactly once, and B's latency p50/p99 idle and during the burst (target: p99 during <= 2x p99 idle): as deployed
(the template's batching window), strict (none), without the fair queues' order, and at the provider's own pace (1x).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.smarthost_process import SmarthostProcess  # noqa: E402

NAME = "shaper"
TITLE = "Sending limits and fairness: a 1,000-notification burst for one Microsoft 365 mailbox, 4 relay workers"
ACCOUNT_A, ACCOUNT_B = "A01BENCHSHAPERBURST", "A01BENCHSHAPERQUIET"
ADDRESS_A, ADDRESS_B = "support@acme.test", "support@globex.test"
MINUTE = 60.0
TARGET_RATE = 0.95
TARGET_LATENCY_RATIO = 2.0


@dataclass
class Burst:
    notifications: int = 1000
    recipients: int = 10
    workers: int = 4
    time_scale: float = 30.0  # a minute passes in two seconds
    b_interval: float = 0.2
    idle_samples: int = 60
    fair: bool = True
    timeout: float = 600.0
    over_the_day: int = 0  # notifications more, after the burst, whose recipients the day has no room for
    recipients_per_day: int = 10_000  # Microsoft's; lower: the admin lowered it (fewer RCPTs for a short run)
    batching_window: float = 0.0  # the event source mapping's MaximumBatchingWindowInSeconds (template.yaml: 2)


@dataclass
class Outcome:
    burst: Burst
    sent: int = 0
    taken_once: bool = False
    throttles: dict[str, int] = field(default_factory=dict)
    most_in_a_minute: int = 0
    most_recipients_in_a_day: int = 0
    steady_rate: float = 0.0  # messages a minute after the first minute (over-counts sends that come in waves)
    span_minutes: float = 0.0  # scaled, first to last message taken
    wall_seconds: float = 0.0
    over_the_day: list[str] = field(default_factory=list)  # what their tickets say
    idle: list[float] = field(default_factory=list)  # B's latencies, seconds
    during: list[float] = field(default_factory=list)
    first_receive: list[float] = field(default_factory=list)  # of `during`, sent before A's last first receive
    later: list[float] = field(default_factory=list)  # of `during`, sent after it
    first_receive_seconds: float = 0.0  # wall seconds until every one of A's notifications was received once

    @property
    def limit_span_minutes(self) -> float:
        """The shortest span the limit allows: 30 at once, then 30 more each minute (message k no sooner than
        minute k // 30)."""
        return (self.sent - 1) // 30 if self.sent else 0.0

    @property
    def rate_ratio(self) -> float:
        """The burst's rate against the limit's: the shortest span it allows over the span it took."""
        return self.limit_span_minutes / self.span_minutes if self.span_minutes else 0.0


def p(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class World:
    """moto + template, two tenants and their smarthosts, N relay workers polling the queue."""

    def __init__(self, burst: Burst) -> None:
        self.burst = burst
        self.first_seen: dict[str, float] = {}  # notification id -> when a worker was first handed it
        self._seen_lock = threading.Lock()
        self.start = time.time()

    def __enter__(self) -> World:
        import boto3

        from bench.moto_process import MotoProcess
        from local.aws_resources import provision

        self._stack = contextlib.ExitStack()
        self._saved_env = dict(os.environ)
        endpoint = self._stack.enter_context(MotoProcess(fair=self.burst.fair))
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                           "POWERTOOLS_TRACE_DISABLED": "true", "AWS_ENDPOINT_URL": endpoint})
        for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(name, None)
        env = provision(boto3.session.Session(), template_path=ROOT / "template.yaml")
        os.environ.update({k: v for k, v in env.items() if k.startswith("RELAYDESK_")})
        # the relay knows the batching window its pollers use here (the template's figure only in the deployed run)
        os.environ["RELAYDESK_RELAY_BATCHING_WINDOW_SECONDS"] = str(self.burst.batching_window)
        scale = self.burst.time_scale
        self.smarthost_a = self._stack.enter_context(SmarthostProcess(limits=dict(
            messages_per_minute=30, recipients_per_day=self.burst.recipients_per_day, recipients_per_message=500,
            connections=3, time_scale=scale, start=self.start)))
        self.smarthost_b = self._stack.enter_context(SmarthostProcess(username="relay@globex.test"))
        self.stores = _fresh_stores()
        self._populate()
        self.sqs = boto3.client("sqs")
        self.queue_url = self.stores.settings.notifications_queue_url
        self.relays = [self._worker() for _ in range(self.burst.workers)]
        from local.sqs_events import SqsEventSource

        self.source = SqsEventSource(self.sqs, self.queue_url, [invoke for _, invoke in self.relays],
                                     batching_window=self.burst.batching_window).start()
        self._stack.callback(self.source.stop)
        return self

    def __exit__(self, *exc) -> None:
        for relay, _ in self.relays:
            relay.close()
        self._stack.close()
        os.environ.clear()
        os.environ.update(self._saved_env)

    # --- set-up ----------------------------------------------------------------------------------------------------
    def _populate(self) -> None:
        from relaydesk.accounts import Account, Brand
        from relaydesk.addresses.model import (
            AddressKind,
            Connector,
            ConnectorState,
            SupportAddress,
            Verification,
            VerificationStatus,
        )
        from relaydesk.addresses.providers import LimitOverrides
        from relaydesk.credentials import SmtpCredentials, TlsMode
        from relaydesk.ids import new_id
        from relaydesk.tickets.model import Ticket

        self.tickets: dict[str, list[str]] = {}
        for account, address, host, provider, limits in (
                (ACCOUNT_A, ADDRESS_A, self.smarthost_a, "microsoft365", self._lowered()),
                (ACCOUNT_B, ADDRESS_B, self.smarthost_b, "other",
                 LimitOverrides(messages_per_minute=6000, connections=20))):  # B's own server: its limits never bind
            subdomain = address.split("@")[1].split(".")[0]
            self.stores.directory.create_account(Account(account_id=account, subdomain=subdomain, name=subdomain,
                                                         brands=[Brand(brand_id="B1", name=subdomain)]))
            secret = self.stores.secrets.create(self.stores.settings.secret_prefix + address, SmtpCredentials(
                host=host.host, port=host.port, tls_mode=TlsMode.STARTTLS, username=host.username,
                password=host.password, ca_bundle_pem=host.ca_pem).to_secret_string(), {})
            self.stores.directory.create_address(SupportAddress(
                email=address, account_id=account, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
                connector=Connector(host=host.host, port=host.port, tls_mode=TlsMode.STARTTLS, secret_arn=secret,
                                    state=ConnectorState.ACTIVE, provider=provider, limits=limits),
                outbound=Verification(status=VerificationStatus.VERIFIED)))
            self.tickets[account] = []
            for _ in range(20):
                ticket = Ticket(ticket_id=new_id("T"), account_id=account, support_address=address,
                                subject="Printer jammed", requester="jane@example.net")
                self.stores.tickets.create_ticket(ticket)
                self.tickets[account].append(ticket.ticket_id)

    def _lowered(self):
        from relaydesk.addresses.providers import LimitOverrides

        day = self.burst.recipients_per_day
        return LimitOverrides(recipients_per_day=day) if day < 10_000 else None

    def _worker(self):
        from relaydesk.outbound.batch import relay_event
        from relaydesk.outbound.credentials import CredentialCache
        from relaydesk.outbound.relay import Relay
        from relaydesk.outbound.shaper import ScaledClock, Shaper
        from relaydesk.store.once_dynamodb import dynamo_once
        from relaydesk.store.sqs_retry import SqsRetryDelay
        from relaydesk.wiring import aws_client, aws_shaper_states

        stores = _fresh_stores()  # a container: its own clients, pool, caches
        settings = stores.settings
        relay = Relay(stores, credentials=CredentialCache(stores.secrets, 300),
                      once=dynamo_once(settings.idempotency_table,
                                       in_progress_seconds=settings.relay_in_progress_seconds),
                      shaper=Shaper(aws_shaper_states(), ScaledClock(self.burst.time_scale, start=self.start)))
        retry = SqsRetryDelay(aws_client("sqs"), settings.notifications_queue_url)

        def invoke(event: dict) -> dict:
            now = time.time()
            with self._seen_lock:
                for record in event.get("Records", []):
                    self.first_seen.setdefault(json.loads(record["body"]).get("notification_id", ""), now)
            return relay_event(relay, event, retry, lambda: 60_000, stores.dead_letters)

        return relay, invoke

    def notification(self, account: str, index: int, recipients: int):
        from relaydesk.ids import new_id
        from relaydesk.notification import Notification

        tickets = self.tickets[account]
        address = ADDRESS_A if account == ACCOUNT_A else ADDRESS_B
        ticket = tickets[index % len(tickets)]
        return Notification(notification_id=new_id("N"), account_id=account, ticket_id=ticket,
                            support_address=address, recipients=[f"user{index}-{r}@example.net"
                                                                 for r in range(recipients)],
                            subject=f"Mass update [RD#{ticket}]", text_body="We changed the printer policy.")

    # --- running ---------------------------------------------------------------------------------------------------
    def record(self, notification) -> str:
        found = self.stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        return f"{found.status.value}: {found.attempts[-1].reply}" if found and found.attempts else "no record"

    def enqueue(self, notifications) -> None:
        from relaydesk.store.ports import Requeued

        failed = self.stores.queue.requeue([Requeued(n, 0) for n in notifications])
        assert not failed, f"{len(failed)} notifications could not be queued"

    def quiet_tenant(self, samples: int | None, stop: threading.Event, sent: dict[str, float]) -> None:
        """Tenant B: one notification every `b_interval` seconds, `samples` of them or until `stop`."""
        index = 0
        while (samples is None or index < samples) and not stop.is_set():
            notification = self.notification(ACCOUNT_B, index, 1)
            sent[notification.notification_id] = time.time()
            self.stores.queue.send(notification)
            index += 1
            stop.wait(self.burst.b_interval)


def _fresh_stores():
    from relaydesk.wiring import aws_stores

    return aws_stores.__wrapped__()


def latencies(sent: dict[str, float], arrivals: list[tuple[str, float, int]]) -> list[float]:
    return [at - sent[nid] for nid, at, _ in arrivals if nid in sent]


def run_burst(burst: Burst) -> Outcome:
    import warnings

    # powertools' idempotency asks for the Lambda context to expire an in-progress record with its invocation;
    # these workers are not Lambda invocations (the handler registers it in AWS).
    warnings.filterwarnings("ignore", message="Couldn't determine the remaining time left")
    outcome = Outcome(burst)
    with World(burst) as world:
        # B alone: its idle latency
        sent_b: dict[str, float] = {}
        world.quiet_tenant(burst.idle_samples, threading.Event(), sent_b)
        arrivals_b = _wait_for(world.smarthost_b, len(sent_b), 60)
        outcome.idle = latencies(sent_b, arrivals_b)

        # A's burst, B keeps sending
        started = time.time()
        burst_notifications = [world.notification(ACCOUNT_A, i, burst.recipients) for i in range(burst.notifications)]
        late = [world.notification(ACCOUNT_A, burst.notifications + i, burst.recipients)
                for i in range(burst.over_the_day)]
        sent_b = {}
        stop = threading.Event()
        quiet = threading.Thread(target=world.quiet_tenant, args=(None, stop, sent_b), daemon=True)
        quiet.start()
        world.enqueue(burst_notifications)
        arrivals_a = _wait_for(world.smarthost_a, burst.notifications, burst.timeout)
        if late:
            world.enqueue(late)
            deadline = time.monotonic() + 3 * MINUTE / burst.time_scale  # room enough for any rate
            while time.monotonic() < deadline and any(world.record(n) == "no record" for n in late):
                time.sleep(0.1)
            time.sleep(0.5)
            arrivals_a += world.smarthost_a.arrivals()
            outcome.over_the_day = [world.record(n) for n in late]
        stop.set()
        quiet.join()
        outcome.wall_seconds = time.time() - started
        arrivals_b = _wait_for(world.smarthost_b, len(sent_b), 60)
        outcome.during = latencies(sent_b, arrivals_b)
        received = max(world.first_seen.get(n.notification_id, started) for n in burst_notifications)
        outcome.first_receive_seconds = received - started
        outcome.first_receive = latencies({n: at for n, at in sent_b.items() if at < received}, arrivals_b)
        outcome.later = latencies({n: at for n, at in sent_b.items() if at >= received}, arrivals_b)

        report = world.smarthost_a.limits_report() or {"events": {}, "users": {}}
        user = report["users"].get(world.smarthost_a.username, {})
        taken = user.get("taken", [])
        outcome.sent = len(arrivals_a)
        ids = [nid for nid, _, _ in arrivals_a]
        outcome.taken_once = len(ids) == len(set(ids)) == burst.notifications and \
            set(ids) == {n.notification_id for n in burst_notifications}  # and none of the late ones
        outcome.throttles = report["events"]
        outcome.most_in_a_minute = user.get("most_in_a_minute", 0)
        outcome.most_recipients_in_a_day = user.get("most_recipients_in_a_day", 0)
        if taken:
            first, last = min(taken), max(taken)
            outcome.span_minutes = (last - first) / MINUTE
            steady = [t for t in taken if t > first + MINUTE]
            if last - first > MINUTE and steady:
                outcome.steady_rate = len(steady) / ((last - first - MINUTE) / MINUTE)
    return outcome


def _wait_for(smarthost: SmarthostProcess, count: int, timeout: float) -> list[tuple[str, float, int]]:
    arrivals: list[tuple[str, float, int]] = []
    deadline = time.monotonic() + timeout
    while len(arrivals) < count and time.monotonic() < deadline:
        arrivals += smarthost.arrivals()
        time.sleep(0.05)
    return arrivals


# --- the report ----------------------------------------------------------------------------------------------------

def template_batching_window() -> float:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 (a safe loader)
    mapping = template["Resources"]["RelayNotificationsMapping"]["Properties"]
    return float(mapping.get("MaximumBatchingWindowInSeconds", 0))


def run(config):
    quick = config.quick
    load_before = os.getloadavg()[0]
    main = Burst(notifications=60, idle_samples=10) if quick else Burst(time_scale=10.0)
    side = 40 if quick else 300
    fair = run_burst(main)
    deployed = run_burst(Burst(notifications=main.notifications, idle_samples=main.idle_samples,
                               time_scale=main.time_scale, batching_window=template_batching_window()))
    unfair = run_burst(Burst(notifications=side, idle_samples=main.idle_samples, time_scale=main.time_scale,
                             fair=False))
    # The provider's own pace: A's sends come a tenth as often, so each wall second holds a tenth of the burst's work.
    real_pace = run_burst(Burst(notifications=31 if quick else 100, idle_samples=main.idle_samples, time_scale=1.0,
                                timeout=900.0))
    return render(fair, unfair, deployed, real_pace, loads=(load_before, os.getloadavg()[0]))  # and the machine's line


SCALE_NOTE = ("The scaled clock magnifies every fixed wall-time cost tenfold: a notification that comes back a "
              "second late leaves its slot unused for a sixth of a minute (hence the delays rounded down and the wait "
              "for the turn in the invocation), and A's 30 messages a minute are 5 a wall second, each costing a "
              "worker its receive, turn, send and records, so B finds the four workers busy ten times as often as at "
              "the provider's pace. A's first receive is the time until every one of A's notifications was "
              "received once (given its turn, its ticket told, queued again): the same work at any clock.")


def _latency_row(label: str, outcome: Outcome) -> str:
    ratio = p(outcome.during, .99) / p(outcome.idle, .99)
    burst = outcome.burst
    return (f"| {label} | {burst.notifications} at {burst.time_scale:g}x | {p(outcome.idle, .5) * 1000:.0f} / "
            f"{p(outcome.idle, .99) * 1000:.0f} ms | {p(outcome.during, .5) * 1000:.0f} / "
            f"{p(outcome.during, .99) * 1000:.0f} ms | {outcome.first_receive_seconds:.0f} s: "
            f"{p(outcome.first_receive, .99) * 1000:.0f} / "
            f"{p(outcome.later, .99) * 1000:.0f} ms | {ratio:.2f}x | "
            f"{'met' if ratio <= TARGET_LATENCY_RATIO else 'MISSED'} |")


def _rate_row(label: str, outcome: Outcome) -> str:
    return (f"| {label} | {outcome.sent} in {outcome.span_minutes:.1f} scaled minutes; the limit allows "
            f"{outcome.limit_span_minutes:.0f}: {30 * outcome.rate_ratio:.2f} msg/min, {outcome.rate_ratio:.1%} of 30 "
            f"(after the first minute: {outcome.steady_rate:.2f} msg/min) | >= 95%: "
            f"{'met' if outcome.rate_ratio >= TARGET_RATE else 'MISSED'} |")


def render(fair: Outcome, unfair: Outcome, deployed: Outcome, real_pace: Outcome,
           loads: tuple[float, float] | None = None) -> str:
    b = fair.burst
    lines = [
        f"## {TITLE}", "",
        f"`bench/bench_shaper.py`: {b.notifications} notifications of {b.recipients} recipients each for one "
        f"Microsoft 365 mailbox through {b.workers} relay workers (each a `Relay` with its own AWS clients and pool, "
        f"the DynamoDB shaper on a clock {b.time_scale:g}x the wall's: a minute passes in "
        f"{MINUTE / b.time_scale:g} s), moto in a process of its own with SQS fair queues' order, the event source "
        "mapping's pollers one per worker, and the local smarthost in a process of its own enforcing Exchange "
        "Online's limits on the same clock. Tenant B (another account and smarthost) sends one notification every "
        f"{b.b_interval:g} s, alone first, then during A's burst; its latency is from the queue to its smarthost.", "",
        "| figure | value | target |", "|---|---:|---|",
        f"| throttle replies and delayed messages (432 4.3.2, over the minute, 554 5.2.0) | "
        f"{sum(fair.throttles.values())} | 0: {'met' if not fair.throttles else 'MISSED ' + str(fair.throttles)} |",
        f"| taken by the smarthost, each exactly once | {fair.sent} of {b.notifications} | "
        f"{'met' if fair.taken_once else 'MISSED'} |",
        _rate_row("rate, no batching window", fair),
        _rate_row(f"rate, the template's batching window ({deployed.burst.batching_window:g} s)", deployed),
        f"| most messages in any minute, as the provider counts | {fair.most_in_a_minute} | <= 30: "
        f"{'met' if fair.most_in_a_minute <= 30 else 'MISSED'} |",
        f"| most recipients in any day, as the provider counts | {fair.most_recipients_in_a_day:,} | <= "
        f"{b.recipients_per_day:,}: {'met' if fair.most_recipients_in_a_day <= b.recipients_per_day else 'MISSED'} |",
        f"| the burst's span | {fair.span_minutes:.1f} scaled minutes, {fair.wall_seconds:.0f} s of wall time | |",
        "",
        "Tenant B's latency, idle and during A's burst (p99 during / p99 idle, target <= 2x):", "",
        "| run | A's notifications, clock | idle p50 / p99 | during p50 / p99 | A's first receive: its span, B's p99 "
        "during it / after | "
        "ratio | target |",
        "|---|---:|---:|---:|---:|---:|---|",
        _latency_row("fair queues' order, the template's batching window "
                     f"({deployed.burst.batching_window:g} s, as deployed)", deployed),
        _latency_row("fair queues' order, no batching window (strict)", fair),
        _latency_row("fair queues' order, no batching window, the provider's pace", real_pace),
        _latency_row("arrival order (no fair queues), no batching window", unfair),
        "",
        SCALE_NOTE,
        *([] if loads is None else [
            "", f"The machine is shared: its load average (1 minute, `uptime`) was {loads[0]:.2f} when the runs "
                f"started and {loads[1]:.2f} when they ended."]),
    ]
    return "\n".join(lines)


def summary(outcome: Outcome) -> str:
    return (f"sent {outcome.sent}, throttles {outcome.throttles}, minute {outcome.most_in_a_minute}, day "
            f"{outcome.most_recipients_in_a_day}, span {outcome.span_minutes:.2f} of {outcome.limit_span_minutes:.0f} "
            f"min: {outcome.rate_ratio:.1%} (after the first minute {outcome.steady_rate:.2f}/min), "
            f"first receive {outcome.first_receive_seconds:.1f} s, p99 during it/after "
            f"{p(outcome.first_receive, .99):.3f}/{p(outcome.later, .99):.3f}, idle p50/p99 "
            f"{p(outcome.idle, .5):.3f}/{p(outcome.idle, .99):.3f}, during {p(outcome.during, .5):.3f}/"
            f"{p(outcome.during, .99):.3f}, wall {outcome.wall_seconds:.1f}s")


if __name__ == "__main__":
    print(summary(run_burst(Burst(notifications=int(sys.argv[1]) if len(sys.argv) > 1 else 120,
                                  time_scale=float(sys.argv[2]) if len(sys.argv) > 2 else 30.0,
                                  idle_samples=20,
                                  batching_window=float(sys.argv[3]) if len(sys.argv) > 3 else 0.0))))
