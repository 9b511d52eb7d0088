"""`relaydesk addresses connect|rotate|show` with a Google service account's key file and with an Entra ID app's
certificate, end to end: the CLI in process, moto's Secrets Manager and DynamoDB (from template.yaml), the local
token endpoint acting as Google and as Entra ID, and XOAUTH2 smarthosts acting as Gmail and Exchange Online. What the
admin sees, what is saved where, that rotation tests the new key with a real token, and that no key is printed."""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from botocore.exceptions import ClientError
from relaydesk.addresses import rotation
from relaydesk.addresses.sign_in import certificate_fields
from relaydesk.cli.output import EXIT_AUTH, EXIT_OK
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials
from relaydesk.errors import AuthenticationFailedError
from relaydesk.store.ports import CURRENT, PENDING, PREVIOUS

EMAIL = "support@acme.test"
APP = "6a0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"
PASSWORD = "the-Mailbox-Pa55word"


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
    path.write_text(local_ca.pem)  # one local CA issued the smarthosts' and the token endpoint's certificates
    return str(path)


@pytest.fixture
def google(token_server, service_account_keys, tmp_path):
    """Google set up as docs/providers/google.md says; returns the key and its downloaded file."""
    key = service_account_keys[0].with_token_uri(token_server.google_token_url)
    token_server.google.add_service_account(key)
    token_server.google.delegate(key.client_id)
    token_server.google.add_user(EMAIL)
    path = tmp_path / "acme-mail-key.json"
    path.write_text(key.json)
    return key, str(path)


@pytest.fixture
def gmail(make_smarthost, token_server):
    return make_smarthost(users={EMAIL: PASSWORD}, oauth=token_server, xoauth2_replies="gmail")


def secret_of(account_id: str, stage: str = CURRENT) -> dict | None:
    try:
        value = boto3.client("secretsmanager").get_secret_value(
            SecretId=f"relaydesk/connector/{account_id}/{EMAIL}", VersionStage=stage)
    except ClientError:
        return None
    return json.loads(value["SecretString"])


def key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if "-----" not in line]


def connect_google(cli, account_id, server, ca_file, key_path, *extra: str):
    return cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "google", "--host", server.host,
               "--port", str(server.port), "--ca-bundle", ca_file, "--auth", "oauth2", "--service-account-file",
               key_path, *extra)


# --- Google Workspace -----------------------------------------------------------------------------------------------

def test_connect_google_with_a_key_file_passes_every_step_and_keeps_the_key_only_in_the_secret(
        cli, account_id, gmail, token_server, google, ca_file, caplog):
    caplog.set_level(logging.DEBUG, logger="relaydesk")
    key, key_path = google

    code, out, err = connect_google(cli, account_id, gmail, ca_file, key_path, "--json")

    assert code == EXIT_OK, err
    for step in ("dns", "tcp", "greeting", "starttls", "certificate", "token", "auth", "sender"):
        assert f"[ok  ] {step}" in err
    assert f"access token for service account {key.client_email} as {EMAIL}" in err
    assert "XOAUTH2 accepted (as support@acme.test)" in err
    saved = secret_of(account_id)
    assert saved["oauth_grant"] == "service_account" and saved["oauth_private_key"] == key.private_key_pem
    assert saved["oauth_service_account"] == key.client_email and saved["oauth_key_id"] == key.private_key_id
    connector = json.loads(out)["connector"]
    assert connector["oauth_grant"] == "service_account" and "oauth_private_key" not in connector
    code, shown, shown_err = cli("addresses", "show", EMAIL)
    assert code == EXIT_OK and key.client_email in shown and key.client_id in shown
    everything = out + err + shown + shown_err + caplog.text
    assert not any(line in everything for line in key_lines(key.private_key_pem))
    assert not any(token in everything for token in token_server.issued_tokens())


def test_connect_google_before_domain_wide_delegation_fails_at_token_with_the_admin_console_steps(
        cli, account_id, gmail, token_server, google, ca_file):
    key, key_path = google
    token_server.google.revoke_delegation(key.client_id)

    code, out, err = connect_google(cli, account_id, gmail, ca_file, key_path)

    assert code == EXIT_AUTH
    assert "[FAIL] token" in err and "unauthorized_client" in err
    assert f"Manage Domain Wide Delegation > Add new: Client ID {key.client_id}" in err
    assert gmail.stats.auth_attempts == 0 and secret_of(account_id) is None
    assert not any(line in out + err for line in key_lines(key.private_key_pem))


def test_rotate_a_google_key_tests_it_with_a_real_token_and_keeps_the_old_one_as_previous(
        aws_stack, cli, account_id, gmail, token_server, google, ca_file, service_account_keys, tmp_path):
    key, key_path = google
    connect_google(cli, account_id, gmail, ca_file, key_path)
    new_key = service_account_keys[1].with_token_uri(token_server.google_token_url)
    issued = token_server.tokens_issued

    # A key Google does not know yet (created in another project, or not saved): refused, nothing changes.
    code, _, err = cli("addresses", "rotate", EMAIL, "--service-account-stdin", "--json", stdin=new_key.json)
    assert code == EXIT_AUTH and "Invalid JWT Signature" in err and "Add key > Create new key > JSON" in err
    assert secret_of(account_id)["oauth_key_id"] == key.private_key_id and secret_of(account_id, PENDING) is None

    token_server.google.add_key(new_key)  # Keys > Add key
    code, out, err = cli("addresses", "rotate", EMAIL, "--service-account-stdin", "--json", stdin=new_key.json)

    assert code == EXIT_OK, err
    assert json.loads(out)["rotation"] == "promoted"
    assert f"service account key {new_key.private_key_id} of {key.client_email}" in err
    assert token_server.tokens_issued == issued + 1  # testSecret's real token, with the new key
    assert secret_of(account_id)["oauth_key_id"] == new_key.private_key_id
    assert secret_of(account_id, PREVIOUS)["oauth_key_id"] == key.private_key_id
    assert not any(line in out + err for line in key_lines(new_key.private_key_pem) + key_lines(key.private_key_pem))


def test_a_password_address_switches_to_a_service_account_through_the_test(
        aws_stack, cli, account_id, gmail, token_server, google, ca_file):
    key, key_path = google
    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "google", "--host",
                       gmail.host, "--port", str(gmail.port), "--ca-bundle", ca_file, "--username", EMAIL,
                       "--password-stdin", stdin=PASSWORD + "\n")
    assert code == EXIT_OK, err

    code, out, err = cli("addresses", "rotate", EMAIL, "--auth", "oauth2", "--service-account-file", key_path, "--json")

    assert code == EXIT_OK, err
    assert json.loads(out)["rotation"] == "promoted" and "switching from password" in err
    current = SmtpCredentials.model_validate(secret_of(account_id))
    assert current.auth_kind is AuthKind.OAUTH2 and current.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
    assert not current.password.get_secret_value() and current.oauth_scope == "https://mail.google.com/"
    assert secret_of(account_id, PREVIOUS)["password"] == PASSWORD
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
    assert address.connector.oauth_service_account == key.client_email


# --- Microsoft 365 with a certificate -------------------------------------------------------------------------------

@pytest.fixture
def exchange(make_smarthost, token_server):
    return make_smarthost(oauth=token_server, oauth_mailboxes={APP: {EMAIL}})


def connect_certificate(cli, account_id, server, token_server, ca_file, pem_path: str):
    return cli("addresses", "connect", EMAIL, "--account", account_id, "--preset", "microsoft365", "--host",
               server.host, "--port", str(server.port), "--ca-bundle", ca_file, "--auth", "oauth2", "--tenant-id",
               token_server.tenant, "--client-id", APP, "--token-url", token_server.token_url, "--certificate-file",
               pem_path)


def test_connect_with_a_certificate_then_rotate_a_new_certificate_in(
        aws_stack, cli, account_id, exchange, token_server, app_certificates, ca_file, tmp_path):
    first, second = app_certificates
    token_server.add_certificate(APP, first.certificate_pem)
    (tmp_path / "app.pem").write_text(first.bundle_pem)
    (tmp_path / "new.pem").write_text(second.bundle_pem)

    code, _, err = connect_certificate(cli, account_id, exchange, token_server, ca_file, str(tmp_path / "app.pem"))
    assert code == EXIT_OK, err
    assert f"access token for app {APP} (certificate)" in err and "[ok  ] auth" in err

    # Not uploaded to the app yet: Entra ID refuses it in testSecret, the first certificate stays live.
    code, _, err = cli("addresses", "rotate", EMAIL, "--certificate-file", str(tmp_path / "new.pem"), "--json")
    assert code == EXIT_AUTH and "AADSTS700027" in err and "Upload certificate" in err

    token_server.add_certificate(APP, second.certificate_pem)  # uploaded next to the old one
    code, out, err = cli("addresses", "rotate", EMAIL, "--certificate-file", str(tmp_path / "new.pem"), "--json")

    assert code == EXIT_OK, err
    assert json.loads(out)["rotation"] == "promoted"
    thumbprint = certificate_fields(second.bundle_pem)["oauth_certificate_thumbprint"]
    assert secret_of(account_id)["oauth_certificate_thumbprint"] == thumbprint
    assert secret_of(account_id, PREVIOUS)["oauth_private_key"] == first.private_key_pem
    _, shown, _ = cli("addresses", "show", EMAIL)
    assert f"thumbprint {thumbprint}" in shown and "Entra ID app, certificate" in shown
    printed = out + err + shown
    assert not any(line in printed for line in key_lines(first.private_key_pem) + key_lines(second.private_key_pem))


def test_a_certificate_address_goes_back_to_a_client_secret_and_the_key_is_dropped(
        aws_stack, cli, account_id, exchange, token_server, app_certificates, ca_file, tmp_path):
    token_server.add_certificate(APP, app_certificates[0].certificate_pem)
    (tmp_path / "app.pem").write_text(app_certificates[0].bundle_pem)
    connect_certificate(cli, account_id, exchange, token_server, ca_file, str(tmp_path / "app.pem"))
    token_server.set_secret(APP, "n3w~Client.Secret-Value_0123456789")

    code, _, err = cli("addresses", "rotate", EMAIL, "--client-secret-stdin", "--json",
                       stdin="n3w~Client.Secret-Value_0123456789\n")

    assert code == EXIT_OK, err
    current = secret_of(account_id)
    assert current["oauth_grant"] == "client_secret" and current["oauth_private_key"] is None
    assert current["oauth_certificate_pem"] is None and current["oauth_client_id"] == APP


def test_rotation_refuses_a_certificate_entra_does_not_know_in_the_domain_function_too(
        aws_stack, account_id, exchange, token_server, app_certificates, cli, ca_file, tmp_path):
    """What a console route calls: `stage_rotation` with a credentials model."""
    first, second = app_certificates
    token_server.add_certificate(APP, first.certificate_pem)
    (tmp_path / "app.pem").write_text(first.bundle_pem)
    connect_certificate(cli, account_id, exchange, token_server, ca_file, str(tmp_path / "app.pem"))
    current = SmtpCredentials.model_validate(secret_of(account_id))
    staged = SmtpCredentials.model_validate({**json.loads(current.to_secret_string()),
                                             **certificate_fields(second.bundle_pem)})

    with pytest.raises(AuthenticationFailedError) as refused:
        rotation.stage_rotation(aws_stack, account_id, EMAIL, staged,
                                start=lambda sid, token: rotation.rotate_in_process(aws_stack, sid, token))

    assert "current credentials stay live" in refused.value.message
    assert "credential rotation failed at token" in aws_stack.directory.get_address(EMAIL).last_error
    assert secret_of(account_id)["oauth_private_key"] == first.private_key_pem
    assert not any(line in str(refused.value) + (refused.value.action or "")
                   for line in key_lines(second.private_key_pem))
