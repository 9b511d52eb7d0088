"""The relay, inbound and cold-start benchmarks keep working: each runs in quick mode (a tiny N), on loopback, and
reports every case and ratio; the benchmark's smarthost process is gone afterwards.

Nothing here is timed and no figure is asserted: speed targets live in bench/, never in tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import bench_coldstart, bench_inbound, bench_relay
from bench.harness import Config, Result, machine, render
from bench.smarthost_process import SmarthostProcess

QUICK = Config(quick=True)


def _labels(result: Result) -> list[str]:
    return [row.label for row in result.rows]


def test_relay_benchmark_delivers_every_message_with_dkim_on_and_reports_both_ratios():
    result = bench_relay.run(QUICK)

    labels = _labels(result)
    for sender in bench_relay.SENDERS:
        for payload in bench_relay.PAYLOADS:
            assert f"{sender}, {payload.name}" in labels
    assert all(row.median > 0 and row.unit == "msg/s" for row in result.rows)
    ratio_labels = [ratio.label for ratio, _ in result.ratio_values()]
    assert "relay handler, moto stores / limit, ~5 KB, one recipient" in ratio_labels
    assert "relay handler, moto stores / naive, ~200 KB, one attachment" in ratio_labels
    assert not any("DKIM was off" in note for note in result.notes)
    section = render(result, machine(), command="make bench")
    assert "| relay, memory stores / limit, ~5 KB, one recipient |" in section


def test_the_benchmark_smarthost_accepts_only_its_user_over_starttls_and_stops_with_its_block():
    import smtplib

    from relaydesk.outbound.tls import client_tls_context

    with SmarthostProcess() as host:
        command_line = Path(f"/proc/{host._process.pid}/cmdline").read_bytes()
        assert host.password.encode() not in command_line  # handed over the socket pair, never on argv
        with smtplib.SMTP(host.host, host.port, timeout=10) as smtp:
            smtp.starttls(context=client_tls_context(host.ca_pem))
            with pytest.raises(smtplib.SMTPAuthenticationError):
                smtp.login(host.username, "not-the-password")
            smtp.login(host.username, host.password)
            smtp.sendmail(host.username, ["jane@example.net"], b"Subject: hi\r\n\r\nhello\r\n")
        assert host.wait(1) == 1
        process = host._process

    assert process.poll() is not None


def test_the_relay_phase_breakdown_accounts_for_the_whole_run():
    with SmarthostProcess() as host, bench_relay.MemoryRelay(host) as relay:
        phases, cpu, process_cpu = bench_relay.phase_breakdown(relay, bench_relay.PAYLOADS[0], 2, host)

    # Every phase is still found in the relay's code (a rename there shows up here, not as a silent gap)
    assert set(bench_relay.PHASES) <= set(phases)
    assert phases["DKIM sign"] > 0 and phases["SMTP round trips (each write and the wait for its replies)"] > 0
    # CPU time of the thread is never more than the wall time it ran in; the process did spend CPU
    assert 0 < cpu["DKIM sign"] <= phases["DKIM sign"] + 0.05 and process_cpu > 0


def test_inbound_benchmark_processes_the_corpus_and_measures_the_peak_of_a_large_mail():
    result = bench_inbound.run(QUICK)

    rows = {row.label.split(" a ")[0]: row for row in result.rows}
    assert rows["corpus messages through process_inbound"].median > 0
    peak = next(row for row in result.rows if row.label.startswith("peak allocated"))
    assert peak.median > 1  # processing holds at least the decoded attachment
    assert "outcome new_ticket" in peak.note
    assert [ratio.label for ratio, _ in result.ratio_values()] == [
        "peak / message size", "header-heavy mail / the same at a quarter of the size",
        "stdlib decode_header / ours, one header"]
    heavy = next(row for row in result.rows if row.label.startswith("header-heavy"))
    assert heavy.median > 0 and heavy.note == "outcome new_ticket"


def test_coldstart_benchmark_times_every_handler_present_against_boto3():
    result = bench_coldstart.run(QUICK)

    labels = _labels(result)
    assert labels[0] == "`import boto3` (baseline)"
    present = [name for name in bench_coldstart.HANDLERS
               if (bench_coldstart.ROOT / "functions" / name / "app.py").is_file()]
    variants = (bench_coldstart.NO_TRACER, bench_coldstart.WITH_SDK)
    measured = [label for label in labels[1:] if not label.endswith(variants)]
    assert measured == [f"`functions/{name}/app.py`" for name in present]
    assert [label for label in labels if label.endswith(bench_coldstart.WITH_SDK)] == [
        f"`functions/{name}/app.py` {bench_coldstart.WITH_SDK}" for name in present]
    assert all(row.median > 0 for row in result.rows)
    assert len(result.ratios) == len(labels) - 1  # every handler and variant against the baseline


def test_a_handler_that_misses_the_target_is_profiled_by_package():
    packages = bench_coldstart.heaviest_imports("rotation")

    names = [name for name, _ in packages]
    assert "relaydesk" in names and "boto3" not in names and "botocore" not in names
