"""Rotation of an OAuth 2.0 address's client secret end to end, and the switch of a password address to OAuth 2.0:
moto's Secrets Manager (built from template.yaml), a local Entra-style token endpoint whose client secret the admin
changes, a local smarthost accepting AUTH XOAUTH2, the four rotation steps, and the relay delivering throughout."""

from __future__ import annotations

import json
import logging

import boto3
import pytest
from aiosmtpd.smtp import AuthResult
from pydantic import SecretStr
from relaydesk.addresses import lifecycle, rotation
from relaydesk.addresses.model import ConnectorState, VerificationStatus
from relaydesk.cli.output import EXIT_AUTH, EXIT_OK
from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import AuthenticationFailedError
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store.ports import CURRENT, PENDING, PREVIOUS

from local.smarthost import SmtpServer
from tests.tenancy import account_of

EMAIL = "support@acme.test"
NEW_SECRET = "n3w~Client.Secret-Value_0123456789"
PASSWORD = "the-Mailbox-Pa55word"


def oauth_credentials(smarthost, token_server, secret: str) -> SmtpCredentials:
    return SmtpCredentials(host="127.0.0.1", port=smarthost.port, username=EMAIL, auth_kind=AuthKind.OAUTH2,
                           oauth_tenant_id=token_server.tenant, oauth_client_id=token_server.client_id,
                           oauth_client_secret=secret, oauth_token_url=token_server.token_url,
                           ca_bundle_pem=smarthost.ca_pem)


def activate(stores, address):
    address.forwarding.status = address.outbound.status = VerificationStatus.VERIFIED
    address.connector.state = ConnectorState.ACTIVE
    stores.directory.put_address(address)
    return address


@pytest.fixture
def smarthost(make_smarthost, token_server):
    """Exchange Online's shape: the app may send as the support mailbox, which also has a password."""
    return make_smarthost(users={EMAIL: PASSWORD}, oauth=token_server,
                          oauth_mailboxes={token_server.client_id: {EMAIL}})


@pytest.fixture
def connected(aws_stack, smarthost, token_server):
    """An OAuth 2.0 address connected through the live check (token and XOAUTH2), verified and active."""
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    address, _ = lifecycle.connect_address(aws_stack, account.account_id, EMAIL,
                                           oauth_credentials(smarthost, token_server, token_server.client_secret))
    return activate(aws_stack, address)


def stored(stores, secret_id: str, stage: str) -> SmtpCredentials:
    return SmtpCredentials.model_validate_json(stores.secrets.get(secret_id, stage).value)


def client_secret(stores, secret_id: str, stage: str) -> str:
    return stored(stores, secret_id, stage).oauth_client_secret.get_secret_value()


def in_process(stores):
    return lambda secret_id, token: rotation.rotate_in_process(stores, secret_id, token)


def relay_one(relay, account_id: str, n: int):
    note = Notification(notification_id=new_id("N"), account_id=account_id, support_address=EMAIL,
                        recipients=["customer@example.net"], subject=f"[RD#T{n}] Your request", text_body="Hello")
    record = {"messageId": note.notification_id, "receiptHandle": "rh", "body": note.model_dump_json(),
              "attributes": {"ApproximateReceiveCount": "1"}}
    (result,) = relay.relay_batch([record])
    return result.result


def test_a_new_client_secret_is_tested_with_a_real_token_and_promoted(aws_stack, token_server, connected):
    secret = connected.connector.secret_arn
    old_secret, old_version = token_server.client_secret, aws_stack.secrets.get(secret, CURRENT).version_id
    issued_before = token_server.tokens_issued
    token_server.set_secret(token_server.client_id, NEW_SECRET)  # the admin created a new secret in Entra ID

    staged = stored(aws_stack, secret, CURRENT).model_copy(update={"oauth_client_secret": SecretStr(NEW_SECRET)})
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL), EMAIL, staged, start=in_process(aws_stack))

    assert token_server.tokens_issued == issued_before + 1  # testSecret fetched a token with the new secret
    assert client_secret(aws_stack, secret, CURRENT) == NEW_SECRET
    assert aws_stack.secrets.get(secret, CURRENT).version_id == token
    assert aws_stack.secrets.get(secret, PREVIOUS).version_id == old_version
    assert client_secret(aws_stack, secret, PREVIOUS) == old_secret
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.auth_kind is AuthKind.OAUTH2 and address.connector.credentials_version == token
    assert address.connector.oauth_client_id == token_server.client_id


def test_a_wrong_new_client_secret_keeps_the_current_one_and_says_why(aws_stack, token_server, connected, caplog,
                                                                      capsys):
    caplog.set_level(logging.DEBUG, logger="relaydesk")
    secret = connected.connector.secret_arn
    current = aws_stack.secrets.get(secret, CURRENT).version_id
    wrong = "the-Secret-ID-not-the-Value-9999"

    with pytest.raises(AuthenticationFailedError) as refused:
        rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                EMAIL, stored(aws_stack, secret, CURRENT).model_copy(
            update={"oauth_client_secret": SecretStr(wrong)}), start=in_process(aws_stack))

    assert "current credentials stay live" in refused.value.message
    assert aws_stack.secrets.get(secret, CURRENT).version_id == current
    assert client_secret(aws_stack, secret, CURRENT) == token_server.client_secret
    assert not any(PENDING in stages for stages in aws_stack.secrets.describe_stages(secret).values())
    last_error = aws_stack.directory.get_address(EMAIL).last_error
    assert "credential rotation failed at token" in last_error
    assert "AADSTS7000215" in last_error and "Value, not its Secret ID" in last_error
    out = capsys.readouterr()
    seen = [str(refused.value), repr(refused.value), refused.value.server_reply, last_error, out.out, out.err,
            caplog.text]
    assert all(wrong not in text and token_server.client_secret not in text for text in seen)


def test_notifications_keep_flowing_while_the_client_secret_is_rotated(aws_stack, smarthost, token_server,
                                                                       connected):
    relay_module = pytest.importorskip("relaydesk.outbound.relay")
    from relaydesk.outbound.credentials import CredentialCache
    from relaydesk.outbound.once import MemoryOnce

    relay = relay_module.Relay(aws_stack, credentials=CredentialCache(aws_stack.secrets, 300), once=MemoryOnce())
    secret = connected.connector.secret_arn

    before = relay_one(relay, connected.account_id, 0)  # a token from the old secret, cached by the relay
    token_server.set_secret(token_server.client_id, NEW_SECRET)  # new secret in Entra ID, old one refused ...
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, stored(aws_stack, secret, CURRENT).model_copy(
        update={"oauth_client_secret": SecretStr(NEW_SECRET)}), start=lambda *_: None)  # ... staged, not yet tested
    during_cached = relay_one(relay, connected.account_id, 1)  # issued tokens stay valid, as in Entra ID
    token_server.expire_all()  # then the cached token expires: AWSCURRENT's secret gets no new one
    during_expired = relay_one(relay, connected.account_id, 2)
    for step in rotation.Step:
        rotation.run_step(aws_stack, secret, token, step)
    after = relay_one(relay, connected.account_id, 3)

    outcomes = [r.outcome.value for r in (before, during_cached, during_expired, after)]
    assert outcomes == ["delivered"] * 4
    assert smarthost.stats.auth_failures >= 1  # the expired token was refused; the staged secret got a new one
    assert {r.auth_user for r in smarthost.wait_for(4)} == {EMAIL}
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.state is ConnectorState.ACTIVE and address.connector.credentials_version == token


# --- through the CLI ----------------------------------------------------------------------------------------------

@pytest.fixture
def cli(aws_cli):
    return aws_cli


@pytest.fixture
def password_address(cli, smarthost, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(smarthost.ca_pem)
    _, out, _ = cli("accounts", "create", "--subdomain", "acme", "--json")
    account_id = json.loads(out)["account_id"]
    code, _, err = cli("addresses", "connect", EMAIL, "--account", account_id, "--host", smarthost.host, "--port",
                       str(smarthost.port), "--ca-bundle", str(ca_file), "--username", EMAIL, "--password-stdin",
                       stdin=PASSWORD + "\n")
    assert code == EXIT_OK, err
    return f"relaydesk/connector/{account_id}/{EMAIL}"


def switch_to_oauth2(cli, token_server, secret: str):
    return cli("addresses", "rotate", EMAIL, "--auth", "oauth2", "--tenant-id", token_server.tenant, "--client-id",
               token_server.client_id, "--token-url", token_server.token_url, "--client-secret-stdin", "--json",
               stdin=secret + "\n")


def test_switching_a_password_address_to_oauth2_goes_through_the_test(aws_stack, cli, smarthost, token_server,
                                                                      password_address):
    secret_id = password_address
    smarthost._oauth_mailboxes.clear()  # the app has no permission on the mailbox yet (Add-MailboxPermission)

    code, out, err = switch_to_oauth2(cli, token_server, token_server.client_secret)

    assert code == EXIT_AUTH
    error = json.loads(err.splitlines()[-1])["error"]  # --json: the error as JSON on stderr
    assert "current credentials stay live" in error["message"] and "535" in error["message"]
    assert "New-ServicePrincipal" in error["action"]
    assert stored(aws_stack, secret_id, CURRENT).auth_kind is AuthKind.PASSWORD

    smarthost.allow_mailbox(token_server.client_id, EMAIL)  # the Exchange admin granted it
    code, out, err = switch_to_oauth2(cli, token_server, token_server.client_secret)

    assert code == EXIT_OK, err
    assert json.loads(out)["rotation"] == "promoted" and "switching from password" in err
    current = stored(aws_stack, secret_id, CURRENT)
    assert current.auth_kind is AuthKind.OAUTH2 and current.username == EMAIL
    assert current.oauth_client_secret.get_secret_value() == token_server.client_secret
    assert not current.password.get_secret_value()  # the mailbox password is not kept in the new version
    assert stored(aws_stack, secret_id, PREVIOUS).password.get_secret_value() == PASSWORD
    code, shown, _ = cli("addresses", "show", EMAIL)
    assert "auth  " in shown and "oauth2" in shown and token_server.client_id in shown
    assert token_server.client_secret not in out + err + shown and PASSWORD not in out + err + shown


def test_rotate_client_secret_stdin_promotes_the_new_secret(aws_stack, cli, token_server, password_address):
    switch_to_oauth2(cli, token_server, token_server.client_secret)
    token_server.set_secret(token_server.client_id, NEW_SECRET)

    code, out, err = cli("addresses", "rotate", EMAIL, "--client-secret-stdin", "--json", stdin=NEW_SECRET + "\n")

    assert code == EXIT_OK, err
    assert json.loads(out)["rotation"] == "promoted"
    assert "OAuth 2.0 client secret" in err
    assert client_secret(aws_stack, password_address, CURRENT) == NEW_SECRET
    assert NEW_SECRET not in out + err


# --- Exchange Online turns basic authentication off ---------------------------------------------------------------

class ExchangeOnline(SmtpServer):
    """Takes the mailbox's password until `basic_auth_off`, then answers every password AUTH with 550 5.7.30."""

    basic_auth_off = False

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        if not self.basic_auth_off:
            return super()._authenticate(server, session, envelope, mechanism, auth_data)
        self._count("auth_attempts")
        self._count("auth_failures")
        return AuthResult(success=False, handled=False,
                          message="550 5.7.30 Basic authentication is not supported for Client Submission.")


@pytest.fixture
def exchange(local_ca, token_server):
    server = ExchangeOnline(local_ca, users={EMAIL: PASSWORD}, oauth=token_server,
                            oauth_mailboxes={token_server.client_id: {EMAIL}}).start()
    try:
        yield server
    finally:
        server.stop()


def test_basic_auth_turned_off_holds_the_notifications_and_the_switch_to_oauth2_releases_them(
        aws_stack, exchange, token_server):
    relay_module = pytest.importorskip("relaydesk.outbound.relay")
    from relaydesk.outbound.credentials import CredentialCache
    from relaydesk.outbound.once import MemoryOnce

    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    password = SmtpCredentials(host="127.0.0.1", port=exchange.port, username=EMAIL, password=PASSWORD,
                               ca_bundle_pem=exchange.ca_pem)
    address, _ = lifecycle.connect_address(aws_stack, account.account_id, EMAIL, password)
    activate(aws_stack, address)
    relay = relay_module.Relay(aws_stack, credentials=CredentialCache(aws_stack.secrets, 300), once=MemoryOnce())
    exchange.basic_auth_off = True  # the end of December 2026 for this tenant

    held = [relay_one(relay, account.account_id, n).outcome.value for n in range(2)]

    address = aws_stack.directory.get_address(EMAIL)
    assert set(held) <= {"auth_failed", "held"} and address.connector.state is ConnectorState.AUTH_FAILED
    assert "5.7.30" in address.last_error and "--auth oauth2" in address.last_error

    switched = oauth_credentials(exchange, token_server, token_server.client_secret)
    rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL), EMAIL, switched, start=in_process(aws_stack))
    messages = boto3.client("sqs").receive_message(
        QueueUrl=aws_stack.settings.notifications_queue_url, MaxNumberOfMessages=10,
        AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
    results = relay.relay_batch([{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
                                  "body": m["Body"], "attributes": m.get("Attributes", {})} for m in messages])

    assert len(messages) == len(held)
    assert [r.result.outcome.value for r in results] == ["delivered"] * len(held)
    assert {r.auth_user for r in exchange.wait_for(len(held))} == {EMAIL}
    address = aws_stack.directory.get_address(EMAIL)
    assert address.connector.state is ConnectorState.ACTIVE and address.connector.auth_kind is AuthKind.OAUTH2
