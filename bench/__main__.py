"""`python -m bench [--quick] [--only NAME ...] [--no-write]`: runs every `bench/bench_*.py` and writes the report.

A benchmark module registers itself by defining `NAME`, `TITLE` and `run(config: bench.harness.Config)`, which
returns a `bench.harness.Result` (rendered here: table, ratios, machine) or the markdown of its section as a str
(written as is, with the machine line added). A `bench_*.py` without them is skipped with a note.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

from bench.harness import REPORT, Config, machine, machine_line, print_summary, render, write_section

PACKAGE = Path(__file__).resolve().parent


def discover(only: Sequence[str] = ()) -> dict[str, ModuleType]:
    """The registry: every module `bench/bench_<name>.py` (NAME is the file's suffix), in file name order; with
    `only`, just those modules are imported, so one benchmark runs even while another is being edited."""
    found: dict[str, ModuleType] = {}
    wanted = {f"bench_{name}" for name in only}
    for info in sorted(pkgutil.iter_modules([str(PACKAGE)]), key=lambda i: i.name):
        if info.name.startswith("bench_") and (not wanted or info.name in wanted):
            module = importlib.import_module(f"bench.{info.name}")
            if not (hasattr(module, "NAME") and callable(getattr(module, "run", None))):
                print(f"bench: {info.name} defines no NAME and run(config): skipped", file=sys.stderr)
                continue
            found[module.NAME] = module
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tiny N per benchmark (smoke test); writes nothing")
    parser.add_argument("--only", action="append", default=[], metavar="NAME", help="run only these benchmarks")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    parser.add_argument("--output", type=Path, default=REPORT, help="the report to write (default docs/BENCHMARKS.md)")
    args = parser.parse_args(argv)

    registry = discover(args.only)
    unknown = [name for name in args.only if name not in registry]
    if unknown:
        known = [i.name.removeprefix("bench_") for i in pkgutil.iter_modules([str(PACKAGE)])
                 if i.name.startswith("bench_")]
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    config = Config(quick=args.quick)
    host = machine()
    for name, module in registry.items():
        if args.only and name not in args.only:
            continue
        result = module.run(config)
        command = f"make bench  # or: python -m bench --only {name}"
        if isinstance(result, str):
            print(result)
            section = result.rstrip() + "\n\n" + machine_line(host, command) + "\n"
        else:
            print_summary(result)
            section = render(result, host, command=command)
        if not (args.quick or args.no_write):
            write_section(name, section, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
