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


def test_the_full_view_is_the_raw_mail_whole_even_when_the_comment_was_cut(stack, aws_cli, tmp_path):
    raw = forwarded(f"From: {folded('Jane ' * 60_000)} <jane@example.net>", "Logs:\r\n" + "line\r\n" * 100_000)
    result = run(stack, raw, "ses0000000000000101")
    comment = stack.tickets.get_ticket(result["ticket_id"]).comments[0]
    assert len(comment.body) < len(raw) and "message.txt" in [a.filename for a in comment.attachments]

    code, _, err = aws_cli("inbound", "original", result["ticket_id"], "--output", str(tmp_path / "original.eml"))

    assert code == 0 and "inbound/ses0000000000000101" in err
    assert (tmp_path / "original.eml").read_bytes() == raw


@pytest.mark.parametrize("call", ["ledger.claim", "tickets.create_ticket", "queue.send"])
def test_a_kill_after_a_step_then_the_retry_leaves_one_ticket_one_comment_one_notification(stack, call):
    """The fault injection of tests/unit/inbound/test_inbound_faults.py, against DynamoDB's transaction (moto)."""
    import dataclasses

    import boto3
    from relaydesk.inbound.service import process_inbound
    from relaydesk.store.inbound_dynamodb import aws_inbound_ports

    from tests.unit.inbound.conftest import ses_record
    from tests.unit.inbound.faults import FaultPlan, Faulty, Killed

    ports = aws_inbound_ports()

    def deliver(ses_id: str, plan: FaultPlan):
        stack.blobs.put(f"inbound/{ses_id}", forwarded("From: Jane <jane@example.net>").replace(
            b"hostile-1", ses_id.encode()))
        stores = dataclasses.replace(stack, tickets=Faulty("tickets", stack.tickets, plan),
                                     queue=Faulty("queue", stack.queue, plan))
        faulty_ports = dataclasses.replace(ports, ledger=Faulty("ledger", ports.ledger, plan))
        return process_inbound(stores, ses_record(ses_id), ports=faulty_ports)

    numbered = FaultPlan()
    deliver("ses0000000000000102", numbered)  # a clean run numbers the calls
    with pytest.raises(Killed):
        deliver("ses0000000000000103", FaultPlan(at=numbered.calls.index(call) + 1, after=True))
    retried = deliver("ses0000000000000103", FaultPlan())  # Lambda's retry

    ticket = stack.tickets.get_ticket(retried.ticket_id)
    assert (len(ticket.comments), len(ticket.notifications)) == (1, 1)
    made = [t for t in stack.tickets.list_tickets("A01M8000000000000AC")
            if t.comments[0].ses_message_id == "ses0000000000000103"]
    assert len(made) == 1
    sqs = boto3.client("sqs")
    bodies = [m["Body"] for m in sqs.receive_message(QueueUrl=stack.settings.notifications_queue_url,
                                                     MaxNumberOfMessages=10).get("Messages", [])]
    queued = [b for b in bodies if retried.ticket_id in b]
    assert queued and all(retried.notification_id in b for b in queued)  # the same notification id, however often


def test_the_inbound_policy_allows_every_tickets_table_call_inbound_makes(stack):
    """A new ticket (one transaction) and a reply (attribute updates) through the adapter: every DynamoDB action
    they need on the tickets table, transaction items counted by their own action, is granted to the function."""
    import boto3

    from local.aws_resources import load_template

    from .test_inbound_flood_counter import TRANSACT_ITEM_ACTIONS
    from .test_inbound_handler import ROOT

    called: set[str] = set()
    table = stack.settings.tickets_table

    def record(params, model, **_):
        if model.name == "TransactWriteItems":
            called.update(TRANSACT_ITEM_ACTIONS[op] for item in params["TransactItems"] for op, body in item.items()
                          if body.get("TableName") == table)
        elif params.get("TableName") == table:
            called.add(f"dynamodb:{model.name}")

    client = boto3.resource("dynamodb").meta.client  # the session's clients share the event system of their kind
    clients = {stack.tickets._client, client}
    for each in clients:
        each.meta.events.register("provide-client-params.dynamodb.*", record)
    try:
        first = run(stack, forwarded("From: Jane <jane@example.net>\r\nCc: max@example.net"), "ses0000000000000104")
        reply = forwarded("From: Max <max@example.net>\r\nCc: ann@example.net\r\nIn-Reply-To: <hostile-1@example.net>")
        run(stack, reply.replace(b"Message-ID: <hostile-1@", b"Message-ID: <hostile-2@"), "ses0000000000000105")
    finally:
        for each in clients:
            each.meta.events.unregister("provide-client-params.dynamodb.*", record)

    assert stack.tickets.get_ticket(first["ticket_id"]).ccs == ["max@example.net", "ann@example.net"]
    policies = load_template(ROOT / "template.yaml")["Resources"]["InboundFunction"]["Properties"]["Policies"]
    granted = {action for policy in policies for statement in policy.get("Statement", [])
               if statement["Resource"] == {"Fn::GetAtt": ["TicketsTable", "Arn"]}
               for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    assert {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= called <= granted
