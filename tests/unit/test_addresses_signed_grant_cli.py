"""`relaydesk addresses connect/show` with a Google service account's key file or an Entra ID app's certificate,
against in-memory stores: what the admin types, what the live check is given, what is printed; the key is read from
a file or standard input, never from an argument, and never printed."""

from __future__ import annotations

import io
import json

import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.cli import context, main
from relaydesk.cli.output import EXIT_OK, EXIT_USAGE
from relaydesk.credentials import GMAIL_SCOPE, OAuthGrant

TENANT = "3f2c1a9e-0000-4000-8000-00000000c0de"
CLIENT = "9a8b7c6d-1111-4222-8333-444455556666"
EMAIL = "support@acme.com"


@pytest.fixture
def cli(memory_stores, monkeypatch, capsys):
    monkeypatch.setattr(context, "load_stores", lambda args: memory_stores)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(argv))
        except SystemExit as exit_:
            code = exit_.code
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def seen(monkeypatch) -> list:
    """A passing live check that records the credentials it was given (the real one: integration tests)."""
    given: list = []

    def check(credentials, *, sender=None, on_step=None, **_):
        given.append(credentials)
        steps = [CheckStep(name=n, ok=True, detail=f"{n} fine") for n in ("dns", "tcp", "token", "auth")]
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps)

    monkeypatch.setattr(lifecycle, "run_live_check", check)
    return given


@pytest.fixture
def account_id(cli):
    code, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    assert code == 0
    return json.loads(out)["account_id"]


@pytest.fixture
def key_file(service_account_keys, tmp_path):
    path = tmp_path / "acme-mail-1f2e3d.json"
    path.write_text(service_account_keys[0].json)
    return str(path)


def body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if "-----" not in line]


def connect_google(cli, account_id, *how: str, stdin: str = ""):
    return cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "google", "--auth", "oauth2",
               *how, stdin=stdin)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_connect_google_with_a_key_file_signs_in_as_the_service_account_for_the_mailbox(
        cli, account_id, seen, service_account_keys, key_file, source):
    key = service_account_keys[0]
    how = ("--service-account-file", key_file) if source == "file" else ("--service-account-stdin",)

    code, out, err = connect_google(cli, account_id, *how, "--json", stdin=key.json if source == "stdin" else "")

    assert code == EXIT_OK, err
    (credentials,) = seen
    assert credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT and credentials.username == EMAIL
    assert credentials.host == "smtp.gmail.com" and credentials.oauth_scope == GMAIL_SCOPE
    assert credentials.oauth_service_account == key.client_email and credentials.oauth_client_id == key.client_id
    assert f"Google service account {key.client_email}" in err
    connector = json.loads(out)["connector"]
    assert connector["oauth_grant"] == "service_account" and connector["oauth_service_account"] == key.client_email
    assert not any(line in out + err for line in body_lines(key.private_key_pem))


def test_show_gives_the_service_account_and_the_client_id_to_delegate(cli, account_id, seen, service_account_keys,
                                                                     key_file):
    key = service_account_keys[0]
    connect_google(cli, account_id, "--service-account-file", key_file)

    code, out, err = cli("addresses", "show", EMAIL)

    assert code == EXIT_OK
    assert f"service_account         {key.client_email}" in out
    assert f"client_id               {key.client_id} (Admin console > Domain Wide Delegation)" in out
    assert "Google service account (domain-wide delegation)" in out
    assert not any(line in out + err for line in body_lines(key.private_key_pem))


def test_google_without_a_key_file_says_how_to_give_one(cli, account_id, seen):
    code, _, err = connect_google(cli, account_id)

    assert code == EXIT_USAGE and "service account" in err and "--service-account-file KEY.json" in err
    assert not seen


def test_a_tenant_or_client_id_with_a_service_account_is_refused(cli, account_id, seen, key_file):
    code, _, err = connect_google(cli, account_id, "--service-account-file", key_file, "--client-id", CLIENT)

    assert code == EXIT_USAGE and "--client-id do not apply to a Google service account" in err
    assert not seen


def test_a_service_account_cannot_sign_in_to_microsoft_365(cli, account_id, seen, key_file):
    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365", "--auth",
                       "oauth2", "--service-account-file", key_file)

    assert code == EXIT_USAGE and "cannot sign in to Microsoft 365" in err
    assert not seen


def test_a_missing_key_file_or_two_kinds_of_material_are_refused(cli, account_id, seen, key_file, tmp_path):
    code, _, err = connect_google(cli, account_id, "--service-account-file", str(tmp_path / "nope.json"))
    assert code == EXIT_USAGE and "cannot read the service account key file" in err

    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365", "--auth",
                       "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, "--certificate-stdin",
                       "--client-secret-stdin")
    assert code == EXIT_USAGE and "give one kind of sign-in material" in err
    assert not seen


def test_a_key_file_flag_without_auth_oauth2_is_refused(cli, account_id, seen, key_file):
    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "google", "--username",
                       EMAIL, "--password-stdin", "--service-account-file", key_file, stdin="pw\n")

    assert code == EXIT_USAGE and "--service-account-file only apply to --auth oauth2" in err
    assert not seen


# --- Microsoft 365 with a certificate -------------------------------------------------------------------------------

def connect_certificate(cli, account_id, pem_path: str, *extra: str):
    return cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365", "--auth",
               "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, "--certificate-file", pem_path, *extra)


def test_connect_microsoft_365_with_a_certificate_and_show_its_thumbprint_and_expiry(
        cli, account_id, seen, app_certificates, tmp_path):
    cert = app_certificates[0]
    pem = tmp_path / "app.pem"
    pem.write_text(cert.bundle_pem)

    code, _, err = connect_certificate(cli, account_id, str(pem))
    _, out, show_err = cli("addresses", "show", EMAIL)

    assert code == EXIT_OK, err
    (credentials,) = seen
    assert credentials.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE and credentials.oauth_client_secret is None
    assert (credentials.oauth_tenant_id, credentials.oauth_client_id) == (TENANT, CLIENT)
    thumbprint = credentials.oauth_certificate_thumbprint
    assert f"certificate {thumbprint}" in err
    assert "Entra ID app, certificate" in out and f"thumbprint {thumbprint}" in out
    assert f"{credentials.oauth_certificate_expires_at:%Y-%m-%d}" in out
    assert not any(line in out + err + show_err for line in body_lines(cert.private_key_pem))


def test_a_certificate_without_its_key_is_refused_before_the_live_check(cli, account_id, seen, app_certificates,
                                                                       tmp_path):
    pem = tmp_path / "app.crt"
    pem.write_text(app_certificates[0].certificate_pem)

    code, _, err = connect_certificate(cli, account_id, str(pem))

    assert code == EXIT_USAGE and "0 private keys and 1 certificates" in err and "cat app.crt app.key" in err
    assert not seen


@pytest.mark.parametrize(("flag", "material"), [("--certificate", "cert"), ("--service-account", "key")])
def test_key_material_given_as_an_argument_is_refused_without_echoing_it(cli, account_id, seen, app_certificates,
                                                                         service_account_keys, flag, material):
    value = app_certificates[0].bundle_pem if material == "cert" else service_account_keys[0].json

    for argv in ((flag, value), (f"{flag}={value}",)):
        code, out, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365",
                             "--auth", "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, *argv)
        assert code == 2 and "never accepted as an argument" in err and f"{flag}-stdin" in err
        assert not any(line in out + err for line in body_lines(app_certificates[0].private_key_pem)
                       + body_lines(service_account_keys[0].private_key_pem))
    assert not seen


def test_a_certificate_piped_on_standard_input_is_taken(cli, account_id, seen, app_certificates):
    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365", "--auth",
                       "oauth2", "--tenant-id", TENANT, "--client-id", CLIENT, "--certificate-stdin",
                       stdin=app_certificates[0].bundle_pem)

    assert code == EXIT_OK, err
    assert seen[0].oauth_grant is OAuthGrant.CLIENT_CERTIFICATE
    assert seen[0].oauth_certificate_pem.strip() == app_certificates[0].certificate_pem.strip()
