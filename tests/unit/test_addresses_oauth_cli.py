"""`relaydesk addresses connect/show/rotate` with --auth oauth2, against in-memory stores: what the admin types,
what the live check is given, what is printed; the client secret is read like a password and never printed."""

from __future__ import annotations

import io
import json

import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.cli import context, main
from relaydesk.cli.output import EXIT_OK, EXIT_USAGE
from relaydesk.credentials import AuthKind

CLIENT_SECRET = "Qx8~client-SECRET-value.0123456789"
TENANT = "3f2c1a9e-0000-4000-8000-00000000c0de"
CLIENT = "9a8b7c6d-1111-4222-8333-444455556666"


@pytest.fixture
def cli(memory_stores, monkeypatch, capsys):
    monkeypatch.setattr(context, "load_stores", lambda args: memory_stores)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exit_:  # argparse refusing the command line
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    run.stores = memory_stores
    return run


@pytest.fixture
def seen(monkeypatch) -> list:
    """A passing live check that records the credentials it was given (the real one is in the integration tests)."""
    given: list = []

    def check(credentials, *, sender=None, on_step=None, **_):
        given.append(credentials)
        steps = [CheckStep(name=n, ok=True, detail=f"{n} fine") for n in ("dns", "tcp", "starttls", "certificate",
                                                                          "token", "auth")]
        for step in steps:
            if on_step:
                on_step(step)
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps)

    monkeypatch.setattr(lifecycle, "run_live_check", check)
    return given


@pytest.fixture
def account_id(cli):
    code, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    assert code == 0
    return json.loads(out)["account_id"]


def connect_oauth(cli, account_id, *extra: str, stdin: str = CLIENT_SECRET + "\n"):
    return cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset", "microsoft365",
               "--auth", "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, "--client-secret-stdin", *extra,
               stdin=stdin)


def test_connect_with_oauth2_gives_the_live_check_the_app_and_the_mailbox(cli, account_id, seen):
    code, out, err = connect_oauth(cli, account_id, "--json")

    assert code == EXIT_OK, err
    (credentials,) = seen
    assert credentials.auth_kind is AuthKind.OAUTH2
    assert credentials.username == "support@acme.com"  # the mailbox defaults to the address itself
    assert (credentials.oauth_tenant_id, credentials.oauth_client_id) == (TENANT, CLIENT)
    assert credentials.oauth_client_secret.get_secret_value() == CLIENT_SECRET
    assert credentials.host == "smtp.office365.com" and credentials.port == 587
    assert f"OAuth 2.0 app {CLIENT}" in err
    connector = json.loads(out)["connector"]
    assert connector["auth_kind"] == "oauth2" and connector["oauth_client_id"] == CLIENT
    assert CLIENT_SECRET not in out + err


def test_show_displays_the_auth_kind_tenant_and_client_id_never_the_secret(cli, account_id, seen):
    connect_oauth(cli, account_id)

    code, out, err = cli("addresses", "show", "support@acme.com")
    code_json, out_json, _ = cli("--json", "addresses", "show", "support@acme.com")

    assert code == code_json == EXIT_OK
    lines = {line.split()[0]: line.split()[-1] for line in out.splitlines() if line.strip()}
    assert lines["auth"] == "oauth2" and lines["tenant_id"] == TENANT and lines["client_id"] == CLIENT
    assert CLIENT_SECRET not in out + err + out_json


@pytest.mark.parametrize("argv", [
    ("--client-secret", CLIENT_SECRET),
    (f"--client-secret={CLIENT_SECRET}",),
    ("--password", CLIENT_SECRET),
])
def test_a_secret_given_as_an_argument_is_refused_without_echoing_it(cli, account_id, seen, argv):
    code, out, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                         "microsoft365", "--auth", "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, *argv)

    assert code == EXIT_USAGE
    assert "never accepted as an argument" in err and "-stdin" in err
    assert CLIENT_SECRET not in out + err
    assert not seen


def test_rotate_refuses_a_client_secret_argument_too(cli, account_id, seen):
    connect_oauth(cli, account_id)
    code, out, err = cli("addresses", "rotate", "support@acme.com", "--client-secret", CLIENT_SECRET)
    assert code == EXIT_USAGE and CLIENT_SECRET not in out + err


def test_oauth2_without_tenant_or_client_id_says_where_to_find_them(cli, account_id, seen):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                       "microsoft365", "--auth", "oauth2", "--client-secret-stdin", stdin=CLIENT_SECRET + "\n")
    assert code == EXIT_USAGE
    assert "--tenant-id and --client-id" in err and "Overview page" in err
    assert not seen


def test_oauth2_without_a_client_secret_on_stdin_or_a_terminal_refuses(cli, account_id, seen):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                       "microsoft365", "--auth", "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT)
    assert code == EXIT_USAGE
    assert "no client secret given" in err and "--client-secret-stdin" in err
    assert not seen


def test_oauth2_with_password_stdin_points_to_client_secret_stdin(cli, account_id, seen):
    code, _, err = connect_oauth(cli, account_id, "--password-stdin")
    assert code == EXIT_USAGE and "--client-secret-stdin" in err
    assert not seen


def test_oauth_flags_without_auth_oauth2_are_refused(cli, account_id, seen):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                       "microsoft365", "--username", "support@acme.com", "--password-stdin", "--client-id", CLIENT,
                       stdin="pw\n")
    assert code == EXIT_USAGE and "only apply to --auth oauth2" in err
    assert not seen


def test_microsoft365_with_a_password_by_default_notes_the_december_2026_change(cli, account_id, seen):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                       "microsoft365", "--username", "support@acme.com", "--password-stdin", stdin="pw\n")

    assert code == EXIT_OK
    assert seen[0].auth_kind is AuthKind.PASSWORD  # password stays the default ...
    assert "end of December 2026" in err and "--auth oauth2" in err  # ... with the note


def test_an_explicit_auth_password_or_another_preset_has_no_note(cli, account_id, seen):
    _, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset",
                    "microsoft365", "--auth", "password", "--username", "support@acme.com", "--password-stdin",
                    stdin="pw\n")
    _, _, err_google = cli("addresses", "connect", "help@acme.com", "--account", account_id, "--preset", "google",
                           "--username", "help@acme.com", "--password-stdin", stdin="pw\n")
    assert "December 2026" not in err + err_google


def test_password_connect_still_needs_a_username(cli, account_id, seen):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--host", "smtp.acme.com",
                       "--password-stdin", stdin="pw\n")
    assert code == EXIT_USAGE and "--username is required" in err


@pytest.mark.parametrize(("preset", "refusal", "advice"), [
    ("google", "signs in with a service account", "--service-account-file KEY.json"),
    ("amazon-ses", "--auth oauth2 is not available", "SES SMTP credentials"),
])
def test_an_entra_client_secret_is_refused_for_providers_whose_smtp_does_not_take_it(cli, account_id, seen, preset,
                                                                                     refusal, advice):
    code, _, err = cli("addresses", "connect", "support@acme.com", "--account", account_id, "--preset", preset,
                       "--auth", "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, "--client-secret-stdin",
                       stdin=CLIENT_SECRET + "\n")
    assert code == EXIT_USAGE and refusal in err and advice in err
    assert not seen


def test_a_refused_token_step_is_a_credentials_failure_and_an_unreachable_endpoint_is_not():
    from relaydesk.errors import AuthenticationFailedError

    def report(**token_fields):
        steps = [CheckStep(name="tcp", ok=True), CheckStep(name="token", ok=False, detail="refused", **token_fields)]
        return LiveCheckReport(host="smtp.office365.com", port=587, tls_mode="starttls", steps=steps,
                               summary="s", fix="f")

    refused = report(oauth_error="invalid_client", aadsts="AADSTS7000215").to_error()
    unreachable = report().to_error()

    assert isinstance(refused, AuthenticationFailedError)
    assert not isinstance(unreachable, AuthenticationFailedError)
    assert "live check failed at token" in unreachable.message
