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
