"""Hostile mail against the real adapters (moto, built from template.yaml): fields a sender controls, folded into
short lines so any MTA passes them, must never push an item past DynamoDB's limits, and a ticket never exists
without its first comment."""

from __future__ import annotations

import pytest

from .test_inbound_handler import Context, load_handler, ses_event


@pytest.fixture
def stack(aws_stack):
    from relaydesk.accounts import Account
    from relaydesk.addresses.model import SupportAddress

    aws_stack.directory.create_account(Account(account_id="A01M8000000000000AC", subdomain="acme", name="Acme"))
    aws_stack.directory.create_address(SupportAddress(email="support@acme.test", account_id="A01M8000000000000AC",
                                                      is_default=True))
    return aws_stack


def folded(text: str, width: int = 70) -> str:
    """A long value folded into short lines, as a sender's MTA would pass it."""
    return "\r\n ".join(text[i:i + width] for i in range(0, len(text), width))


def forwarded(headers: str, body: str = "Please help.") -> bytes:
    return ("X-MS-Exchange-Organization-AutoForwarded: true\r\nX-MS-Exchange-ForwardingLoop: support@acme.test\r\n"
            f"{headers}\r\nTo: support@acme.test\r\nSubject: Help\r\nMessage-ID: <hostile-1@example.net>\r\n"
            f"MIME-Version: 1.0\r\n\r\n{body}\r\n").encode()


def run(stack, raw: bytes, ses_id: str = "ses0000000000000100") -> dict:
    stack.blobs.put(f"inbound/{ses_id}", raw)
    [result] = load_handler()(ses_event(ses_id), Context())["results"]
    return result


def test_a_folded_500_kb_display_name_makes_a_ticket_with_the_name_cut(stack):
    name = "Jane " + "Very-Long-Name " * 35_000
    result = run(stack, forwarded(f"From: {folded(name)} <jane@example.net>"))
    assert result["outcome"] == "new_ticket"
    ticket = stack.tickets.get_ticket(result["ticket_id"])
    assert ticket.requester == "jane@example.net"
    assert len(ticket.comments) == 1


def test_long_content_ids_never_leave_a_ticket_without_its_comment(stack):
    parts = "".join(f"--b\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
                    f"Content-ID: <{folded('x' * 6000 + str(i))}>\r\nContent-Disposition: inline\r\n\r\niVBORw0K\r\n"
                    for i in range(90))
    body = f"--b\r\nContent-Type: text/plain\r\n\r\nSee the images.\r\n{parts}--b--"
    raw = forwarded("From: Jane <jane@example.net>\r\nContent-Type: multipart/related; boundary=b", body)
    result = run(stack, raw)
    assert result["outcome"] == "new_ticket"
    ticket = stack.tickets.get_ticket(result["ticket_id"])
    assert len(ticket.comments) == 1 and len(ticket.comments[0].attachments) == 90


def test_a_3_kb_address_is_refused_and_recorded_instead_of_crashing_every_retry(stack):
    result = run(stack, forwarded(f"From: Jane <{'j' * 3000}@example.net>"))
    assert (result["outcome"], result["reason"]) == ("dropped", "no_sender")
