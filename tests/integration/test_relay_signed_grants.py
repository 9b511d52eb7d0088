"""The relay with the sign-ins that need no password and no client secret: a Google Workspace service account (JWT
bearer grant, domain-wide delegation) against a Gmail-like XOAUTH2 smarthost, and a Microsoft 365 app's certificate
against an Exchange-like one. Real local token endpoint, real STARTTLS smarthost, moto from template.yaml; verify,
deliver, hold with the provider's explanation, rotate the fix in, and the held notifications go out."""

from __future__ import annotations

import io
import json
import logging

import pytest
from relaydesk.addresses import rotation, verification
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.addresses.sign_in import certificate_fields, service_account_fields
from relaydesk.credentials import SmtpCredentials
from relaydesk.markers import VERIFICATION_HEADER
from relaydesk.oauth import shared_tokens
from relaydesk.tickets.model import DeliveryStatus

from local.lambdas import load
from tests.integration.relay_harness import ACCOUNT, relay_harness

MAILBOX = "support@acme.test"
APP = "6a0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    yield from relay_harness(aws_stack_env, monkeypatch)


@pytest.fixture(autouse=True)
def no_tokens_from_other_tests():
    shared_tokens().clear()
    yield
    shared_tokens().clear()


@pytest.fixture
def google(token_server, service_account_keys):
    """Google's side set up as docs/providers/google.md says: the service account and its key, domain-wide
    delegation of https://mail.google.com/ to its client ID, the support mailbox a Workspace user."""
    key = service_account_keys[0].with_token_uri(token_server.google_token_url)
    token_server.google.add_service_account(key)
    token_server.google.delegate(key.client_id)
    token_server.google.add_user(MAILBOX)
    return key


@pytest.fixture
def gmail(make_smarthost, token_server):
    return make_smarthost(oauth=token_server, xoauth2_replies="gmail")


@pytest.fixture
def exchange(make_smarthost, token_server):
    return make_smarthost(oauth=token_server, oauth_mailboxes={APP: {MAILBOX}})


def connect(relay, server, fields: dict, *, state: ConnectorState = ConnectorState.ACTIVE, **extra) -> str:
    """The address as `addresses connect` leaves it (its secret named as rotation expects), active or pending."""
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, username=MAILBOX, ca_bundle_pem=server.ca_pem,
                                  **fields, **extra)
    name = f"{relay.stores.settings.secret_prefix}{ACCOUNT}/{MAILBOX}"
    secret = relay.stores.secrets.create(name, credentials.to_secret_string(), {})
    connector = Connector(host="127.0.0.1", port=server.port, secret_arn=secret, state=state)
    connector.take_sign_in(credentials)
    verified = Verification(status=VerificationStatus.VERIFIED)
    relay.stores.directory.create_address(SupportAddress(
        email=MAILBOX, account_id=ACCOUNT, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR, connector=connector,
        forwarding=verified, outbound=verified if state is ConnectorState.ACTIVE else Verification()))
    return secret


def certificate_app(token_server, cert) -> dict:
    token_server.add_certificate(APP, cert.certificate_pem)
    return {**certificate_fields(cert.bundle_pem), "oauth_client_id": APP, "oauth_tenant_id": token_server.tenant,
            "oauth_token_url": token_server.token_url}


def rotate_in(relay, fields: dict, server) -> str:
    """`relaydesk addresses rotate` with new sign-in material: staged, tested with a real token, promoted."""
    secret = relay.stores.directory.get_address(MAILBOX).connector.secret_arn
    current = json.loads(relay.stores.secrets.get(secret).value)
    new = SmtpCredentials.model_validate({**current, **fields})
    return rotation.stage_rotation(relay.stores, ACCOUNT, MAILBOX, new,
                                   start=lambda sid, token: rotation.rotate_in_process(relay.stores, sid, token))


def drain(relay) -> None:
    while relay.poll():
        pass


class RelayLog:
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


# --- Google Workspace -----------------------------------------------------------------------------------------------

def verify_outbound(relay, server) -> None:
    """`relaydesk addresses verify`'s outbound half: the relay sends the test mail through the connector; the
    customer's forward brings it back to the system address, where inbound hands its token to verification."""
    verification.start_outbound(relay.stores, ACCOUNT, MAILBOX)
    relay.poll()
    test_mail = server.received[-1]
    token = next(line.split(":", 1)[1].strip() for line in test_mail.data.decode().splitlines()
                 if line.startswith(VERIFICATION_HEADER + ":"))
    system = f"support@acme.{relay.stores.settings.mail_domain}"
    assert verification.on_verification_mail(relay.stores, token=token, recipient=system)
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.ACTIVE and address.outbound.status is VerificationStatus.VERIFIED


def test_a_service_account_address_is_verified_through_gmail_then_delivers_with_the_same_token(
        relay, gmail, token_server, google):
    connect(relay, gmail, service_account_fields(google.json), state=ConnectorState.PENDING)

    verify_outbound(relay, gmail)

    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    assert [r.auth_user for r in gmail.received] == [MAILBOX, MAILBOX] and all(r.tls for r in gmail.received)
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
    assert token_server.tokens_issued == 1  # cached until shortly before it expires
    assert token_server.grant_of(token_server.issued_tokens()[0]).subject == MAILBOX


def test_a_token_gmail_stops_accepting_is_replaced_once_and_the_mail_goes_once(relay, gmail, token_server, google):
    connect(relay, gmail, service_account_fields(google.json))
    relay.enqueue(relay.notification(MAILBOX))
    relay.poll()
    token_server.expire_all()
    relay.connections_idle_out()
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    assert (gmail.stats.auth_attempts, gmail.stats.auth_failures) == (3, 1)  # Gmail's 334 + 535 5.7.8, then a new one
    assert token_server.tokens_issued == 2 and len(gmail.received) == 2
    assert relay.record(notification).status is DeliveryStatus.DELIVERED


def fault_key_deleted(google_side, key, new_key):
    google_side.delete_key(key)
    return lambda: google_side.add_key(new_key), new_key


def fault_delegation_removed(google_side, key, new_key):
    google_side.revoke_delegation(key.client_id)
    return lambda: google_side.delegate(key.client_id), key


def fault_user_suspended(google_side, key, new_key):
    google_side.suspend_user(MAILBOX)
    return lambda: google_side.suspend_user(MAILBOX, suspended=False), key


def fault_app_blocked(google_side, key, new_key):
    google_side.block(key.client_id)
    return lambda: google_side.block(key.client_id, blocked=False), key


@pytest.mark.parametrize(("fault", "google_said", "fix_words"), [
    (fault_key_deleted, "invalid_grant: Invalid JWT Signature.", "Add key > Create new key > JSON"),
    (fault_delegation_removed, "unauthorized_client", "Manage Domain Wide Delegation > Add new"),
    (fault_user_suspended, "access_denied", "the user must be active"),
    (fault_app_blocked, "admin_policy_enforced", "App access control"),
])
def test_a_google_refusal_holds_the_address_with_the_fix_and_the_fix_releases_what_was_held(
        relay, gmail, token_server, google, service_account_keys, fault, google_said, fix_words):
    connect(relay, gmail, service_account_fields(google.json))
    new_key = service_account_keys[1].with_token_uri(token_server.google_token_url)
    fix, key_after = fault(token_server.google, google, new_key)
    held = relay.notification(MAILBOX)
    relay.enqueue(held)
    relay.poll()

    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.AUTH_FAILED
    assert google_said in address.last_error and fix_words in address.last_error
    assert relay.record(held).status is DeliveryStatus.AUTH_FAILED
    assert [n.notification_id for n in relay.stores.held.list(MAILBOX)] == [held.notification_id]
    assert relay.queued() == 0 and gmail.stats.auth_attempts == 0  # parked; no AUTH without a token

    fix()  # the admin fixes it on Google's side ...
    rotate_in(relay, service_account_fields(key_after.json), gmail)  # ... and stores the (new or same) key file
    drain(relay)

    assert relay.record(held).status is DeliveryStatus.DELIVERED and [r.auth_user for r in gmail.received] == [MAILBOX]
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.ACTIVE and address.last_error is None
    assert relay.stores.held.list(MAILBOX) == []


def test_googles_token_endpoint_down_defers_and_never_holds(relay, gmail, token_server, google):
    connect(relay, gmail, service_account_fields(google.json))
    token_server.stop()
    notification = relay.notification(MAILBOX)
    relay.enqueue(notification)
    relay.poll()

    assert relay.record(notification).attempts[-1].status is DeliveryStatus.DEFERRED
    assert relay.stores.directory.get_address(MAILBOX).connector.state is ConnectorState.ACTIVE
    assert relay.failures() and gmail.stats.auth_attempts == 0


def test_no_private_key_assertion_or_token_in_logs_records_or_output(relay, gmail, token_server, google, caplog,
                                                                    capsys):
    caplog.set_level(logging.DEBUG)
    connect(relay, gmail, service_account_fields(google.json))
    assertions: list[str] = []
    real_answer = token_server.answer

    def recording(path, form):
        assertions.append(form.get("assertion", ""))
        return real_answer(path, form)

    token_server.answer = recording
    notifications = [relay.notification(MAILBOX) for _ in range(2)]
    with RelayLog() as log:
        relay.enqueue(notifications[0])
        relay.poll()  # delivered
        token_server.google.delete_key(google)
        token_server.expire_all()
        relay.connections_idle_out()
        relay.enqueue(notifications[1])
        relay.poll()  # 535 from Gmail, then the key is refused: held

    captured = capsys.readouterr()
    address = relay.stores.directory.get_address(MAILBOX)
    ours = [r for r in caplog.records if not r.name.startswith(("botocore", "boto3", "urllib3"))]
    everything = "\n".join([
        log.lines.getvalue(), *map(logging.Formatter().format, ours), captured.out, captured.err,
        json.dumps(relay.responses), address.model_dump_json(),
        *(relay.record(n).model_dump_json() for n in notifications),
        *(n.model_dump_json() for n in relay.stores.held.list(MAILBOX)),
    ])
    assert address.connector.state is ConnectorState.AUTH_FAILED and len(assertions) == 2
    key_lines = [line for line in google.private_key_pem.splitlines() if "-----" not in line]
    for leaked in [*key_lines, *assertions, *token_server.issued_tokens()]:
        assert leaked not in everything


# --- Microsoft 365 with a certificate --------------------------------------------------------------------------------

def test_a_certificate_app_is_verified_delivers_and_held_when_entra_drops_the_certificate_until_a_new_one_is_in(
        relay, exchange, token_server, app_certificates):
    first, second = app_certificates
    connect(relay, exchange, certificate_app(token_server, first), state=ConnectorState.PENDING)
    verify_outbound(relay, exchange)
    delivered = relay.notification(MAILBOX)
    relay.enqueue(delivered)
    relay.poll()
    assert relay.record(delivered).status is DeliveryStatus.DELIVERED
    assert [r.auth_user for r in exchange.received] == [MAILBOX, MAILBOX]

    token_server.remove_certificate(APP, first.certificate_pem)  # the admin deleted it in Entra ID ...
    token_server.expire_all()
    relay.connections_idle_out()
    held = relay.notification(MAILBOX)
    relay.enqueue(held)
    relay.poll()

    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.AUTH_FAILED
    assert "AADSTS700027" in address.last_error and "Upload certificate" in address.last_error
    assert relay.record(held).status is DeliveryStatus.AUTH_FAILED

    rotate_in(relay, certificate_app(token_server, second), exchange)  # ... uploaded a new one and rotated it in
    drain(relay)

    assert relay.record(held).status is DeliveryStatus.DELIVERED and len(exchange.received) == 3
    address = relay.stores.directory.get_address(MAILBOX)
    assert address.connector.state is ConnectorState.ACTIVE
    assert address.connector.oauth_certificate_thumbprint == certificate_fields(second.bundle_pem)[
        "oauth_certificate_thumbprint"]
