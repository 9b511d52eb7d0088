"""Relay speed at network latency: the Relaydesk relay against a Postfix relay client and raw senders, each through
a loopback proxy that delays each direction (one proxy a sender, all with the same delay), into one smarthost (a
real Postfix with STARTTLS and SASL when it can run here, else the project's aiosmtpd smarthost), in the same run,
the senders taking turns run by run.

Rows: one-way delay x the smarthost's wait before it answers the end of DATA. Columns: the relay (its path as
bench/bench_relay.py drives it: pipelined, up to N connections per smarthost), the same relay with its send path
before pipelining (one connection, one command at a time), a Postfix relay client with the relay's N connections,
and raw senders (1 connection, N connections, N pipelined connections) pushing the same kind of signed messages over
connections opened before the clock. After every run the smarthost's mail is read back: every message must have
arrived exactly once, and every DKIM signature on it must verify.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from relaydesk.outbound.connector import CONNECTIONS_PER_SMARTHOST

from bench.latency_report import render
from bench.latency_senders import Endpoint, PostfixSender, RawSender, RelaydeskSender
from bench.network_process import NetworkProcess
from bench.postfix_instances import PostfixRelayClient, PostfixSmarthost, running, unavailable
from bench.smarthost_process import SmarthostProcess

NAME = "latency"
TITLE = "Relay speed at network latency: against a Postfix relay client and raw senders"

# The raw N senders and the Postfix relay client: the connections per smarthost the relay uses (Microsoft 365 allows
# 3 per mailbox, Postfix's own default is 20); the report counts the relay's at the proxy and says.
CONNECTIONS = CONNECTIONS_PER_SMARTHOST
MESSAGES = 20  # per cell and run: two SQS batches for the relay, about seven per connection for the N senders
DELAYS_MS = (0, 10, 25)
WAITS_MS = (0, 200)
RUNS = 3
CPU_BOUND_RUNS = 3  # x RUNS for 0 ms without a wait: CPU-bound cells on a shared machine, a run takes ~0.1 s
USERNAME = "relay@acme.test"
EMAIL_ID = re.compile(rb"^X-Relaydesk-Email-Id:\s*(\S+)", re.M | re.I)
FORCE_LOCAL = "RELAYDESK_BENCH_LOCAL_SMARTHOST"  # set to 1: the project's smarthost even when Postfix can run


@dataclass
class Cell:
    rates: list[float] = field(default_factory=list)  # messages per second, one per timed run

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


@dataclass
class Measured:
    columns: list[str]
    cells: dict[tuple[int, int, str], Cell]
    relay_connections: int = 0
    messages_checked: int = 0
    signatures_verified: int = 0
    smarthost: str = ""
    skipped: str = ""
    postfix_version: str = ""
    # The senders that speak BDAT where the smarthost offers it (the relay, raw pipelined): the row from which they
    # sent DATA, because the smarthost held a BDAT reply back (relaydesk.outbound.pipelined); absent: BDAT throughout.
    data_from: dict[str, str] = field(default_factory=dict)


# --- the smarthost the table runs into ----------------------------------------------------------------------

class LocalSmarthost:
    """The project's smarthost (local/smarthost.py) in its own process: PIPELINING, STARTTLS, AUTH."""

    label = "the project's smarthost (aiosmtpd, `local/smarthost.py`, in its own process)"

    def __init__(self, process: SmarthostProcess) -> None:
        self.process = process
        self.port, self.username = process.port, process.username
        self.password, self.ca_pem = process.password, process.ca_pem

    def set_wait(self, seconds: float) -> None:
        self.process.set_end_of_data_wait(seconds)

    def collect(self, count: int, timeout: float = 60) -> list[bytes]:
        """What arrived since the last call, once `count` messages did (or the timeout passed)."""
        arrived: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(arrived) < count and time.monotonic() < deadline:
            arrived += [data for _, _, data in self.process.take()]
            time.sleep(0.01)
        return arrived


# --- the checks after every run -----------------------------------------------------------------------------

def offline_dns(relay):
    """dkimpy's `dnsfunc` answering with the TXT records the customer published for the bench's keyring."""
    from datetime import UTC, datetime

    from relaydesk.dkim.records import key_record
    from relaydesk.dkim.storage import load_keyring

    from bench.bench_relay import ADDRESS

    address = relay.stores.directory.get_address(ADDRESS)
    keyring, _ = load_keyring(relay.stores.secrets, address.dkim.secret_arn)
    records = {f"{r.name}.": r.value for generation, _ in keyring.published(datetime.now(UTC))
               for r in (key_record(key, keyring.domain) for key in generation.keys)}

    def dnsfunc(name, timeout=5):
        value = records.get(name.decode() if isinstance(name, bytes) else name)
        return value.encode() if value is not None else None

    return dnsfunc


def check_arrivals(sender: str, arrivals: list[bytes], expected: set[str], dnsfunc) -> int:
    """Every expected message exactly once, nothing else, every DKIM signature verified; returns the signatures."""
    import dkim

    ids = Counter(match.group(1).decode() if (match := EMAIL_ID.search(data)) else "" for data in arrivals)
    missing, extra = expected - ids.keys(), set(ids) - expected
    twice = {key for key, seen in ids.items() if seen > 1}
    if missing or extra or twice:
        raise RuntimeError(f"{sender}: {len(missing)} missing, {len(twice)} more than once, {len(extra)} unexpected "
                           f"of {len(expected)}")
    verified = 0
    for data in arrivals:
        count = sum(1 for name, _ in dkim.DKIM(data).headers if name.lower() == b"dkim-signature")
        for index in range(count):
            if not dkim.DKIM(data).verify(idx=index, dnsfunc=dnsfunc):
                raise RuntimeError(f"{sender}: DKIM signature {index + 1} of {count} does not verify after delivery")
            verified += 1
        if count == 0:
            raise RuntimeError(f"{sender}: a message arrived without a DKIM signature")
    return verified


# --- the measurement ----------------------------------------------------------------------------------------

def measure(*, messages: int = MESSAGES, runs: int = RUNS, warmup: int = 1, delays_ms=DELAYS_MS,
            waits_ms=WAITS_MS, connections: int = CONNECTIONS) -> Measured:
    from bench.bench_relay import MemoryRelay, _set_up_objects_frozen
    from local.ca import LocalCA

    skipped = unavailable() or ("the project's smarthost was asked for" if os.environ.get(FORCE_LOCAL) else "")
    with tempfile.TemporaryDirectory(prefix="relaydesk-bench-latency-") as folder, NetworkProcess() as net, \
            contextlib.ExitStack() as stack:
        root = Path(folder)
        os.chmod(root, 0o755)  # noqa: S103  # Postfix's daemons (the postfix user) reach their queue below it
        if not skipped:
            ca = LocalCA(root / "ca")
            certificate = ca.issue(["127.0.0.1", "localhost"])
            smarthost = PostfixSmarthost(root / "smarthost", cert_path=certificate.cert_path,
                                         key_path=certificate.key_path, ca_pem=ca.pem, username=USERNAME,
                                         password=secrets.token_urlsafe(16), policy_port=net.policy_port)
            target = smarthost
            set_wait = net.set_wait
        else:
            local = LocalSmarthost(stack.enter_context(SmarthostProcess()))
            target, set_wait = local, local.set_wait
        # A proxy per sender (same delay, same smarthost): the connections counted on one are that sender's own.
        def endpoint() -> Endpoint:
            return Endpoint("127.0.0.1", net.proxy(target.port), target.username, target.password, target.ca_pem)

        relay_endpoint = endpoint()
        if not skipped:
            client = PostfixRelayClient(root / "relayclient", relay_port=endpoint().port,
                                        ca_path=root / "ca" / "ca.pem",
                                        username=target.username, password=target.password,
                                        connections=connections)
            stack.enter_context(running(smarthost, client))
        relay = stack.enter_context(MemoryRelay(relay_endpoint, shaped=True))  # as deployed: with its shaper
        senders = [RelaydeskSender(relay), RelaydeskSender(relay, before=True)]
        if not skipped:
            senders.append(PostfixSender(relay, client))
        senders += [RawSender(relay, endpoint(), 1, pipelined=False),
                    RawSender(relay, endpoint(), connections, pipelined=False),
                    RawSender(relay, endpoint(), connections, pipelined=True)]
        dnsfunc = offline_dns(relay)
        result = Measured([s.name for s in senders], {}, smarthost=target.label, skipped=skipped)
        if not skipped:
            result.postfix_version = _postfix_version()
        stack.enter_context(_set_up_objects_frozen())

        def one_run(sender) -> float:
            expected = sender.prepare(messages)
            net.busy_connections(relay_endpoint.port)
            seconds = sender.send()
            if sender is senders[0]:
                result.relay_connections = max(result.relay_connections, net.busy_connections(relay_endpoint.port))
            result.signatures_verified += check_arrivals(sender.name, target.collect(messages), expected, dnsfunc)
            result.messages_checked += messages
            return seconds

        chunking = {senders[0].name: relay_endpoint, senders[-1].name: senders[-1].endpoint}

        def note_protocols(row: str) -> None:
            from relaydesk.outbound.pipelined import held_back

            for name, at in chunking.items():
                if name not in result.data_from and held_back(f"connector:{at.host}:{at.port}"):
                    result.data_from[name] = row

        rows = [(delay, wait) for delay in delays_ms for wait in waits_ms]
        for _ in range(warmup):  # connections opened, pools and caches warm, code paths loaded
            net.set_delay(rows[0][0] / 1000)
            set_wait(rows[0][1] / 1000)
            for sender in senders:
                one_run(sender)
            note_protocols(f"the warm-up round ({_row_label(*rows[0])})")
        for delay, wait in rows:
            net.set_delay(delay / 1000)
            set_wait(wait / 1000)
            for _ in range(runs * (CPU_BOUND_RUNS if (delay, wait) == (0, 0) else 1)):
                for sender in senders:
                    rate = messages / one_run(sender)
                    result.cells.setdefault((delay, wait, sender.name), Cell()).rates.append(rate)
            note_protocols(_row_label(delay, wait))
        return result


def _row_label(delay: int, wait: int) -> str:
    return f"{delay} ms" + (f", {wait} ms end-of-DATA wait" if wait else "")


def _postfix_version() -> str:
    done = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run(config):
    quick = config.quick
    messages = 3 if quick else MESSAGES
    runs = 1 if quick else RUNS
    delays, waits = ((5,), (50,)) if quick else (DELAYS_MS, WAITS_MS)
    warmup = 0 if quick else 1
    result = measure(messages=messages, runs=runs, warmup=warmup, delays_ms=delays, waits_ms=waits)
    return render(result, title=TITLE, messages=messages, runs=runs, warmup=warmup, connections=CONNECTIONS,
                  rows=[(delay, wait) for delay in delays for wait in waits])
