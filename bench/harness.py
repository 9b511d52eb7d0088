"""What every benchmark shares: interleaved timing with warm-up, median/min/max, ratios, the machine, the report.

A benchmark module `bench/bench_<name>.py` defines `NAME`, `TITLE` and `run(config: Config) -> Result`; `python -m
bench` finds it, runs it, and writes its section of docs/BENCHMARKS.md between `<!-- bench:<name>:begin/end -->`
markers, so that each benchmark rewrites its own section and no other.
"""

from __future__ import annotations

import os
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "docs" / "BENCHMARKS.md"
REPORT_HEADER = """# Benchmarks

Measured by `make bench` (`python -m bench`; one benchmark: `python -m bench --only NAME`). Every figure is the
median of several runs after a warm-up, with the minimum and maximum; every ratio compares figures measured in the
same process, interleaved run by run, so that a noisy machine moves both sides. Each section below is written by
its own benchmark module in `bench/` and replaced when that benchmark runs again.
"""


@dataclass(frozen=True)
class Config:
    quick: bool = False  # a tiny N and two runs: proves the benchmark works, measures nothing
    runs: int = 7
    warmup_runs: int = 1

    def number(self, full: int) -> int:
        """How many operations one run times: `full`, or 3 in quick mode."""
        return 3 if self.quick else full

    @property
    def timed_runs(self) -> int:
        return 2 if self.quick else self.runs


@dataclass(frozen=True)
class Timing:
    median: float  # seconds per operation
    minimum: float
    maximum: float
    runs: int
    number: int  # operations per run


def measure(cases: dict[str, tuple[Callable[[], object], int]], config: Config, *,
            clock: Callable[[], float] = time.perf_counter, runs: int | None = None) -> dict[str, Timing]:
    """Seconds per operation of each case: `number` calls per run, runs interleaved across cases (case A run 1,
    case B run 1, A run 2, ...) after `warmup_runs` untimed rounds, so the cases share the machine's noise.

    `clock` is wall time by default; a CPU-bound case may pass `time.thread_time` so that other processes on a
    busy machine do not count (on an idle machine both read the same). `runs` overrides the config's count."""
    samples: dict[str, list[float]] = {label: [] for label in cases}
    timed_runs = 2 if config.quick else (runs or config.timed_runs)
    for round_index in range(config.warmup_runs + timed_runs):
        for label, (operation, number) in cases.items():
            started = clock()
            for _ in range(number):
                operation()
            elapsed = (clock() - started) / number
            if round_index >= config.warmup_runs:
                samples[label].append(elapsed)
    return {label: Timing(statistics.median(values), min(values), max(values), len(values), cases[label][1])
            for label, values in samples.items()}


@dataclass(frozen=True)
class Row:
    label: str
    median: float
    minimum: float
    maximum: float
    unit: str
    note: str = ""

    @classmethod
    def of(cls, label: str, timing: Timing, *, unit: str = "ms", scale: float = 1e3, note: str = "") -> Row:
        return cls(label, timing.median * scale, timing.minimum * scale, timing.maximum * scale, unit, note)


@dataclass(frozen=True)
class Ratio:
    """numerator's median / denominator's median, against a target (`<=` or `>=`) when there is one."""

    label: str
    numerator: str
    denominator: str
    target: float | None = None
    direction: str = "<="

    def value(self, rows: dict[str, Row]) -> float:
        return rows[self.numerator].median / rows[self.denominator].median

    def verdict(self, value: float) -> str:
        if self.target is None:
            return ""
        met = value <= self.target if self.direction == "<=" else value >= self.target
        return f"target {self.direction} {self.target:g}: {'met' if met else 'MISSED'}"


@dataclass
class Result:
    name: str
    title: str
    rows: list[Row]
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parameters: dict[str, object] = field(default_factory=dict)

    def ratio_values(self) -> list[tuple[Ratio, float]]:
        by_label = {row.label: row for row in self.rows}
        return [(ratio, ratio.value(by_label)) for ratio in self.ratios]


def machine() -> dict[str, str]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(errors="replace"), re.M)
        model = found.group(1).strip() if found else ""
    return {
        "cores": str(os.cpu_count() or "?"),
        "cpu": model or platform.processor() or platform.machine(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "os": f"{platform.system()} {platform.release()}",
    }


def machine_line(host: dict[str, str], command: str) -> str:
    return (f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {host['cores']} cores ({host['cpu']}), "
            f"{host['python']}, {host['os']}. Reproduce: `{command}`.")


def render(result: Result, host: dict[str, str], *, command: str) -> str:
    lines = [f"## {result.title}", "", machine_line(host, command), ""]
    if result.parameters:
        lines += ["Parameters: " + ", ".join(f"{k} = {v}" for k, v in result.parameters.items()) + ".", ""]
    lines += ["| case | median | min | max | unit | note |", "|---|---:|---:|---:|---|---|"]
    lines += [f"| {r.label} | {r.median:.3f} | {r.minimum:.3f} | {r.maximum:.3f} | {r.unit} | {r.note} |"
              for r in result.rows]
    if result.ratios:
        lines += ["", "| ratio (medians) | value | target |", "|---|---:|---|"]
        lines += [f"| {ratio.label} | {value:.2f}x | {ratio.verdict(value)} |"
                  for ratio, value in result.ratio_values()]
    if result.notes:
        lines += [""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


def write_section(name: str, text: str, path: Path = REPORT) -> None:
    """Replace this benchmark's section of the report (or append it), leaving every other section as it was."""
    begin, end = f"<!-- bench:{name}:begin -->", f"<!-- bench:{name}:end -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else REPORT_HEADER
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(updated.rstrip() + "\n")


def print_summary(result: Result, out=None) -> None:
    out = out or sys.stdout  # looked up at call time: a caller may have replaced sys.stdout
    print(f"{result.title}", file=out)
    for row in result.rows:
        print(f"  {row.label:<60} {row.median:10.3f} {row.unit}  (min {row.minimum:.3f}, max {row.maximum:.3f})",
              file=out)
    for ratio, value in result.ratio_values():
        print(f"  {ratio.label:<60} {value:10.2f}x  {ratio.verdict(value)}", file=out)
