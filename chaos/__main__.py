"""`make chaos`: every fault class against the real handlers; a table per class; exit 1 on any loss, any duplicate
outside the documented window, any DLQ entry without its reason.

    python -m chaos [--seed N] [--scale X] [--classes a,b] [--relay-workers N] [--inbound-workers N]

`--scale` multiplies each class's counts (1.0: 18 classes x 50 notifications + 30 inbound mails, each mail making
one acknowledgement: about 1,450 notifications and 540 mails). The seeds make the faults each class draws
repeatable; which worker gets which batch still depends on timing.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from chaos.classes import classes
from chaos.report import render_class, render_summary
from chaos.runner import Run
from chaos.world import Timing

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = ROOT / "local" / ".state" / "chaos"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--classes", default="", help="comma-separated class names (default: all)")
    parser.add_argument("--lanes", type=int, default=3, help="classes run at the same time, each on its own queue")
    parser.add_argument("--relay-workers", type=int, default=2, help="relay containers per lane")
    parser.add_argument("--inbound-workers", type=int, default=1, help="inbound containers per lane")
    parser.add_argument("--state-dir", type=Path, default=STATE_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    chosen = [c for c in classes() if not args.classes or c.name in args.classes.split(",")]
    if not chosen:
        parser.error(f"no such class; known: {', '.join(c.name for c in classes())}")
    shutil.rmtree(args.state_dir, ignore_errors=True)
    args.state_dir.mkdir(parents=True)
    started = time.monotonic()
    print(f"chaos: seed {args.seed}, scale {args.scale}, {len(chosen)} classes on {args.lanes} lanes "
          f"({args.relay_workers} relay + {args.inbound_workers} inbound workers each); logs in {args.state_dir}",
          flush=True)
    with Run(state_dir=args.state_dir, timing=Timing(), lanes=min(args.lanes, len(chosen)),
             relay_workers=args.relay_workers, inbound_workers=args.inbound_workers) as run:
        reports = run.run_classes(chosen, args.seed, args.scale,
                                  on_report=lambda report: print(render_class(report), flush=True))
        redrive = run.redrive_check(reports)
        print(redrive.render(), flush=True)
    summary = render_summary(reports, time.monotonic() - started)
    print(summary, flush=True)
    (args.state_dir / "report.json").write_text(json.dumps(
        {"seed": args.seed, "scale": args.scale, "classes": [r.as_dict() for r in reports],
         "redrive": redrive.as_dict()}, indent=2))
    ok = all(r.ok for r in reports) and redrive.ok
    print("chaos: PASS" if ok else "chaos: FAIL", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
