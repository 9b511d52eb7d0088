"""The admin CLI against in-memory stores: what an admin types, what it prints, and the exit code a script sees."""

from __future__ import annotations

import io
import json
import logging
from dataclasses import replace

import pytest
from relaydesk.addresses import lifecycle, verification
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.cli import context, main
from relaydesk.cli.output import EXIT_AUTH, EXIT_ERROR, EXIT_NOT_FOUND, EXIT_RULE, EXIT_USAGE, EXIT_VERIFY_TIMEOUT
from relaydesk.errors import AuthenticationFailedError
from relaydesk.markers import VERIFICATION_HEADER
from relaydesk.tickets.model import (
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    SuspensionReason,
    Ticket,
    TicketStatus,
)

PASSWORD = "Tr0ub4dor&3-very-secret"


@pytest.fixture
def cli(memory_stores, monkeypatch, capsys):
    """Runs `relaydesk ...` against the memory stores; returns (exit code, stdout, stderr)."""
    holder = {"stores": memory_stores}
    monkeypatch.setattr(context, "load_stores", lambda args: holder["stores"])

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exited:  # argparse refused the command line, as a shell would see it
            code = exited.code
        out, err = capsys.readouterr()
        return code, out, err

    run.stores = memory_stores
    run.holder = holder
    return run


@pytest.fixture
def live_check(monkeypatch):
    """A live check that reports each step as a real one would; `result['fail']` makes AUTH fail like Exchange."""
    result: dict = {"fail": False, "seen": []}

    def check(credentials, *, sender=None, on_step=None, **_):
        result["seen"].append(credentials)
        steps = [CheckStep(name=n, ok=True, detail=f"{n} fine") for n in ("dns", "tcp", "starttls", "certificate")]
        summary = fix = error = None
        if result["fail"]:
            steps.append(CheckStep(name="auth", ok=False, smtp_code=535, enhanced_status="5.7.139",
                                   detail="5.7.139 Authentication unsuccessful, SmtpClientAuthentication is "
                                          "disabled for the Tenant."))
            summary, fix = "SMTP AUTH is disabled for the tenant or for this mailbox", "Set-CASMailbox ..."
            error = AuthenticationFailedError("refused", smtp_code=535, server_reply="535 5.7.139 Authentication "
                                              "unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")
        else:
            steps.append(CheckStep(name="auth", ok=True, detail="235 ok"))
        for step in steps:
            if on_step:
                on_step(step)
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps, summary=summary, fix=fix, error=error)

    monkeypatch.setattr(lifecycle, "run_live_check", check)
    return result


@pytest.fixture
def account_id(cli):
    code, out, _ = cli("accounts", "create", "--subdomain", "acme", "--name", "Acme", "--json")
    assert code == 0
    return json.loads(out)["account_id"]


def connect(cli, account_id, *extra: str, email="support@acme.com"):
    return cli("addresses", "connect", email, "--account", account_id, "--preset", "microsoft365",
               "--username", "support@acme.com", "--password-stdin", *extra, stdin=PASSWORD + "\n")


def test_accounts_create_prints_the_system_address_as_json(cli):
    code, out, _ = cli("accounts", "create", "--subdomain", "globex", "--name", "Globex", "--kind", "production",
                       "--json")
    data = json.loads(out)
    assert code == 0
    assert data["system_address"] == "support@globex.mail.relaydesk.test"
    assert data["kind"] == "production" and data["account_id"]


def test_accounts_settings_turn_options_off_and_show_them(cli, account_id):
    code, out, _ = cli("accounts", "settings", account_id, "--include-attachments", "off")
    assert code == 0
    assert "include_attachments  off" in out
    code, out, _ = cli("--json", "accounts", "show", account_id)
    assert json.loads(out)["settings"]["include_attachments_in_email"] is False


def test_connect_prints_each_step_and_saves_a_pending_address(cli, account_id, live_check):
    code, out, err = connect(cli, account_id, "--json")

    assert code == 0
    assert "[ok  ] dns" in err and "[ok  ] auth" in err
    assert "addresses verify support@acme.com" in err
    assert "--include-attachments off" in err  # Microsoft 365 with attachments on: the article's advice
    data = json.loads(out)
    assert data["connector"]["state"] == "pending"
    assert data["connector"]["host"] == "smtp.office365.com" and data["connector"]["port"] == 587
    assert live_check["seen"][0].password.get_secret_value() == PASSWORD


def test_password_given_on_stdin_never_appears_in_output_or_logs(cli, account_id, live_check, caplog):
    caplog.set_level(logging.DEBUG)
    outputs = []
    outputs.append(connect(cli, account_id))
    outputs.append(cli("addresses", "show", "support@acme.com"))
    outputs.append(cli("--json", "addresses", "show", "support@acme.com"))
    outputs.append(cli("addresses", "list", "--account", account_id))
    live_check["fail"] = True
    outputs.append(connect(cli, account_id, email="help@acme.com"))

    text = "".join(out + err for _, out, err in outputs) + caplog.text
    assert PASSWORD not in text
    assert outputs[-1][0] == EXIT_AUTH  # the failing connect really ran


def test_password_is_never_an_argument(cli, account_id):
    code, out, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--username", "u",
                         "--password", PASSWORD)
    assert code == EXIT_USAGE and "--password-stdin" in err and PASSWORD not in out + err


def test_connect_without_password_stdin_or_terminal_refuses(cli, account_id, live_check):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id,
                       "--preset", "microsoft365", "--username", "u", stdin=PASSWORD)
    assert code == EXIT_USAGE
    assert "--password-stdin" in err
    assert not live_check["seen"]


def test_connect_failure_explains_and_exits_with_auth_code(cli, account_id, live_check):
    live_check["fail"] = True
    code, _, err = connect(cli, account_id)

    assert code == EXIT_AUTH
    assert "[FAIL] auth" in err
    assert "SMTP AUTH is disabled" in err and "what to do: Set-CASMailbox" in err
    assert cli.stores.directory.get_address("support@acme.com") is None


def test_connecting_the_system_address_is_a_rule_violation(cli, account_id, live_check):
    code, _, err = connect(cli, account_id, email="support@acme.mail.relaydesk.test")
    assert code == EXIT_RULE
    assert "system address" in err


def test_unverified_address_cannot_be_set_default(cli, account_id, live_check):
    connect(cli, account_id)
    code, _, err = cli("addresses", "set-default", "support@acme.com")
    assert code == EXIT_RULE
    assert "not verified" in err


def test_unknown_address_exits_not_found(cli, account_id):
    code, _, err = cli("addresses", "show", "nobody@acme.com")
    assert code == EXIT_NOT_FOUND
    assert "not a support address" in err


def test_list_shows_system_and_connected_addresses(cli, account_id, live_check):
    connect(cli, account_id)
    code, out, _ = cli("addresses", "list", "--account", account_id)
    assert code == 0
    assert "support@acme.mail.relaydesk.test" in out and "system" in out
    assert "pending (smtp.office365.com:587)" in out


def test_verify_waits_then_times_out_with_hints(cli, account_id, live_check, monkeypatch):
    connect(cli, account_id)
    monkeypatch.setattr(verification, "default_forwarding_sender", lambda stores: lambda message: None)

    code, _, err = cli("addresses", "verify", "support@acme.com", "--timeout", "0.2", "--poll", "0.05")

    assert code == EXIT_VERIFY_TIMEOUT
    assert "waiting for the forwarding test mail" in err
    assert "forwarding verification failed" in err and "server level" in err


def test_verify_succeeds_when_the_mails_come_back(cli, account_id, live_check, monkeypatch):
    connect(cli, account_id)
    stores = cli.stores

    def sender(stores_):
        def send(message):  # the customer's forward brings the test mail straight back
            verification.on_verification_mail(stores, token=message[VERIFICATION_HEADER],
                                              recipient="support@acme.com", forwarding_hops=1)
        return send

    class ReturningQueue:
        def send(self, notification, delay_seconds=0):  # the relay delivers, the forward returns it
            verification.on_verification_mail(stores, token=notification.verification_token,
                                              recipient="support@acme.com", forwarding_hops=1)

    monkeypatch.setattr(verification, "default_forwarding_sender", sender)
    cli.holder["stores"] = replace(stores, queue=ReturningQueue())

    code, out, err = cli("--json", "addresses", "verify", "support@acme.com", "--timeout", "5", "--poll", "0.01")

    assert code == 0, err
    data = json.loads(out)
    assert data["forwarding"]["status"] == data["outbound"]["status"] == "verified"
    assert data["connector"]["state"] == "active"
    code, out, _ = cli("addresses", "set-default", "support@acme.com")
    assert code == 0 and "default" in out


def test_disable_enable_delete(cli, account_id, live_check):
    connect(cli, account_id)
    code, out, err = cli("addresses", "disable", "support@acme.com")
    assert code == 0 and "default outbound" in err and "connector_state" in out and "disabled" in out
    code, _, err = cli("addresses", "enable", "support@acme.com")
    assert code == 0 and "verified again" in err
    code, out, err = cli("--json", "addresses", "delete", "support@acme.com")
    assert code == 0 and json.loads(out) == {"email": "support@acme.com", "deleted": True}
    assert "secret is scheduled for deletion" in err
    assert cli.stores.directory.get_address("support@acme.com") is None


def test_tickets_list_and_show_status_suspension_and_deliveries(cli, account_id):
    ticket = Ticket(ticket_id="T0000000001", account_id=account_id, support_address="support@acme.com",
                    subject="Printer on fire", requester="jane@example.com", status=TicketStatus.SUSPENDED,
                    suspension_reason=SuspensionReason.MANUAL_FORWARD,
                    suspension_explanation="forwarded by hand from an agent's mailbox",
                    notifications=[NotificationRecord(
                        notification_id="N1", message_id="<N1@acme.com>", recipients=["jane@example.com"],
                        status=DeliveryStatus.DELIVERED,
                        attempts=[DeliveryAttempt(status=DeliveryStatus.DEFERRED, route="connector:smtp.acme.com",
                                                  smtp_code=451, enhanced_status="4.3.0", reply="try later"),
                                  DeliveryAttempt(status=DeliveryStatus.DELIVERED, route="connector:smtp.acme.com",
                                                  smtp_code=250, reply="queued")])])
    cli.stores.tickets.create_ticket(ticket)

    code, out, _ = cli("tickets", "list", "--account", account_id)
    assert code == 0
    assert "suspended (manual_forward)" in out and "jane@example.com" in out

    code, out, _ = cli("tickets", "show", "T0000000001")
    assert code == 0
    assert "forwarded by hand" in out
    assert "451 4.3.0 try later" in out and "connector:smtp.acme.com" in out and "delivered" in out

    code, out, _ = cli("--json", "tickets", "show", "T0000000001")
    assert json.loads(out)["notifications"][0]["attempts"][1]["smtp_code"] == 250
    code, _, _ = cli("tickets", "show", "T404")
    assert code == EXIT_NOT_FOUND


def test_the_commands_the_team_contract_names_exist():
    from relaydesk.cli import build_parser

    groups = build_parser()._subparsers._group_actions[0].choices
    def commands(group):
        return set(groups[group]._subparsers._group_actions[0].choices)

    assert commands("accounts") == {"create", "list", "show", "admins", "settings"}
    assert commands("suppressions") == {"list", "remove"}
    assert commands("addresses") == {"list", "show", "add", "rename", "connect", "verify", "set-default", "set",
                                     "rotate", "disable", "enable", "delete", "limits"}
    assert commands("tickets") == {"list", "show", "reply", "note", "status", "assign", "cc", "followers"}


def test_bad_subdomain_and_bad_address_are_plain_errors(cli, account_id, live_check):
    code, _, err = cli("accounts", "create", "--subdomain", "Not A Label")
    assert code == EXIT_USAGE and "not a valid subdomain" in err and "validation error" not in err
    code, _, err = connect(cli, account_id, email="not-an-address")
    assert code == EXIT_USAGE and "not an email address" in err


# --- sending limits ------------------------------------------------------------------------------------------------

def test_connect_with_a_preset_keeps_the_providers_limits_and_show_lists_them(cli, account_id, live_check):
    assert connect(cli, account_id)[0] == 0
    code, out, _ = cli("addresses", "show", "support@acme.com", "--json")
    assert json.loads(out)["connector"]["provider"] == "microsoft365"
    code, out, _ = cli("addresses", "show", "support@acme.com")
    assert code == 0 and "Microsoft 365 (microsoft365)" in out and "messages_per_minute" in out


def test_an_admin_lowers_the_limits_and_cannot_raise_microsofts(cli, account_id, live_check):
    connect(cli, account_id)
    code, out, err = cli("addresses", "limits", "support@acme.com", "--messages-per-minute", "12",
                         "--connections", "1", "--json")
    view = json.loads(out)
    assert code == 0 and view["messages_per_minute"] == "12 (set for this address)" and view["connections"] == \
        "1 (set for this address)" and "saved" in err
    code, _, err = cli("addresses", "limits", "support@acme.com", "--recipients-per-day", "20000")
    assert code == EXIT_ERROR and "Microsoft 365 allows at most 10000 for recipients per day" in err
    code, out, _ = cli("addresses", "limits", "support@acme.com", "--reset", "--json")
    assert json.loads(out)["messages_per_minute"] == "30"


@pytest.mark.parametrize("value", ["0", "-3", "many"])
def test_a_limit_that_is_not_a_positive_number_is_a_usage_error(cli, account_id, live_check, value):
    connect(cli, account_id)
    code, _, err = cli("addresses", "limits", "support@acme.com", "--messages-per-minute", value)
    assert code == EXIT_USAGE and "--messages-per-minute" in err


def test_an_own_servers_limits_follow_the_admin(cli, account_id, live_check):
    connect(cli, account_id)
    code, out, _ = cli("addresses", "limits", "support@acme.com", "--provider", "postfix",
                       "--messages-per-minute", "240", "--json")
    assert code == 0 and json.loads(out)["messages_per_minute"] == "240 (set for this address)"
    assert json.loads(out)["provider"] == "Postfix (postfix)"
