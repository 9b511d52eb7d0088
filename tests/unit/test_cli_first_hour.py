"""A new admin's first hour with the CLI: every mistake is one line saying what is wrong and what to do, with the
exit code docs/ADMIN.md gives (2 for a bad command line), and nothing is sent or saved before the line is right."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from relaydesk.cli import context
from relaydesk.cli.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_NOT_FOUND, EXIT_OK, EXIT_RULE, EXIT_USAGE
from relaydesk.outbound.suppression import Suppression, SuppressionReason
from relaydesk.store.memory import MemorySuppressions

from tests.unit import test_cli_addresses as cli_kit

# The CLI's fixtures (the CLI in process on memory stores, a recorded live check, an account).
cli, live_check, account_id, PASSWORD = cli_kit.cli, cli_kit.live_check, cli_kit.account_id, cli_kit.PASSWORD


def connect(cli, account_id, *flags: str):
    return cli("addresses", "connect", "support@acme.com", "--account", account_id, "--username", "support@acme.com",
               "--password-stdin", *flags, stdin=PASSWORD + "\n")


def one_line(err: str) -> bool:
    return "Traceback" not in err and 1 <= len([line for line in err.splitlines() if line.strip()]) <= 3


@pytest.mark.parametrize(("flags", "says"), [
    (("--host", "smtp.acme.com", "--port", "70000"), "70000 is out of range: a port is 1 to 65535"),
    (("--host", "smtp.acme.com", "--port", "0"), "0 is out of range"),
    (("--host", "smtp.acme.com", "--port", "five"), "'five' is not a port number"),
    (("--host", "smtp.acme.com", "--ca-bundle", "/nonexistent/ca.pem"), "/nonexistent/ca.pem: no such file"),
    (("--host", "smtp.acme.com", "--port", "587", "--tls", "implicit"), "--tls implicit would never get a TLS"),
    (("--preset", "microsoft365", "--tls", "implicit", "--port", "25"), "port 25 starts in plain text"),
    (("--host", "smtp.acme.com", "--port", "465", "--tls", "starttls"), "STARTTLS does not apply there"),
])
def test_a_bad_connector_setting_is_a_usage_error_before_any_connection(cli, account_id, live_check, flags, says):
    code, out, err = connect(cli, account_id, *flags)

    assert code == EXIT_USAGE and says in err and one_line(err), err
    assert live_check["seen"] == [] and "live check of" not in err
    assert cli.stores.directory.get_address("support@acme.com") is None and out == ""


def test_a_refusal_before_the_live_check_is_not_announced_as_a_live_check(cli, live_check):
    code, _, err = connect(cli, "A0000000000000000NOPE", "--host", "smtp.acme.com")

    assert code == EXIT_NOT_FOUND and "no account" in err
    assert "live check of" not in err and live_check["seen"] == []


def test_the_live_check_heading_comes_with_its_first_step(cli, account_id, live_check):
    code, _, err = connect(cli, account_id, "--host", "smtp.acme.com")

    assert code == EXIT_OK
    lines = err.splitlines()
    heading = next(i for i, line in enumerate(lines) if line.startswith("live check of smtp.acme.com:587"))
    assert lines[heading + 1].strip().startswith("[ok  ] dns")


def test_accounts_list_shows_every_account(cli):
    for subdomain in ("acme", "globex"):
        assert cli("accounts", "create", "--subdomain", subdomain)[0] == EXIT_OK

    code, out, _ = cli("accounts", "list")
    _, as_json, _ = cli("accounts", "list", "--json")

    assert code == EXIT_OK and "support@acme.mail.relaydesk.test" in out and "support@globex." in out
    assert sorted(a["subdomain"] for a in json.loads(as_json)) == ["acme", "globex"]


def test_admin_contacts_are_added_removed_bounded_and_shown(cli):
    code, out, _ = cli("accounts", "create", "--subdomain", "acme", "--admin-email", "IT@Acme.test", "--json")
    account = json.loads(out)
    assert code == EXIT_OK and account["admin_emails"] == ["it@acme.test"]

    code, out, _ = cli("accounts", "admins", account["account_id"], "--add", "ops@acme.test", "--remove",
                       "it@acme.test")
    assert code == EXIT_OK and out.split() == ["ops@acme.test"]
    code, _, err = cli("accounts", "admins", account["account_id"], "--add", "Bob <bob@acme.test>")
    assert code == EXIT_USAGE and "one plain email address" in err
    many = [flag for n in range(10) for flag in ("--add", f"a{n}@acme.test")]
    code, _, err = cli("accounts", "admins", account["account_id"], *many)
    assert code == EXIT_RULE and "at most 10 admin contacts" in err
    assert cli.stores.directory.get_account(account["account_id"]).admin_emails == ["ops@acme.test"]


def test_suppressions_are_listed_and_lifted(cli, account_id):
    cli.holder["stores"] = replace(cli.stores, suppressions=MemorySuppressions())
    cli.holder["stores"].suppressions.add(Suppression(account_id=account_id, recipient="gone@example.net",
                                                      reason=SuppressionReason.BOUNCE, detail="550 5.1.1 unknown"))

    code, out, _ = cli("suppressions", "list", "--account", account_id)
    assert code == EXIT_OK and "gone@example.net" in out and "bounce" in out and "550 5.1.1" in out
    assert cli("suppressions", "remove", "gone@example.net", "--account", account_id)[0] == EXIT_OK
    code, _, err = cli("suppressions", "remove", "gone@example.net", "--account", account_id)
    assert code == EXIT_NOT_FOUND and "is not suppressed" in err


@pytest.mark.parametrize(("raised", "says"), [
    (NoCredentialsError(), "no AWS credentials were found"),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:9/"), "could not connect to http://127.0.0.1:9/"),
    (ClientError({"Error": {"Code": "ValidationError", "Message": "Stack with id nope does not exist"}},
                 "DescribeStacks"), "Stack with id nope does not exist"),
    (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized"}}, "Query"),
     "AWS refused Query: AccessDeniedException"),
])
def test_an_aws_failure_is_one_line_with_what_to_do(cli, monkeypatch, raised, says):
    def fail(args):
        raise raised

    monkeypatch.setattr(context, "load_stores", fail)
    code, _, err = cli("accounts", "list")

    assert code == EXIT_ERROR and says in err and "what to do:" in err and one_line(err), err


def test_no_region_anywhere_says_where_to_set_one(monkeypatch, tmp_path, capsys):
    from relaydesk.cli import main

    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "RELAYDESK_TICKETS_TABLE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.chdir(tmp_path)  # no samconfig.toml here

    code = main(["--stack", "relaydesk-sandbox", "accounts", "list"])

    err = capsys.readouterr().err
    assert code == EXIT_ERROR and "no AWS region is set" in err and "AWS_REGION" in err and one_line(err), err


def test_the_region_comes_from_samconfig_when_the_shell_names_none(monkeypatch, tmp_path):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "RELAYDESK_TICKETS_TABLE"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "samconfig.toml").write_text('version = 0.1\n[sandbox.global.parameters]\nstack_name = "s"\n'
                                             'region = "eu-west-1"\n')
    monkeypatch.chdir(tmp_path)
    asked = {}

    class Cloudformation:
        def describe_stacks(self, StackName):
            import os
            asked.update(stack=StackName, region=os.environ.get("AWS_DEFAULT_REGION"))
            return {"Stacks": [{"Outputs": []}]}

    monkeypatch.setattr("relaydesk.wiring.aws_client", lambda service: Cloudformation())
    context.ensure_stack_environment(type("Args", (), {"stack": None, "env": "sandbox"})())

    assert asked == {"stack": "s", "region": "eu-west-1"}


def test_ctrl_c_exits_130(cli, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(context, "load_stores", interrupted)
    code, _, err = cli("accounts", "list")
    assert code == EXIT_INTERRUPTED and err.strip() == "interrupted"
