"""The tables `make chaos` prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

NOTIFICATION_COLUMNS = ("sent", "once", "twice (window)", "twice (other)", "lost", "DLQ + reason",
                        "DLQ, no reason", "failed, recorded", "behind inbound DLQ")
INBOUND_COLUMNS = ("sent", "once", "twice", "lost", "DLQ + reason", "DLQ, no reason")


def _row(label: str, values: list[Any], widths: list[int]) -> str:
    return f"  {label:<15}" + "".join(f"{v!s:>{w + 2}}" for v, w in zip(values, widths, strict=True))


def render_class(report: Any) -> str:
    n, i = report.notifications, report.inbound
    widths = [max(len(c), 5) for c in NOTIFICATION_COLUMNS]
    lines = [f"\n{report.name}  (seed {report.seed}, {report.seconds:.1f} s, {report.invocations} relay "
             f"invocations, {report.killed} killed, {report.timeouts} timed out, {report.duplicate_batches} "
             f"batches twice{', ' + report_injected(report) if report.injected else ''})",
             _row("", list(NOTIFICATION_COLUMNS), widths),
             _row("notifications", [n.sent, n.once, n.twice_window, n.twice_other, n.lost, n.dlq_reason,
                                    n.dlq_no_reason, n.failed, n.behind_inbound_dlq], widths),
             _row("inbound mails", [i.sent, i.once, i.twice, i.lost, i.dlq_reason, i.dlq_no_reason, "", "", ""],
                  widths)]
    if n.dlq_delivered:
        lines.append(f"  delivered and in the DLQ: {n.dlq_delivered} (unrecognised: {n.dlq_delivered_unrecognised})")
    if report.unsettled:
        lines.append(f"  NOT SETTLED: {report.unsettled} message(s) still queued at the limit")
    for problem in [*n.problems, *i.problems][:20]:
        lines.append(f"  ! {problem}")
    for note in [*n.notes, *i.notes][:10]:
        lines.append(f"  - {note}")
    lines.append("  ok" if report.ok else "  FAILED")
    return "\n".join(lines)


def report_injected(report: Any) -> str:
    return "injected: " + ", ".join(f"{key} {value}" for key, value in sorted(report.injected.items()))


def render_summary(reports: list[Any], seconds: float) -> str:
    total = {column: 0 for column in ("sent", "once", "twice_window", "twice_other", "lost", "dlq_reason",
                                      "dlq_no_reason")}
    mails = {column: 0 for column in ("sent", "once", "twice", "lost", "dlq_reason", "dlq_no_reason")}
    for report in reports:
        for column in total:
            total[column] += getattr(report.notifications, column)
        for column in mails:
            mails[column] += getattr(report.inbound, column)
    return (f"\nall classes ({seconds:.0f} s): notifications {total['sent']} sent, {total['once']} once, "
            f"{total['twice_window']} twice in the documented window, {total['twice_other']} twice otherwise, "
            f"{total['lost']} lost, {total['dlq_reason']} in the DLQ with their reason, {total['dlq_no_reason']} "
            f"without; inbound mails {mails['sent']} sent, {mails['once']} once, {mails['twice']} twice, "
            f"{mails['lost']} lost, {mails['dlq_reason']} in the inbound DLQ with their error")


def as_dict(report: Any) -> dict:
    return {"name": report.name, "seed": report.seed, "seconds": round(report.seconds, 1),
            "invocations": report.invocations, "killed": report.killed, "timeouts": report.timeouts,
            "duplicate_batches": report.duplicate_batches, "injected": report.injected,
            "notifications": {k: v for k, v in asdict(report.notifications).items() if k not in ("problems", "notes")},
            "inbound": {k: v for k, v in asdict(report.inbound).items() if k not in ("problems", "notes")},
            "ok": report.ok}
