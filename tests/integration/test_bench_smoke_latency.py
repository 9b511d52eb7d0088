"""The latency benchmark keeps working: quick mode (one row, three messages per cell) through the delay proxy into
Postfix when it can run here, else into the project's smarthost; every column reports, every message is checked.
The proxy and the Postfix policy service hold what they are told to hold.

Nothing here is timed against a target and no figure is asserted: speed targets live in bench/, never in tests."""

from __future__ import annotations

import asyncio
import time

import pytest

from bench import bench_latency
from bench.harness import Config
from bench.network_process import NetworkProcess
from bench.postfix_instances import unavailable


def test_the_latency_benchmark_runs_every_column_and_checks_every_message():
    section = bench_latency.run(Config(quick=True))

    postfix = not unavailable()
    header = next(line for line in section.splitlines() if line.startswith("| one-way delay |"))
    assert "| Relaydesk relay |" in header and "raw, 1 connection" in header
    assert "| Relaydesk relay before (1 connection, one command at a time) |" in header
    assert "raw, 3 connections" in header and "raw pipelined, 3 connections" in header
    assert ("Postfix relay client" in header) == postfix
    assert "| 5 ms, server waits 50 ms at end of DATA |" in section
    # one round of 6 (or 5) senders x 3 messages, read back and verified after delivery
    messages = 18 if postfix else 15
    assert f"{messages} messages arrived exactly once each" in section
    assert f"all {2 * messages} DKIM signatures" in section  # RSA and Ed25519 on each
    assert postfix or "The Postfix columns were skipped" in section


@pytest.mark.skipif(bool(unavailable()), reason="without Postfix the test above already runs this way")
def test_without_postfix_the_table_runs_into_the_projects_smarthost_and_says_why(monkeypatch):
    monkeypatch.setenv(bench_latency.FORCE_LOCAL, "1")

    section = bench_latency.run(Config(quick=True))

    assert "Postfix relay client" not in next(line for line in section.splitlines() if line.startswith("| one-way"))
    assert "the project's smarthost (aiosmtpd" in section
    assert "The Postfix columns were skipped**: the project's smarthost was asked for" in section
    assert "15 messages arrived exactly once each" in section


def test_the_proxy_holds_each_direction_for_the_delay_and_the_policy_service_for_the_wait():
    async def echo(reader, writer):
        while data := await reader.read(100):
            writer.write(data)
            await writer.drain()
        writer.close()

    async def round_trip(port: int) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(b"ping")
        answer = await reader.readexactly(4)
        writer.close()
        return time.perf_counter() - started, answer

    async def policy(port: int) -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(b"request=smtpd_access_policy\nprotocol_state=END-OF-MESSAGE\n\n")
        answer = await reader.readuntil(b"\n\n")
        writer.close()
        return time.perf_counter() - started, answer

    async def scenario(net: NetworkProcess):
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        proxy = net.proxy(server.sockets[0].getsockname()[1])
        net.set_delay(0.1)
        net.set_wait(0.3)
        delayed = await round_trip(proxy)
        waited = await policy(net.policy_port)
        net.set_delay(0)
        net.set_wait(0)
        prompt = await round_trip(proxy)
        server.close()
        return delayed, waited, prompt

    with NetworkProcess() as net:
        delayed, waited, prompt = asyncio.run(scenario(net))

    assert delayed[1] == b"ping" and delayed[0] >= 0.2  # 100 ms each way
    assert waited[1] == b"action=DUNNO\n\n" and waited[0] >= 0.3
    assert prompt[1] == b"ping"
