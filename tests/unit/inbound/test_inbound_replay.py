"""Replaying dead letters: each goes through the same domain entry, is deleted only once it succeeded."""

from __future__ import annotations

import json

from relaydesk.inbound.outcome import Outcome
from relaydesk.inbound.replay import replay_dead_letters, ses_record_of
from relaydesk.store.memory import MemoryInboundDeadLetters

from .conftest import corpus, ses_record


def on_failure_record(message_id: str) -> str:
    """What Lambda's on-failure destination puts on the inbound DLQ after the retries ran out."""
    return json.dumps({"version": "1.0", "requestContext": {"condition": "RetriesExhausted"},
                       "requestPayload": {"Records": [ses_record(message_id)]},
                       "responseContext": {"functionError": "Unhandled"}})


def test_replay_all_processes_every_dead_letter_and_leaves_the_failures(world):
    world.stores.blobs.put("inbound/dead0001", corpus("outlook_new_request_m365_forward.eml"))
    world.stores.blobs.put("inbound/dead0002", corpus("manual_forward_gmail.eml"))
    dead = MemoryInboundDeadLetters([on_failure_record("dead0001"), on_failure_record("dead0002"),
                              on_failure_record("dead0003"), "not json"])  # dead0003: no raw mail (yet)

    done = replay_dead_letters(world.stores, world.ports, dead, on_verification=world.verify)

    outcomes = {d.ses_message_id: (d.result.outcome if d.result else d.error) for d in done}
    assert outcomes["dead0001"] is Outcome.NEW_TICKET
    assert outcomes["dead0002"] is Outcome.SUSPENDED
    assert "NotFoundError" in outcomes["dead0003"]
    assert outcomes[""] == "not an SES event; left in the queue"
    assert sorted(dead.messages.values()) == sorted([on_failure_record("dead0003"), "not json"])


def test_replaying_a_message_that_already_made_its_ticket_makes_no_second_one(world):
    first = world.deliver(corpus("outlook_new_request_m365_forward.eml"), ses_message_id="dead0004")
    dead = MemoryInboundDeadLetters([on_failure_record("dead0004")])

    [done] = replay_dead_letters(world.stores, world.ports, dead, on_verification=world.verify)

    assert (done.result.ticket_id, done.result.replayed) == (first.ticket_id, True)
    assert len(world.stores.tickets.list_tickets(world.account.account_id)) == 2
    assert dead.messages == {}


def test_replay_of_one_message_leaves_the_others_in_the_queue(world):
    world.stores.blobs.put("inbound/dead0005", corpus("html_only.eml"))
    dead = MemoryInboundDeadLetters([on_failure_record("dead0006"), on_failure_record("dead0005")])

    done = replay_dead_letters(world.stores, world.ports, dead, ses_message_id="dead0005",
                               on_verification=world.verify)

    assert [(d.ses_message_id, d.result.outcome) for d in done] == [("dead0005", Outcome.NEW_TICKET)]
    assert list(dead.messages.values()) == [on_failure_record("dead0006")]
    assert dead.released == ["h1"]  # visible again at once for the next replay


def test_the_raw_ses_event_is_accepted_as_a_dead_letter_too():
    assert ses_record_of(json.dumps({"Records": [ses_record("x1")]}))["ses"]["mail"]["messageId"] == "x1"
    assert ses_record_of("[]") is None


def test_a_replay_from_s3_alone_takes_recipient_and_verdicts_from_what_ses_wrote_into_the_mail(world):
    from relaydesk.inbound.replay import replay_from_s3

    ses_headers = (b"Return-Path: <jane@example.net>\r\n"
                   b"Received: from mx.acme.test by inbound-smtp.us-east-1.amazonaws.com with SMTP id s3only01 "
                   b"for support@acme.mail.relaydesk.test; Tue, 24 Nov 2026 09:15:02 +0000\r\n"
                   b"X-SES-Spam-Verdict: FAIL\r\nX-SES-Virus-Verdict: PASS\r\n"
                   b"Authentication-Results: amazonses.com; spf=pass; dkim=pass; dmarc=pass\r\n")
    world.stores.blobs.put("inbound/s3only01", ses_headers + corpus("outlook_new_request_m365_forward.eml"))

    result = replay_from_s3(world.stores, world.ports, "s3only01", on_verification=world.verify)

    assert (result.outcome, result.reason) == (Outcome.SUSPENDED, "spam")
