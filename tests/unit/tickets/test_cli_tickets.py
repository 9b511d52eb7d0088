"""`relaydesk tickets ...` as an agent types it: the rules of the domain, the text from stdin or a file, exit codes
a script can rely on."""

from __future__ import annotations

import io
import json

import pytest
from relaydesk.cli import context, main
from relaydesk.cli.output import EXIT_NOT_FOUND, EXIT_RULE, EXIT_USAGE
from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, TicketStatus

from tests.unit.tickets.conftest import ACCOUNT, TICKET, sent

AGENT = ("--agent-name", "Bob Agent", "--agent-email", "bob@acme.test")


@pytest.fixture
def cli(acme, monkeypatch, capsys):
    monkeypatch.setattr(context, "load_stores", lambda args: acme)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    run.stores = acme
    return run


def test_reply_reads_the_text_from_stdin_and_mails_the_requester(cli):
    code, out, _ = cli("--json", "tickets", "reply", TICKET, "--account", ACCOUNT, *AGENT,
                       stdin="Hi Jane,\nwe replaced the fuser.\n")
    assert code == 0
    result = json.loads(out)
    assert result["public"] is True and result["status"] == "open" and len(result["notifications"]) == 1
    [notice] = sent(cli.stores)
    assert notice.text_body.startswith("Hi Jane,\nwe replaced the fuser.") and notice.agent_name == "Bob Agent"


def test_reply_reads_a_file_and_can_submit_as_solved_without_a_second_mail(cli, tmp_path):
    body = tmp_path / "answer.txt"
    body.write_text("Fixed, closing.\n")
    code, out, _ = cli("tickets", "reply", TICKET, "--account", ACCOUNT, *AGENT, "--body-file", str(body),
                       "--status", "solved")
    assert code == 0 and "solved" in out
    assert [n.kind.value for n in sent(cli.stores)] == ["agent_reply"]


def test_the_reply_text_is_never_a_command_line_argument(cli):
    code, _, err = cli("tickets", "reply", TICKET, "--account", ACCOUNT, *AGENT, "Hi Jane")
    assert code == EXIT_USAGE and "unrecognized arguments" in err
    assert sent(cli.stores) == []


def test_a_note_is_recorded_and_mails_nobody(cli):
    code, out, _ = cli("tickets", "note", TICKET, "--account", ACCOUNT, *AGENT, stdin="Old firmware.")
    assert code == 0 and "False" in out and sent(cli.stores) == []
    code, out, _ = cli("tickets", "show", TICKET, "--account", ACCOUNT)
    assert "(internal note)" in out and "Old firmware." in out  # bodies show without --json


def test_an_empty_reply_or_no_agent_is_a_rule_error(cli, monkeypatch):
    for name in ("RELAYDESK_AGENT_NAME", "RELAYDESK_AGENT_EMAIL", "RELAYDESK_AGENT_ID"):
        monkeypatch.delenv(name, raising=False)
    assert cli("tickets", "reply", TICKET, "--account", ACCOUNT, *AGENT, stdin="  \n")[0] == EXIT_RULE
    code, _, err = cli("tickets", "reply", TICKET, "--account", ACCOUNT, stdin="hi")
    assert code == EXIT_RULE and "--agent-name" in err


def test_status_assign_cc_and_followers(cli):
    assert cli("tickets", "status", TICKET, "pending", "--account", ACCOUNT, *AGENT)[0] == 0
    assert cli("tickets", "assign", TICKET, "--account", ACCOUNT, *AGENT)[0] == 0
    assert cli("tickets", "cc", TICKET, "add", "dave@example.org", "--account", ACCOUNT)[0] == 0
    assert cli("tickets", "followers", TICKET, "add", "ann@acme.test", "--account", ACCOUNT)[0] == 0
    ticket = cli.stores.tickets.get_ticket(TICKET)
    assert ticket.status is TicketStatus.PENDING and ticket.assignee.name == "Bob Agent"
    assert "dave@example.org" in ticket.ccs and ticket.followers == ["ann@acme.test"]
    code, _, err = cli("tickets", "followers", TICKET, "add", "dave@example.org", "--account", ACCOUNT)
    assert code == EXIT_RULE and "agent" in err
    assert cli("tickets", "status", TICKET, "new", "--account", ACCOUNT, *AGENT)[0] == EXIT_USAGE


def test_list_refuses_an_unknown_status_and_pages_with_a_cursor(cli):
    code, _, err = cli("tickets", "list", "--account", ACCOUNT, "--status", "bogus")
    assert code == EXIT_USAGE and "invalid choice" in err
    code, out, _ = cli("--json", "tickets", "list", "--account", ACCOUNT, "--status", "new")
    assert code == 0 and [t["ticket_id"] for t in json.loads(out)] == [TICKET]
    assert cli("tickets", "list", "--account", ACCOUNT, "--cursor", "nonsense")[0] != 0


def test_show_prints_the_servers_reply_once(cli):
    cli.stores.tickets.append_attempt(TICKET, cli.stores.tickets.get_ticket(TICKET).notifications[0],
                                      DeliveryAttempt(status=DeliveryStatus.FAILED, route="connector:smtp.acme.test",
                                                      smtp_code=550, enhanced_status="5.1.1",
                                                      reply="550 5.1.1 <jane@example.net>: user unknown"))
    code, out, _ = cli("tickets", "show", TICKET)
    assert code == 0 and out.count("550 5.1.1") == 1


def test_a_comment_moves_the_tickets_updated_at(cli):
    before = cli.stores.tickets.get_ticket(TICKET).updated_at
    cli("tickets", "note", TICKET, "--account", ACCOUNT, *AGENT, stdin="x")
    assert cli.stores.tickets.get_ticket(TICKET).updated_at > before


def test_another_accounts_ticket_is_not_found(cli):
    assert cli("tickets", "show", TICKET, "--account", "A99NOPE")[0] == EXIT_NOT_FOUND
    code, _, _ = cli("tickets", "reply", TICKET, "--account", "A99NOPE", *AGENT, stdin="hi")
    assert code == EXIT_NOT_FOUND and sent(cli.stores) == []


def test_the_solved_notification_and_the_agents_from_name_are_account_settings(cli):
    code, out, _ = cli("--json", "accounts", "settings", ACCOUNT, "--notify-solved", "off",
                       "--agent-from-name", "{agent} at {support}")
    settings = json.loads(out)["settings"]
    assert code == 0 and settings["notify_requester_on_solved"] is False
    assert settings["agent_from_name"] == "{agent} at {support}"
    code, _, err = cli("accounts", "settings", ACCOUNT, "--agent-from-name", "{agent.__init__}")
    assert code == EXIT_RULE and "placeholders" in err and "validation error" not in err
    cli("tickets", "status", TICKET, "solved", "--account", ACCOUNT, *AGENT)
    assert sent(cli.stores) == []
