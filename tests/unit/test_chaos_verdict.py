"""`make chaos`'s verdict after the operator's redrives: it passes only when, counted again, every notification went
once (or twice in the documented window) or failed with its reason, and every mail made exactly one comment."""

from __future__ import annotations

from chaos.ledger import InboundTally, Tally
from chaos.runner import RedriveCheck


def _settled(**notifications: int) -> RedriveCheck:
    counts = {"sent": 10, "once": 8, "twice_window": 1, "failed": 1, **notifications}
    return RedriveCheck(final=Tally(**counts), final_inbound=InboundTally(sent=4, once=4))


def test_everything_delivered_or_failed_with_its_reason_passes():
    check = _settled()
    assert check.ok
    assert "counted again: notifications 10, 8 once, 1 twice in the window" in check.render()


def test_an_acknowledgement_still_behind_the_inbound_dlq_fails_the_run():
    assert not _settled(once=7, behind_inbound_dlq=1).ok


def test_a_notification_still_in_the_dlq_or_unaccounted_for_fails_the_run():
    assert not _settled(once=7, dlq_reason=1).ok
    assert not _settled(once=7).ok  # 9 of 10 accounted for: one is nowhere


def test_a_mail_left_in_the_inbound_dlq_or_without_its_comment_fails_the_run():
    assert not RedriveCheck(final=Tally(), final_inbound=InboundTally(sent=2, once=1, dlq_reason=1)).ok
    assert not RedriveCheck(final=Tally(), left_in_inbound_dlq=1).ok
