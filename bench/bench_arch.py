"""Import time of each built handler on both architectures (`make bench-arch`, after `make build`):

- x86_64: natively, this machine's Python 3.11, the handler and the built `relaydesk` package with the layer's
  pinned requirements as x86_64 wheels (the same versions SAM put into the arm64 layer);
- arm64: the SAM build itself (aarch64 wheels), run by Debian's arm64 Python 3.11 under qemu-user (`make
  arm64-root`).

Both import with `-S` and nothing but those paths, as Lambda does; the figure is the CPU time of the importing
process (median of interleaved runs). qemu-user translates every aarch64 instruction
in software, so the arm64 column is an emulation figure: it proves the arm64 layer imports and shows where the time
goes, not how fast Graviton is (docs/BENCHMARKS.md says what that means for the choice).

    python -m bench.bench_arch .aws-sam/build [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.build_check import IMPORT_ENV, emulator, host_dependencies

# CPU time of the importing process (time.process_time): other work on a shared machine does not count.
_CHILD = ("import sys, time, json; sys.path[:0] = {paths!r}; started = time.process_time(); import app; "
          "print(json.dumps(time.process_time() - started))")


def import_seconds(python: list[str], paths: list[Path]) -> float:
    code = _CHILD.format(paths=[str(p) for p in paths])
    completed = subprocess.run([*python, "-S", "-c", code], env=IMPORT_ENV, capture_output=True, text=True,
                               timeout=600, check=False)
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    return float(completed.stdout.strip().splitlines()[-1])


def measure(build: Path, runs: int) -> list[dict]:
    arm = emulator("arm64")
    if arm is None:
        raise SystemExit("no arm64 Python here: `make arm64-root` (needs qemu-user-static and root)")
    layer = build / "RelaydeskLayer" / "python"
    host_layer = host_dependencies(build)
    rows = []
    for function in sorted(p for p in build.iterdir() if p.name.endswith("Function")):
        import_seconds([sys.executable], [function, host_layer, layer])  # warm the bytecode caches of both
        import_seconds(arm, [function, layer])
        x86, arm64 = [], []
        for _ in range(runs):  # interleaved, so drift on a busy machine hits both columns alike
            x86.append(import_seconds([sys.executable], [function, host_layer, layer]))
            arm64.append(import_seconds(arm, [function, layer]))
        rows.append({"function": function.name, "x86_64_ms": round(statistics.median(x86) * 1000),
                     "arm64_qemu_ms": round(statistics.median(arm64) * 1000)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_arch")
    parser.add_argument("build", type=Path, nargs="?", default=Path(".aws-sam/build"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    rows = measure(args.build, args.runs)
    print(f"{'function':<22} {'x86_64 (native)':>16} {'arm64 (qemu-user)':>18} {'ratio':>6}")
    for row in rows:
        ratio = row["arm64_qemu_ms"] / row["x86_64_ms"]
        print(f"{row['function']:<22} {row['x86_64_ms']:>13} ms {row['arm64_qemu_ms']:>15} ms {ratio:>5.1f}x")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
