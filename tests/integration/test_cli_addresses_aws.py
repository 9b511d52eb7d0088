"""The admin CLI against the template's resources in moto: the secret really lands in Secrets Manager, KMS-encrypted
and tagged, the address in DynamoDB, and deletion schedules the secret's removal."""

from __future__ import annotations

import json
import re

import boto3
import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport

PASSWORD = "moto-Secret-Pa55"


@pytest.fixture
def cli(aws_cli):
    return aws_cli


@pytest.fixture
def passing_live_check(monkeypatch):
    # The SMTP side is exercised against a real local smarthost in test_addresses_live_check.py.
    def check(credentials, *, sender=None, on_step=None, **_):
        steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "starttls", "certificate", "auth")]
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps)

    monkeypatch.setattr(lifecycle, "run_live_check", check)


def connect(cli, account_id: str, password: str = PASSWORD):
    return cli("addresses", "connect", "support@acme.com", "--account", account_id, "--host", "smtp.acme.com",
               "--username", "support@acme.com", "--password-stdin", "--json", stdin=password + "\n")


def test_connect_stores_one_kms_encrypted_tagged_secret(cli, aws_stack_env, passing_live_check):
    code, out, _ = cli("accounts", "create", "--subdomain", "acme", "--name", "Acme", "--json")
    account_id = json.loads(out)["account_id"]

    code, out, err = connect(cli, account_id)

    assert code == 0, err
    address = json.loads(out)
    client = boto3.client("secretsmanager")
    described = client.describe_secret(SecretId=address["connector"]["secret_arn"])
    assert described["Name"] == f"relaydesk/connector/{account_id}/support@acme.com"
    assert described["KmsKeyId"] == aws_stack_env["RELAYDESK_CONNECTOR_KMS_KEY_ID"]
    tags = {t["Key"]: t["Value"] for t in described["Tags"]}
    assert tags == {"relaydesk:account-id": account_id, "relaydesk:address": "support@acme.com"}
    value = json.loads(client.get_secret_value(SecretId=described["ARN"])["SecretString"])
    assert value["password"] == PASSWORD
    assert PASSWORD not in out + err

    code, out, _ = cli("--json", "addresses", "show", "support@acme.com")
    assert json.loads(out)["connector"]["state"] == "pending"


def test_delete_schedules_the_secret_and_reconnect_restores_it(cli, passing_live_check):
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    account_id = json.loads(out)["account_id"]
    secret = json.loads(connect(cli, account_id)[1])["connector"]["secret_arn"]

    code, _, err = cli("addresses", "delete", "support@acme.com")
    assert code == 0, err
    client = boto3.client("secretsmanager")
    assert "DeletedDate" in client.describe_secret(SecretId=secret)

    code, out, err = connect(cli, account_id, password="the-new-one")
    assert code == 0, err
    value = json.loads(client.get_secret_value(SecretId=secret)["SecretString"])
    assert value["password"] == "the-new-one"
    assert "DeletedDate" not in client.describe_secret(SecretId=secret)


def test_same_address_in_sandbox_and_production_is_refused(cli, passing_live_check):
    _, out, _ = cli("accounts", "create", "--subdomain", "acme-sandbox", "--kind", "sandbox", "--json")
    sandbox = json.loads(out)["account_id"]
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--kind", "production", "--json")
    production = json.loads(out)["account_id"]
    assert connect(cli, sandbox)[0] == 0
    assert connect(cli, production)[0] == 0  # neither has proven control yet: both may add it
    cli("addresses", "delete", "support@acme.com", "--account", production)
    from relaydesk.wiring import aws_stores

    aws_stores().directory.claim_address(sandbox, "support@acme.com")  # the sandbox verified it first

    code, _, err = connect(cli, production)

    assert code == 4
    assert "already verified by another Relaydesk account" in err
    assert "acme-sandbox" not in err and sandbox not in err


def test_connect_against_a_real_smarthost_with_a_private_ca(cli, smarthost, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(smarthost.ca_pem)
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    account_id = json.loads(out)["account_id"]
    argv = ("addresses", "connect", "support@acme.test", "--account", account_id, "--host", smarthost.host,
            "--port", str(smarthost.port), "--tls", "starttls", "--username", smarthost.username,
            "--password-stdin", "--ca-bundle", str(ca_file))

    code, out, err = cli(*argv, "--json", stdin="wrong-Password-1\n")
    assert code == 7  # the smarthost refused the credentials
    assert "[FAIL] auth" in err and '"action"' in err  # --json: the error as JSON on stderr
    assert "wrong-Password-1" not in out + err

    code, out, err = cli(*argv, stdin=smarthost.password + "\n")
    assert code == 0, err
    for step in ("dns", "tcp", "greeting", "starttls", "certificate", "auth", "sender"):
        assert f"[ok  ] {step}" in err
    assert smarthost.password not in out + err
    assert re.search(r"connector_state +pending", out)
    secret = json.loads(boto3.client("secretsmanager").get_secret_value(
        SecretId=f"relaydesk/connector/{account_id}/support@acme.test")["SecretString"])
    assert secret["ca_bundle_pem"] == smarthost.ca_pem and secret["password"] == smarthost.password


def test_rotate_promotes_new_credentials_and_a_bad_password_keeps_the_current(cli, smarthost, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(smarthost.ca_pem)
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    account_id = json.loads(out)["account_id"]
    old_password = smarthost.password
    code, _, err = cli("addresses", "connect", "support@acme.test", "--account", account_id, "--host", smarthost.host,
                       "--port", str(smarthost.port), "--username", smarthost.username, "--password-stdin",
                       "--ca-bundle", str(ca_file), stdin=old_password + "\n")
    assert code == 0, err
    secret_id = f"relaydesk/connector/{account_id}/support@acme.test"
    client = boto3.client("secretsmanager")

    code, out, err = cli("addresses", "rotate", "support@acme.test", "--password-stdin", "--json",
                         stdin="not-the-new-one\n")
    assert code == 7
    assert "current credentials stay live" in err
    assert json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])["password"] == old_password
    assert "not-the-new-one" not in out + err

    new_password = "Rotated-Pa55word"
    smarthost.set_password(smarthost.username, new_password)  # the admin changed it on the server first
    code, out, err = cli("addresses", "rotate", "support@acme.test", "--password-stdin", "--json",
                         stdin=new_password + "\n")
    assert code == 0, err
    assert json.loads(out)["rotation"] == "promoted"
    # VersionStage given: moto's get_secret_value without it still returns the version created first.
    current = client.get_secret_value(SecretId=secret_id, VersionStage="AWSCURRENT")["SecretString"]
    assert json.loads(current)["password"] == new_password
    previous = client.get_secret_value(SecretId=secret_id, VersionStage="AWSPREVIOUS")["SecretString"]
    assert json.loads(previous)["password"] == old_password
    assert new_password not in out + err and old_password not in out + err
