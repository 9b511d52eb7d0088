"""The benchmarks keep working: quick mode of the DKIM benchmark, and the report's sections stay each their own.

Nothing here is timed: speed targets live in bench/, never in tests."""

from __future__ import annotations

from bench import bench_dkim
from bench.__main__ import discover, main
from bench.harness import Config, Result, machine, render, write_section


def test_dkim_benchmark_runs_in_quick_mode_and_reports_every_case_and_ratio():
    result = bench_dkim.run(Config(quick=True))

    assert isinstance(result, Result)
    labels = [row.label for row in result.rows]
    assert any("raw OpenSSL" in label for label in labels)
    assert any("plain dkim.sign" in label for label in labels)
    assert any(label.startswith("ours") for label in labels)
    assert all(row.median > 0 for row in result.rows)
    assert next(ratio.label for ratio, _ in result.ratio_values()) == "ours (RSA + Ed25519) / raw OpenSSL"
    section = render(result, machine(), command="make bench")
    assert "| ours (RSA + Ed25519) / raw OpenSSL |" in section and "cores" in section


def test_quick_mode_from_the_command_line_writes_no_report(tmp_path, capsys):
    report = tmp_path / "BENCHMARKS.md"

    assert main(["--quick", "--only", "dkim", "--output", str(report)]) == 0

    assert "DKIM signing cost per message" in capsys.readouterr().out
    assert not report.exists()


def test_the_registry_finds_the_dkim_benchmark():
    assert "dkim" in discover()
    assert list(discover(["dkim"])) == ["dkim"]


def test_writing_one_section_leaves_the_others_as_they_were(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    write_section("relay", "## Relay\n\nrelay figures v1\n", report)
    write_section("dkim", "## DKIM\n\ndkim figures v1\n", report)

    write_section("dkim", "## DKIM\n\ndkim figures v2\n", report)

    text = report.read_text()
    assert "relay figures v1" in text and "dkim figures v2" in text and "dkim figures v1" not in text
    assert text.index("## Relay") < text.index("## DKIM")


def test_the_shaper_benchmark_reports_every_target_with_its_verdict():
    from bench.bench_shaper import Burst, Outcome, render

    def outcome(notifications: int, idle: float, during: float, span: float = 34.2, **extra) -> Outcome:
        return Outcome(Burst(notifications=notifications, **extra), sent=notifications, taken_once=True,
                       most_in_a_minute=30, most_recipients_in_a_day=10_000, steady_rate=31.0, span_minutes=span,
                       wall_seconds=210, idle=[idle] * 50, during=[during] * 50, first_receive=[during * 2] * 5,
                       later=[during] * 45, first_receive_seconds=9.4)

    section = render(outcome(1000, 0.05, 0.08, time_scale=10.0), outcome(300, 0.05, 0.9, fair=False),
                     outcome(1000, 1.9, 0.4, span=36.0, batching_window=2.0),
                     outcome(100, 0.05, 0.06, span=3.1, time_scale=1.0))
    assert "| throttle replies and delayed messages (432 4.3.2, over the minute, 554 5.2.0) | 0 | 0: met |" in section
    # 1,000 messages at 30 a minute: the last no sooner than 33 minutes after the first
    assert "| rate, no batching window | 1000 in 34.2 scaled minutes; the limit allows 33: 28.95 msg/min, 96.5% of " \
           "30 (after the first minute: 31.00 msg/min) | >= 95%: met |" in section
    assert "the limit allows 33: 27.50 msg/min, 91.7% of 30 (after the first minute: 31.00 msg/min) | >= 95%: " \
           "MISSED |" in section
    assert "| most recipients in any day, as the provider counts | 10,000 | <= 10,000: met |" in section
    assert "| fair queues' order, no batching window (strict) | 1000 at 10x | 50 / 50 ms | 80 / 80 ms | 9 s: 160 / " \
           "80 ms | 1.60x | met |" in section
    assert "| fair queues' order, no batching window, the provider's pace | 100 at 1x | 50 / 50 ms | 60 / 60 ms |" \
        in section
    assert "| arrival order (no fair queues), no batching window | 300 at 30x | 50 / 50 ms | 900 / 900 ms | 9 s: " \
           "1800 / 900 ms | 18.00x | MISSED |" in section
    assert "Measured" not in section  # the machine's line is the harness's, once


def test_the_bench_allows_its_loopback_smarthosts_where_the_test_environment_does_not_help():
    """The tests' conftest allows loopback destinations for every test; `make bench` runs without it, so a fresh
    interpreter without those variables must still let the relay reach the bench's 127.0.0.1 smarthosts."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAYDESK_ALLOWED_")}
    probe = ("import ipaddress, bench; from relaydesk import destinations; "
             "print(destinations.policy().permits(ipaddress.ip_address('127.0.0.1')))")
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.stdout.strip() == "True", done.stderr[-2000:]
