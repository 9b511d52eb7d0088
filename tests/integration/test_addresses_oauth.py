"""`relaydesk addresses connect --auth oauth2` end to end: the CLI, moto's Secrets Manager and DynamoDB (built from
template.yaml), a local Entra-style token endpoint and a local smarthost that accepts AUTH XOAUTH2 for the mailboxes
an app may send as. What the admin sees, what is saved, and that the client secret and tokens are never printed."""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from aiosmtpd.smtp import AuthResult
from botocore.exceptions import ClientError
from relaydesk.addresses.live_check import run_live_check
from relaydesk.cli.output import EXIT_AUTH, EXIT_OK
from relaydesk.credentials import AuthKind, SmtpCredentials

from local.smarthost import SmtpServer

EMAIL = "support@acme.test"
BASIC_AUTH_OFF = "550 5.7.30 Basic authentication is not supported for Client Submission."


@pytest.fixture
def cli(aws_cli):
    return aws_cli


@pytest.fixture
def account_id(cli):
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    return json.loads(out)["account_id"]


@pytest.fixture
def ca_file(local_ca, tmp_path):
    path = tmp_path / "ca.pem"
    path.write_text(local_ca.pem)  # one local CA issued both the smarthost's and the token endpoint's certificates
    return str(path)


def connect_oauth(cli, account_id, smarthost, token_server, ca_file, secret: str, *extra: str):
    return cli("addresses", "connect", EMAIL, "--account", account_id, "--host", smarthost.host, "--port",
               str(smarthost.port), "--ca-bundle", ca_file, "--auth", "oauth2", "--tenant-id", token_server.tenant,
               "--client-id", token_server.client_id, "--token-url", token_server.token_url, "--client-secret-stdin",
               *extra, stdin=secret + "\n")


def secret_of(account_id: str) -> dict | None:
    try:
        value = boto3.client("secretsmanager").get_secret_value(
            SecretId=f"relaydesk/connector/{account_id}/{EMAIL}", VersionStage="AWSCURRENT")
    except ClientError:
        return None
    return json.loads(value["SecretString"])


def test_connect_with_oauth2_passes_every_step_and_saves_the_client_secret_only_in_the_secret(
        cli, account_id, make_smarthost, token_server, ca_file, caplog):
    caplog.set_level(logging.DEBUG, logger="relaydesk")
    smarthost = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {EMAIL}})
    issued: list[str] = []
    real_answer = token_server.answer

    def recording(path, form):  # keeps the tokens handed out, to prove none is printed
        status, body = real_answer(path, form)
        if "access_token" in body:
            issued.append(body["access_token"])
        return status, body

    token_server.answer = recording

    code, out, err = connect_oauth(cli, account_id, smarthost, token_server, ca_file, token_server.client_secret,
                                   "--json")

    assert code == EXIT_OK, err
    for step in ("dns", "tcp", "greeting", "starttls", "certificate", "token", "auth", "sender"):
        assert f"[ok  ] {step}" in err
    assert "expires in 60 min" in err and "XOAUTH2 accepted (as support@acme.test)" in err
    assert smarthost.stats.auth_failures == 0 and token_server.tokens_issued == len(issued) == 1
    saved = secret_of(account_id)
    assert saved["auth_kind"] == "oauth2" and saved["oauth_client_secret"] == token_server.client_secret
    assert saved["oauth_client_id"] == token_server.client_id and saved["username"] == EMAIL
    assert "access_token" not in json.dumps(saved) and issued[0] not in json.dumps(saved)  # tokens are not stored
    connector = json.loads(out)["connector"]
    assert connector["auth_kind"] == "oauth2" and connector["oauth_tenant_id"] == token_server.tenant

    code, shown, shown_err = cli("addresses", "show", EMAIL)
    assert code == EXIT_OK and f"client_id               {token_server.client_id}" in shown
    everything = out + err + shown + shown_err + caplog.text
    assert token_server.client_secret not in everything and issued[0] not in everything


def test_wrong_client_secret_is_refused_with_aadsts7000215_and_nothing_is_saved(
        cli, account_id, make_smarthost, token_server, ca_file):
    smarthost = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {EMAIL}})
    wrong = "the-secret-ID-not-its-value-0000"

    code, out, err = connect_oauth(cli, account_id, smarthost, token_server, ca_file, wrong)

    assert code == EXIT_AUTH  # the credentials were refused
    assert "[FAIL] token" in err and "[ok  ] auth" not in err
    assert "AADSTS7000215" in err and "Value, not its Secret ID" in err
    assert smarthost.stats.auth_attempts == 0  # no AUTH without a token
    assert secret_of(account_id) is None
    code, _, _ = cli("addresses", "show", EMAIL)
    assert code != EXIT_OK  # no address either
    assert wrong not in out + err


def test_a_mailbox_the_app_may_not_use_gets_the_535_explanation_with_the_powershell_fix(
        cli, account_id, make_smarthost, token_server, ca_file):
    smarthost = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {"other@acme.test"}})

    code, _, err = connect_oauth(cli, account_id, smarthost, token_server, ca_file, token_server.client_secret)

    assert code == EXIT_AUTH, err
    assert "[ok  ] token" in err and "[FAIL] auth" in err
    assert "service principal is not registered" in err
    assert "New-ServicePrincipal -AppId <client id> -ObjectId <Enterprise application's object id>" in err
    assert f"Add-MailboxPermission -Identity {EMAIL}" in err
    assert secret_of(account_id) is None


def oauth_credentials(smarthost, token_server, *, client_id=None, secret=None, tenant_url=None) -> SmtpCredentials:
    return SmtpCredentials(host="127.0.0.1", port=smarthost.port, username=EMAIL, auth_kind=AuthKind.OAUTH2,
                           oauth_tenant_id=token_server.tenant, oauth_client_id=client_id or token_server.client_id,
                           oauth_client_secret=secret or token_server.client_secret,
                           oauth_token_url=tenant_url or token_server.token_url, ca_bundle_pem=smarthost.ca_pem)


@pytest.mark.parametrize(("change", "code", "words"), [
    ({"client_id": "app-that-does-not-exist"}, "AADSTS700016", "no application with the client id"),
    ({"tenant_url": "other-tenant"}, "AADSTS90002", "does not know the tenant"),
])
def test_token_step_failures_are_explained_from_the_entra_code(make_smarthost, token_server, change, code, words):
    smarthost = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {EMAIL}})
    if "tenant_url" in change:
        change["tenant_url"] = token_server.token_url.replace(f"/{token_server.tenant}/", "/other-tenant/")

    report = run_live_check(oauth_credentials(smarthost, token_server, **change), sender=EMAIL)

    assert not report.ok and report.failed_step.name == "token"
    assert report.failed_step.aadsts == code and code in report.summary
    assert words in report.summary
    assert token_server.client_secret not in report.model_dump_json()


def test_a_server_without_xoauth2_is_explained(smarthost, token_server):
    report = run_live_check(oauth_credentials(smarthost, token_server), sender=EMAIL)

    assert report.failed_step.name == "auth"
    assert "does not offer AUTH XOAUTH2" in report.summary


class BasicAuthOff(SmtpServer):
    """Exchange Online once basic authentication for SMTP AUTH is off: every password AUTH gets 550 5.7.30."""

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self._count("auth_attempts")
        return AuthResult(success=False, handled=False, message=BASIC_AUTH_OFF)


@pytest.fixture
def basic_auth_off(local_ca):
    server = BasicAuthOff(local_ca, users={EMAIL: "the-old-password"}).start()
    try:
        yield server
    finally:
        server.stop()


def test_550_5_7_30_for_a_password_address_says_to_switch_to_oauth2(cli, account_id, basic_auth_off, ca_file):
    code, out, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--host", basic_auth_off.host,
                         "--port", str(basic_auth_off.port), "--ca-bundle", ca_file, "--username", EMAIL,
                         "--password-stdin", stdin="the-old-password\n")

    assert code == EXIT_AUTH
    assert "[FAIL] auth" in err and "5.7.30" in err
    assert "no longer accepts a password" in err
    assert f"relaydesk addresses rotate {EMAIL} --auth oauth2" in err and "--client-secret-stdin" in err
    assert "the-old-password" not in out + err
    assert secret_of(account_id) is None


def test_an_unreachable_token_endpoint_tells_the_admin_to_check_again_not_that_a_notification_is_retried(
        smarthost, token_server):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on any more
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    url = f"https://127.0.0.1:{closed}/{token_server.tenant}/oauth2/v2.0/token"

    report = run_live_check(oauth_credentials(smarthost, token_server, tenant_url=url), sender=EMAIL)

    assert not report.ok and report.failed_step.name == "token"
    assert "notification" not in report.fix and "Run the check again" in report.fix
    assert "127.0.0.1" in report.fix
