"""`relaydesk` as a tenant user against the local stack: sign in with Cognito (moto), tokens kept 0600 and refreshed,
the addresses commands through the tenant API over HTTPS, and a second tenant refused everything of the first."""

from __future__ import annotations

import io
import json
import os
import stat

import boto3
import pytest
from relaydesk.addresses import lifecycle
from relaydesk.cli import main
from relaydesk.cli import session as sessions
from relaydesk.cli.output import EXIT_NOT_FOUND, EXIT_OK

from local.stack import LocalStack
from local.tenants import add_tenant

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("cli-tenants")) as running:
        from relaydesk.wiring import aws_stores

        stores = aws_stores()
        cognito = boto3.client("cognito-idp")
        pool = running.env["RELAYDESK_USER_POOL_ID"]
        running.acme = add_tenant(stores, cognito, pool, "acme", "Acme Corp", domain="acme.test")
        running.globex = add_tenant(stores, cognito, pool, "globex", "Globex Industries", domain="globex.test")
        lifecycle.add_forwarding_address(stores, running.acme[0].account_id, "help@acme.test", "Acme Help")
        yield running


@pytest.fixture
def cli(stack, monkeypatch, capsys):
    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    sessions.forget()


def login(cli, user) -> tuple[int, str, str]:
    return cli("login", "--username", user.username, "--password-stdin", stdin=user.password + "\n")


def test_a_user_signs_in_and_sees_its_own_account_only(stack, cli):
    account, admin = stack.acme

    code, _, err = login(cli, admin)

    assert code == EXIT_OK and f"admin of account {account.account_id}" in err
    assert admin.password not in err
    mode = stat.S_IMODE(os.stat(sessions.cache_path()).st_mode)
    assert mode == 0o600
    code, out, _ = cli("--json", "addresses", "list")
    assert code == EXIT_OK
    assert {a["email"] for a in json.loads(out)} == {"help@acme.test", "support@acme.mail.relaydesk.test"}
    code, out, _ = cli("--json", "accounts", "show")
    assert json.loads(out)["account_id"] == account.account_id


def test_every_change_says_who_and_where_and_goes_through_the_api(stack, cli):
    _, admin = stack.acme
    login(cli, admin)

    code, _, err = cli("addresses", "add", "billing@acme.test", "--name", "Acme Billing")

    assert code == EXIT_OK
    assert f"relaydesk: as {admin.username} (admin of account" in err and stack.tenant_api.url in err
    code, _, err = cli("addresses", "rename", "billing@acme.test", "Billing")
    assert code == EXIT_OK and f"as {admin.username}" in err
    code, _, err = cli("addresses", "delete", "billing@acme.test")
    assert code == EXIT_OK and "billing@acme.test removed" in err


def test_the_second_tenant_is_refused_everything_of_the_first_and_the_first_is_untouched(stack, cli):
    acme, _ = stack.acme
    _, globex_admin = stack.globex
    login(cli, globex_admin)

    shown = cli("addresses", "show", "help@acme.test")
    renamed = cli("addresses", "rename", "help@acme.test", "IT Security - action required")
    deleted = cli("addresses", "delete", "help@acme.test")
    named = cli("addresses", "list", "--account", acme.account_id)
    operator_only = cli("addresses", "verify", "help@acme.test")

    assert [r[0] for r in (shown, renamed, deleted)] == [EXIT_NOT_FOUND] * 3
    assert named[0] != EXIT_OK and f"you are a user of account {stack.globex[0].account_id}" in named[2]
    assert operator_only[0] != EXIT_OK and "is an operator command" in operator_only[2]
    for _, out, err in (shown, renamed, deleted, named, operator_only):
        assert "Acme Help" not in out + err and acme.name not in out + err
    from relaydesk.wiring import aws_stores

    assert aws_stores().directory.get_account_address(acme.account_id, "help@acme.test").name == "Acme Help"


def test_an_expired_id_token_is_refreshed_with_the_refresh_token(stack, cli):
    _, admin = stack.acme
    login(cli, admin)
    session = sessions.load()
    old_token = session.id_token
    session.expires_at = 0  # the ID token has expired
    sessions.save(session)

    code, _, _ = cli("addresses", "list")

    assert code == EXIT_OK
    refreshed = sessions.load()
    assert refreshed.id_token != old_token and refreshed.expires_at > 0


def test_a_wrong_password_says_so_without_saying_which_part_and_keeps_no_session(stack, cli):
    _, admin = stack.acme

    code, _, err = cli("login", "--username", admin.username, "--password-stdin", stdin="Wrong-password-123\n")

    assert code != EXIT_OK and "username or password is not right" in err
    assert not sessions.cache_path().exists()


def test_the_operator_flag_uses_aws_credentials_even_when_signed_in(stack, cli):
    acme, admin = stack.acme
    login(cli, admin)

    code, out, err = cli("--operator", "--json", "addresses", "list", "--account", stack.globex[0].account_id)

    assert code == EXIT_OK and "support@globex.mail.relaydesk.test" in out
    code, _, err = cli("--operator", "addresses", "add", "ops@acme.test", "--account", acme.account_id)
    assert code == EXIT_OK and "relaydesk: as the operator (AWS access key ...ting) on the local stack" in err


def test_logout_forgets_the_session(stack, cli):
    login(cli, stack.acme[1])

    code, _, err = cli("logout")

    assert code == EXIT_OK and "signed out" in err
    assert sessions.load() is None


def test_the_operator_adds_an_agent_who_can_read_but_not_change(stack, cli):
    acme, _ = stack.acme
    password = "Agent-Passw0rd-123"

    code, _, err = cli("--operator", "users", "add", "Agent2@Acme.test", "--account", acme.account_id, "--role",
                       "agent", "--password-stdin", stdin=password + "\n")

    assert code == EXIT_OK and f"agent2@acme.test is a user of account {acme.account_id} (agent)" in err
    assert password not in err
    code, _, err = cli("login", "--username", "agent2@acme.test", "--password-stdin", stdin=password + "\n")
    assert code == EXIT_OK and f"agent of account {acme.account_id}" in err
    assert cli("addresses", "list")[0] == EXIT_OK
    code, _, err = cli("addresses", "add", "sales@acme.test")
    assert code != EXIT_OK and "needs the admin role; your role is agent" in err
