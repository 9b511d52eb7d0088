"""Every store call of an inbound invocation can fail and any invocation can be killed: at each call in turn, before
and after its effect, the invocation is killed (or the store fails), then Lambda's retry runs clean. Whatever the
point, the mail ends exactly as a clean run ends it: one ticket (or one comment, one report), one first comment,
one notification record, one notification id queued, the ledger done. Counts are asserted, not assumed."""

from __future__ import annotations

import pytest
from relaydesk.inbound.service import process_inbound

from .conftest import SEEDED_TICKET, corpus, make_world, ses_record
from .faults import FaultPlan, Killed, StoreFailed, with_faults

CASES = {
    "new ticket with an attachment": ("apple_mail_pdf_postfix_forward.eml", "new_ticket"),
    "reply that adds a comment": ("reply_in_reply_to_google_forward.eml", "comment"),
    "manual forward, suspended": ("manual_forward_gmail.eml", "suspended"),
    "delivery report": ("dsn_exchange_ndr.eml", "dsn_recorded"),
}


def run(world, raw: bytes, plan: FaultPlan):
    world.stores.blobs.put("inbound/ses-fault-1", raw)
    stores, ports = with_faults(world, plan)
    return process_inbound(stores, ses_record("ses-fault-1"), ports=ports, on_verification=world.verify)


def outcome_of(world) -> dict:
    """What a user (and the relay) sees afterwards, without the ids a decision draws."""
    tickets = {t.ticket_id: t for t in world.stores.tickets.list_tickets(world.account.account_id)}
    seeded = tickets.pop(SEEDED_TICKET)
    [ledger] = world.ports.ledger.records.values()
    return {
        "new tickets": sorted((t.status.value, t.requester, t.subject, tuple(t.ccs), tuple(t.flags),
                               tuple((c.body, tuple(a.filename for a in c.attachments)) for c in t.comments),
                               len(t.notifications)) for t in tickets.values()),
        "seeded ticket": (seeded.status.value, tuple(seeded.ccs), tuple(seeded.flags),
                          tuple(c.body for c in seeded.comments),
                          tuple((n.status.value, len(n.reports)) for n in seeded.notifications)),
        "notification ids queued": len({n.notification_id for n in world.sent}),
        "attachments in the bucket": sorted(k.rsplit("/", 1)[-1] for k in world.stores.blobs.objects
                                            if k.startswith("attachments/")),
        "ledger done": ledger[1],
    }


def fault_points(file: str) -> list[str]:
    plan = FaultPlan()
    run(make_world(), corpus(file), plan)
    return plan.calls


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(("kind", "after"), [("kill", False), ("kill", True), ("fail", False), ("fail", True)])
def test_a_fault_at_any_store_call_then_the_retry_ends_as_a_clean_run(case, kind, after):
    file, expected = CASES[case]
    clean = make_world()
    assert run(clean, corpus(file), FaultPlan()).outcome.value == expected
    expected_state = outcome_of(clean)
    points = fault_points(file)
    assert len(points) >= 8  # the path really has that many steps to break

    for at, call in enumerate(points, start=1):
        world = make_world()
        with pytest.raises(Killed if kind == "kill" else StoreFailed):
            run(world, corpus(file), FaultPlan(at=at, kind=kind, after=after))
        retried = run(world, corpus(file), FaultPlan())  # Lambda's retry (or `relaydesk inbound replay`)

        assert retried.outcome.value == expected, f"{kind} {'after' if after else 'before'} #{at} {call}"
        assert outcome_of(world) == expected_state, f"{kind} {'after' if after else 'before'} #{at} {call}"


def test_a_retry_after_the_ledger_is_done_reads_nothing_and_writes_nothing(world):
    plan = FaultPlan()
    run(world, corpus("apple_mail_pdf_postfix_forward.eml"), FaultPlan())
    run(world, corpus("apple_mail_pdf_postfix_forward.eml"), plan)
    assert plan.calls == ["ledger.get"]
