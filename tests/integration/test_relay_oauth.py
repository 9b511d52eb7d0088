"""The relay with OAuth 2.0 (XOAUTH2), as Microsoft 365 tenants need it once basic authentication is off: a real
token endpoint (Entra ID's answers) and a real STARTTLS smarthost that takes its tokens, moto from template.yaml."""

from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.oauth import shared_tokens
from relaydesk.tickets.model import DeliveryStatus

from local.lambdas import load
from tests.integration.relay_harness import ACCOUNT, record_signatures, relay_harness

MAILBOX = "support@acme.test"


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    yield from relay_harness(aws_stack_env, monkeypatch)


@pytest.fixture(autouse=True)
def no_tokens_from_other_tests():
    shared_tokens().clear()  # the warm container's cache lives in this worker process across tests
    yield
    shared_tokens().clear()


@pytest.fixture
def exchange(make_smarthost, token_server):
    """An Exchange Online-like smarthost: XOAUTH2 with the token server's tokens, the app may send as MAILBOX."""
    return make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {MAILBOX}})


def connect_oauth(relay, server, tokens, *, client_secret: str | None = None,
                  token_url: str | None = None) -> str:
    settings = relay.stores.settings
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, username=MAILBOX, auth_kind=AuthKind.OAUTH2,
                                  oauth_client_id=tokens.client_id,
                                  oauth_client_secret=client_secret or tokens.client_secret,
                                  oauth_token_url=token_url or tokens.token_url, ca_bundle_pem=server.ca_pem)
    secret = relay.stores.secrets.create(settings.secret_prefix + MAILBOX, credentials.to_secret_string(), {})
    relay.stores.directory.create_address(SupportAddress(
        email=MAILBOX, account_id=ACCOUNT, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
        connector=Connector(host="127.0.0.1", port=server.port, secret_arn=secret, state=ConnectorState.ACTIVE,
                            auth_kind=AuthKind.OAUTH2),
        outbound=Verification(status=VerificationStatus.VERIFIED)))
    return secret


def store_client_secret(relay, secret_id: str, client_secret: str) -> None:
    """The admin stores the app's right client secret (what `relaydesk addresses rotate` ends with)."""
    current = SmtpCredentials.model_validate_json(relay.stores.secrets.get(secret_id).value)
    changed = current.model_copy(update={"oauth_client_secret": SecretStr(client_secret)})
    relay.stores.secrets.put_version(secret_id, changed.to_secret_string(), ["AWSCURRENT"])


def secret_cache_ages_out(relay, secret_id: str) -> None:
    """The warm container's cached copy of the secret passes its age: the next batch reads the secret again."""
    load("relay").services(relay.stores)[0].credentials.forget(secret_id)


class RelayLog:
    """The relay's JSON log lines (powertools), as CloudWatch would get them."""

    def __init__(self) -> None:
        self.logger = load("relay").logger
        self.lines = io.StringIO()
        self.handler = logging.StreamHandler(self.lines)
        self.handler.setFormatter(self.logger.registered_formatter)

    def __enter__(self) -> RelayLog:
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc) -> None:
        self.logger.removeHandler(self.handler)

    def relayed(self) -> list[dict]:
        return [entry for entry in map(json.loads, self.lines.getvalue().splitlines())
                if entry.get("message") == "notification relayed"]


# --- delivered ----------------------------------------------------------------------------------------------------

def test_a_notification_leaves_through_xoauth2_as_the_mailbox_with_exactly_the_signed_bytes(
        relay, exchange, token_server, monkeypatch):
    signed = record_signatures(monkeypatch)
    connect_oauth(relay, exchange, token_server)
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    [got] = exchange.received
    assert got.tls and got.auth_user == MAILBOX
    assert [got.data] == signed
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
    assert token_server.tokens_issued == 1 and relay.failures() == []


def test_a_second_batch_in_the_warm_container_reuses_the_cached_token_on_a_new_connection(
        relay, exchange, token_server):
    connect_oauth(relay, exchange, token_server)
    relay.enqueue(relay.notification(MAILBOX))
    relay.poll()
    relay.connections_idle_out()  # the next batch must connect and authenticate again
    second = relay.notification(MAILBOX)
    relay.enqueue(second)
    relay.poll()

    assert len(exchange.received) == 2 and exchange.stats.auth_attempts == 2
    assert token_server.tokens_issued == 1
    assert relay.record(second).status is DeliveryStatus.DELIVERED


def test_a_token_the_smarthost_no_longer_accepts_is_replaced_and_the_mail_goes_once(relay, exchange, token_server):
    connect_oauth(relay, exchange, token_server)
    relay.enqueue(relay.notification(MAILBOX))
    relay.poll()
    token_server.expire_all()  # revoked, or expired before the cache thought
    relay.connections_idle_out()
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    assert (exchange.stats.auth_attempts, exchange.stats.auth_failures) == (3, 1)  # 535 5.7.3, then a new token
    assert token_server.tokens_issued == 2
    assert len(exchange.received) == 2 and relay.failures() == []
    record = relay.record(notification)
    assert record.status is DeliveryStatus.DELIVERED and len(record.attempts) == 1
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.ACTIVE


# --- refused ------------------------------------------------------------------------------------------------------

def test_a_wrong_client_secret_holds_the_address_with_the_aadsts_code_and_parks_the_notification(
        relay, exchange, token_server):
    secret_id = connect_oauth(relay, exchange, token_server, client_secret="the-secret-id-not-its-value")
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.AUTH_FAILED
    assert "AADSTS7000215" in address.last_error and "invalid_client" in address.last_error
    assert "What to do:" in address.last_error and "Value" in address.last_error  # the secret's Value, not its ID
    assert relay.record(notification).status is DeliveryStatus.HELD
    assert [n.notification_id for n in relay.stores.held.list(MAILBOX)] == [notification.notification_id]
    assert relay.failures() == [] and relay.queued() == 0  # parked, not retried hot
    assert exchange.stats.auth_attempts == 0  # nothing reached the smarthost

    store_client_secret(relay, secret_id, token_server.client_secret)  # the admin fixes it
    last = relay.notification(MAILBOX)
    relay.enqueue(last)
    while relay.poll():
        pass
    assert sorted(r.auth_user for r in exchange.received) == [MAILBOX, MAILBOX]  # the parked one too: none lost
    assert {relay.record(n).status for n in (notification, last)} == {DeliveryStatus.DELIVERED}
    assert relay.stores.directory.get_address(MAILBOX).connector.state is ConnectorState.ACTIVE


def test_a_mailbox_the_app_may_not_send_as_is_held_with_exchanges_fix(relay, make_smarthost, token_server):
    exchange = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {"other@acme.test"}})
    connect_oauth(relay, exchange, token_server)
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.AUTH_FAILED
    assert "535 5.7.3" in address.last_error and "Add-MailboxPermission" in address.last_error
    assert exchange.stats.auth_failures == 2  # the cached token, then a new one: the same refusal
    assert relay.record(notification).status is DeliveryStatus.HELD


def test_a_token_endpoint_that_is_down_defers_with_a_growing_delay_and_never_holds(relay, exchange, token_server):
    connect_oauth(relay, exchange, token_server)
    token_server.stop()
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    with RelayLog() as log:
        relay.poll()
        relay.time_passes()
        relay.poll()

    assert [entry["retry_in"] for entry in log.relayed()] == [120, 360]
    assert [a.status for a in relay.record(notification).attempts] == [DeliveryStatus.DEFERRED] * 2
    assert "token endpoint" in relay.record(notification).attempts[-1].reply
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.ACTIVE and relay.stores.held.list(MAILBOX) == []
    assert exchange.stats.auth_attempts == 0


def test_an_http_token_url_is_refused_before_any_request(relay, exchange, token_server):
    plain = token_server.token_url.replace("https://", "http://")
    connect_oauth(relay, exchange, token_server, token_url=plain)
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    assert token_server.requests == 0 and exchange.stats.auth_attempts == 0
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.AUTH_FAILED and "https://" in address.last_error
    assert relay.record(notification).status is DeliveryStatus.HELD


def test_no_client_secret_and_no_access_token_in_logs_exceptions_records_or_output(
        relay, exchange, token_server, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    secret_id = connect_oauth(relay, exchange, token_server)
    wrong = "Wrong-Client-Secret-Value-42"
    notifications = [relay.notification(MAILBOX) for _ in range(3)]
    with RelayLog() as log:
        relay.enqueue(notifications[0])
        relay.poll()  # delivered with a new token
        token_server.expire_all()
        relay.connections_idle_out()
        relay.enqueue(notifications[1])
        relay.poll()  # 535, a fresh token, delivered
        store_client_secret(relay, secret_id, wrong)
        relay.connections_idle_out()
        secret_cache_ages_out(relay, secret_id)
        relay.enqueue(notifications[2])
        relay.poll()  # AADSTS7000215: held

    assert relay.record(notifications[2]).status is DeliveryStatus.HELD
    captured = capsys.readouterr()
    address = relay.stores.directory.get_address(MAILBOX)
    # Every logger at DEBUG (the smarthost's aiosmtpd dialogue included) but the AWS SDK's own wire dump, which logs
    # Secrets Manager bodies at DEBUG by design and is never set to DEBUG in the functions.
    ours = [r for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3"))]
    assert any(r.name == "mail.log" and r.levelno == logging.DEBUG for r in ours)  # the capture does see DEBUG
    everything = "\n".join([
        log.lines.getvalue(), *map(logging.Formatter().format, ours), captured.out, captured.err,
        json.dumps(relay.responses), address.model_dump_json(),
        *(relay.record(n).model_dump_json() for n in notifications),
        *(n.model_dump_json() for n in relay.stores.held.list(MAILBOX)),
    ])
    tokens = token_server.issued_tokens()
    assert len(tokens) == 2 and '"outcome":"held"' in log.lines.getvalue()
    for leaked in [token_server.client_secret, wrong, *tokens]:
        assert leaked not in everything
