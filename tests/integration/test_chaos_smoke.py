"""A few seconds of `make chaos` in `make test`: the real handlers in worker processes, the SQS event source and
SES receiving emulated, two fault classes (the same batch to two handlers at once; the smarthost dropping the
connection after the final dot), then `dlq redrive` and `inbound replay`, and every notification and mail counted
again. The full run is `make chaos`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_short_chaos_run_loses_nothing_and_sends_nothing_twice_outside_the_window(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "chaos", "--scale", "0.1", "--lanes", "1",
         "--classes", "same_batch_twice,smtp_drop_after_data", "--state-dir", str(tmp_path / "chaos")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert "chaos: PASS" in run.stdout
    report = json.loads((tmp_path / "chaos" / "report.json").read_text())
    by_name = {c["name"]: c for c in report["classes"]}
    assert set(by_name) == {"same_batch_twice", "smtp_drop_after_data"}
    for fault_class in by_name.values():
        counts = fault_class["notifications"]
        assert counts["sent"] >= 8 and counts["lost"] == 0 and counts["twice_other"] == 0
        assert counts["once"] + counts["twice_window"] + counts["dlq_reason"] == counts["sent"]
        assert fault_class["inbound"]["once"] == fault_class["inbound"]["sent"] >= 3
        assert fault_class["invocations"] >= 2
    redrive = report["redrive"]
    assert redrive["ok"] and redrive["delivered_before"] >= 1  # the planted one, not resent
    final = redrive["final"]  # after the redrives, as the agents see it: every notification went, nothing twice
    assert final["sent"] == sum(c["notifications"]["sent"] for c in by_name.values())
    assert final["lost"] == final["twice_other"] == final["dlq_reason"] == final["behind_inbound_dlq"] == 0
    assert final["once"] + final["twice_window"] + final["failed"] == final["sent"]
    assert redrive["final_inbound"]["once"] == redrive["final_inbound"]["sent"]
