"""`relaydesk tickets ...` as signed-in tenant users (an agent and an admin) against the local stack: every ticket
command goes through the tenant API over HTTPS with the user's ID token; the reply leaves with the agent's name from
the token and its uploaded attachment, lands in the requester's mailbox, and its delivery shows per recipient; a second
tenant's user is refused everything of the first, whose ticket stays untouched."""

from __future__ import annotations

import io
import json
import time

import boto3
import pytest
from relaydesk.accounts import system_address
from relaydesk.addresses import lifecycle
from relaydesk.cli import main
from relaydesk.cli import session as sessions
from relaydesk.cli.output import EXIT_NOT_FOUND, EXIT_OK, EXIT_RULE, EXIT_USAGE
from relaydesk.ids import new_id
from relaydesk.tickets.model import Comment, Ticket

from local.stack import LocalStack
from local.tenants import add_tenant, add_user

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
JANE = "jane@example.net"


def ticket_of(stores, account, subject: str) -> str:
    ticket = Ticket(ticket_id=new_id("T"), account_id=account.account_id, subject=subject, requester=JANE,
                    support_address=system_address(account.subdomain, stores.settings.mail_domain),
                    comments=[Comment(comment_id=new_id("C"), author=JANE, body="The printer shows E-52.",
                                      source_message_id=f"<{new_id('M')}@mail.example.net>")])
    stores.tickets.create_ticket(ticket)
    return ticket.ticket_id


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("cli-tenant-tickets")) as running:
        from relaydesk.wiring import aws_stores

        stores = aws_stores()
        cognito = boto3.client("cognito-idp")
        pool = running.env["RELAYDESK_USER_POOL_ID"]
        acme, running.admin = add_tenant(stores, cognito, pool, "acme", "Acme Corp", domain="acme.test")
        running.agent = add_user(cognito, pool, acme.account_id, "bob@acme.test", "agent", name="Bob Agent")
        add_user(cognito, pool, acme.account_id, "ann@acme.test", "agent", name="Ann Agent")
        globex, running.globex_admin = add_tenant(stores, cognito, pool, "globex", "Globex Industries",
                                                  domain="globex.test")
        add_user(cognito, pool, globex.account_id, "gus@globex.test", "agent")
        lifecycle.add_forwarding_address(stores, acme.account_id, "help@acme.test", "Acme Help")
        running.acme, running.globex, running.stores = acme, globex, stores
        yield running


def printed(text: str) -> str:
    """What the CLI printed, without the JSON log and metric lines the stack's functions (in this process) write."""
    return "\n".join(line for line in text.splitlines() if not line.startswith(('{"_aws"', '{"level"')))


@pytest.fixture
def cli(stack, monkeypatch, capsys):
    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exit:  # argparse refused the command line
            code = int(exit.code or 0)
        out, err = capsys.readouterr()
        return code, printed(out), printed(err)

    yield run
    sessions.forget()


def login(cli, user) -> None:
    code, _, err = cli("login", "--username", user.username, "--password-stdin", stdin=user.password + "\n")
    assert code == EXIT_OK, err


def test_an_agent_lists_shows_and_replies_as_itself_and_the_mail_shows_delivered(stack, cli, tmp_path):
    ticket = ticket_of(stack.stores, stack.acme, "Printer jammed")
    ticket_of(stack.stores, stack.globex, "Globex printer")
    quote = tmp_path / "quote.pdf"
    quote.write_bytes(b"%PDF-1.7 a quote")
    login(cli, stack.agent)

    code, out, _ = cli("--json", "tickets", "list")
    assert code == EXIT_OK and [t["subject"] for t in json.loads(out)] == ["Printer jammed"]
    code, out, err = cli("--json", "tickets", "reply", ticket, "--attach", str(quote), stdin="A technician comes.\n")
    assert code == EXIT_OK, err
    posted = json.loads(out)
    assert f"as bob@acme.test (agent of account {stack.acme.account_id})" in err and "uploaded quote.pdf" in err

    mail = stack.mailboxes.wait_for(JANE, lambda m: m.get("X-Relaydesk-Email-Id") == posted["notifications"][0],
                                    timeout=60).message()
    assert mail["From"].addresses[0].display_name.startswith("Bob Agent")
    assert [part.get_filename() for part in mail.iter_attachments()] == ["quote.pdf"]

    def delivered() -> dict:
        shown = json.loads(cli("--json", "tickets", "show", ticket)[1])
        return next(n for n in shown["notifications"] if n["notification_id"] == posted["notifications"][0])

    deadline = time.monotonic() + 30  # the relay records the outcome just after the mail is handed over
    while delivered()["recipients"][0]["status"] != "delivered" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [(r["recipient"], r["status"]) for r in delivered()["recipients"]] == [(JANE, "delivered")]
    code, out, _ = cli("tickets", "show", ticket)
    assert "Bob Agent  (reply)" in out and f"{JANE} delivered" in out and "attachment: quote.pdf" in out


@pytest.mark.parametrize("role", ["agent", "admin"])
def test_every_ticket_command_works_for_both_roles(stack, cli, role):
    ticket = ticket_of(stack.stores, stack.acme, f"Every command as {role}")
    login(cli, stack.agent if role == "agent" else stack.admin)

    steps = {
        "note": cli("--json", "tickets", "note", ticket, stdin="Internal: VIP customer."),
        "status": cli("--json", "tickets", "status", ticket, "pending"),
        "assign to": cli("--json", "tickets", "assign", ticket, "--to", "ann@acme.test"),
        "cc add": cli("--json", "tickets", "cc", ticket, "add", "carol@example.org", "dave@example.org"),
        "cc remove": cli("--json", "tickets", "cc", ticket, "remove", "dave@example.org"),
        "followers add": cli("--json", "tickets", "followers", ticket, "add", "ann@acme.test"),
        "followers remove": cli("--json", "tickets", "followers", ticket, "remove", "ann@acme.test"),
        "assign me": cli("--json", "tickets", "assign", ticket, "--me"),
    }

    assert {name: code for name, (code, _, _) in steps.items()} == dict.fromkeys(steps, EXIT_OK), steps
    assert json.loads(steps["note"][1])["public"] is False and json.loads(steps["note"][1])["notifications"] == []
    assert json.loads(steps["cc remove"][1])["ccs"] == "carol@example.org"
    me = stack.agent if role == "agent" else stack.admin
    shown = stack.stores.tickets.get_ticket(ticket)
    assert shown.status.value == "pending" and shown.assignee.email == me.username
    assert shown.comments[-1].agent.email == me.username and not shown.comments[-1].public
    assert cli("tickets", "assign", ticket, "--to", "gus@globex.test")[0] == EXIT_RULE  # another account's user
    assert cli("--json", "tickets", "assign", ticket, "--unassign")[0] == EXIT_OK


def test_a_retried_reply_with_its_request_id_writes_and_sends_nothing_twice(stack, cli):
    ticket = ticket_of(stack.stores, stack.acme, "Retried reply")
    login(cli, stack.agent)

    first = json.loads(cli("--json", "tickets", "reply", ticket, "--request-id", "retry-abcdef123", stdin="Hi")[1])
    again = json.loads(cli("--json", "tickets", "reply", ticket, "--request-id", "retry-abcdef123", stdin="Hi")[1])

    assert first["comment_id"] == again["comment_id"] and first["notifications"] == again["notifications"]
    assert len(stack.stores.tickets.get_ticket(ticket).comments) == 2


def test_the_text_never_comes_from_an_argument_and_the_author_never_from_a_flag(stack, cli):
    ticket = ticket_of(stack.stores, stack.acme, "No text in argv")
    login(cli, stack.agent)

    in_argv = cli("tickets", "reply", ticket, "Here is my answer")
    named = cli("tickets", "reply", ticket, "--agent-name", "IT Security", stdin="Hello")

    assert in_argv[0] == named[0] == EXIT_USAGE
    assert "write as yourself" in named[2]
    assert len(stack.stores.tickets.get_ticket(ticket).comments) == 1


def test_the_second_tenant_is_refused_every_ticket_command_on_the_first_and_changes_nothing(stack, cli):
    ticket = ticket_of(stack.stores, stack.acme, "Acme only")
    before = stack.stores.tickets.get_ticket(ticket)
    login(cli, stack.globex_admin)

    attempts = [cli("tickets", "show", ticket), cli("tickets", "reply", ticket, stdin="Pwned"),
                cli("tickets", "note", ticket, stdin="Pwned"), cli("tickets", "status", ticket, "solved"),
                cli("tickets", "assign", ticket, "--me"), cli("tickets", "cc", ticket, "add", "evil@example.org"),
                cli("tickets", "followers", ticket, "remove", "ann@acme.test")]
    named = cli("tickets", "list", "--account", stack.acme.account_id)

    assert [code for code, _, _ in attempts] == [EXIT_NOT_FOUND] * len(attempts)
    assert named[0] != EXIT_OK and "you are a user of account" in named[2]
    for _, out, err in (*attempts, named):
        assert "Acme only" not in out + err and JANE not in out + err
    assert stack.stores.tickets.get_ticket(ticket) == before
