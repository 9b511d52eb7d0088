"""What each mail of the project's corpus (tests/data/inbound and events/mail) turned into, in every detail a user
sees, pinned in tests/data/inbound/pinned_outcomes.json. The pin was written by the code before inbound was bounded
by construction, so a change to inbound that alters what a real mail becomes shows up as a diff of that file.

Regenerate (only for a change that means to alter a corpus mail's result, and say so in the commit):
    .venv/bin/python -m tests.unit.inbound.pinned --write
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

from .conftest import CORPUS, SEEDED_TICKET, make_world

ROOT = Path(__file__).resolve().parents[3]
SAMPLE_MAIL = ROOT / "events" / "mail"
PINNED = CORPUS / "pinned_outcomes.json"


def corpus_cases() -> list[tuple[str, bytes, dict]]:
    """(case name, raw mail, SES verdicts): every case of expected.json, then every sample mail of events/mail."""
    cases = []
    for case in json.loads((CORPUS / "expected.json").read_text())["cases"]:
        receipt = dict(case.get("receipt", {}))
        if "recipients" in case:
            receipt["recipients"] = case["recipients"]
        name = case["file"] + (f" [{case['case']}]" if "case" in case else "")
        cases.append((name, (CORPUS / case["file"]).read_bytes(), receipt))
    for path in sorted(SAMPLE_MAIL.glob("*.eml")):
        cases.append((f"events/mail/{path.name}", path.read_bytes(), {}))
    return cases


def _digest(text: str | None) -> str | None:
    return None if text is None else hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def fingerprint(raw: bytes, receipt: dict) -> dict:
    """Everything the mail became in a fresh world, with the random ids left out."""
    world = make_world()
    result = world.deliver(raw, **receipt)
    seen: dict = {"outcome": result.outcome.value, "reason": result.reason}
    if result.ticket_id and result.outcome.value in ("new_ticket", "suspended", "comment"):
        ticket = world.ticket(result.ticket_id)
        seen["ticket"] = "seeded" if ticket.ticket_id == SEEDED_TICKET else "new"
        seen |= {"requester": ticket.requester, "subject": ticket.subject, "support_address": ticket.support_address,
                 "ccs": ticket.ccs, "flags": ticket.flags, "status": ticket.status.value,
                 "suspension_reason": ticket.suspension_reason.value if ticket.suspension_reason else None}
        comment = next(c for c in ticket.comments if c.comment_id == result.comment_id)
        seen["comment"] = {
            "author": comment.author, "public": comment.public, "source_message_id": comment.source_message_id,
            "body_sha256": _digest(comment.body), "body_chars": len(comment.body),
            "html_sha256": _digest(comment.html_body),
            "attachments": [[a.filename, a.content_type, a.size, a.inline, a.content_id] for a in comment.attachments]}
    seen["notifications"] = [{"to": n.recipients, "cc": n.cc, "subject": n.subject.split("] ", 1)[-1],
                              "kind": n.kind.value} for n in world.sent]
    if result.outcome.value == "dsn_recorded":
        record = world.stores.tickets.get_notification(SEEDED_TICKET, result.notification_id)
        seen["dsn"] = {"notification": result.notification_id, "status": record.status.value,
                       "reports": [{k: v for k, v in r.items() if k != "ses_message_id"} for r in record.reports]}
    if result.outcome.value == "verification":
        call = world.verifications[-1]
        seen["verification"] = {"token": call["token"], "hops": call["forwarding_hops"], "verified": result.verified}
    return seen


def current() -> dict[str, dict]:
    return {name: fingerprint(raw, receipt) for name, raw, receipt in corpus_cases()}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.unit.inbound.pinned --write")
    PINNED.write_text(json.dumps(current(), indent=1, ensure_ascii=False, sort_keys=True) + "\n")
    print(f"wrote {PINNED.relative_to(ROOT)}")
