"""Every comment moves its ticket's updated_at, also one that changes nothing else (so `tickets list` sorts a
ticket someone just wrote on to the top)."""

from __future__ import annotations

from tests.unit.inbound.conftest import RECEIVED_AT, SEEDED_TICKET, corpus, make_world


def test_a_private_reply_from_a_non_participant_still_moves_updated_at():
    from datetime import timedelta

    world = make_world()
    world.stores.tickets.tickets[SEEDED_TICKET].updated_at = RECEIVED_AT - timedelta(days=2)
    before = world.ticket(SEEDED_TICKET)

    world.deliver(corpus("reply_from_non_participant.eml"))

    after = world.ticket(SEEDED_TICKET)
    assert len(after.comments) == 2 and after.comments[-1].public is False and after.status is before.status
    assert after.updated_at == RECEIVED_AT
