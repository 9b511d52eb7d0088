"""DKIM signatures survive the trip: signed with keys kept in Secrets Manager (moto), submitted over STARTTLS + AUTH
to the local customer mail server, which stamps its Received header and delivers; dkimpy verifies what arrives."""

from __future__ import annotations

import smtplib

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import AddressKind, Connector, ConnectorState, SupportAddress
from relaydesk.dkim import domains
from relaydesk.outbound import dkim as outbound_dkim
from relaydesk.outbound.tls import client_tls_context

from local.customer_mail import CustomerMailServer
from local.mailbox import Mailboxes
from tests.dkim_helpers import notification, offline_dns, verify_all

SUPPORT = "support@acme.test"
RECIPIENT = "bob@example.net"
PASSWORD = "s3cret-submission-pw"


@pytest.fixture
def signing_address(aws_stack):
    """support@acme.test with keys set up (secret relaydesk/dkim/acme.test in moto) and signing on."""
    outbound_dkim.clear_cache()
    aws_stack.directory.create_account(Account(account_id="acc_1", subdomain="acme"))
    aws_stack.directory.create_address(SupportAddress(
        email=SUPPORT, account_id="acc_1", kind=AddressKind.SMTP_CONNECTOR,
        connector=Connector(host="127.0.0.1", secret_arn="relaydesk/connector/x", state=ConnectorState.ACTIVE)))
    keyring, _ = domains.setup(aws_stack, "acme.test")
    domains.set_signing(aws_stack, "acme.test", True)  # no resolver: the records are "published" in offline_dns
    yield aws_stack.directory.get_address(SUPPORT), keyring
    outbound_dkim.clear_cache()


@pytest.fixture
def customer_server(local_ca, tmp_path):
    server = CustomerMailServer(local_ca, Mailboxes(tmp_path / "mailboxes"), users={SUPPORT: PASSWORD}).start()
    try:
        yield server
    finally:
        server.stop()


def submit(host: str, port: int, ca_pem: str, username: str, password: str, data: bytes) -> None:
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.starttls(context=client_tls_context(ca_pem))
        client.login(username, password)
        client.sendmail(SUPPORT, [RECIPIENT], data)


def test_signatures_verify_before_and_after_the_customer_mail_server(aws_stack, signing_address, customer_server,
                                                                     local_ca):
    address, keyring = signing_address
    signer = outbound_dkim.signer_for(address, aws_stack.secrets)
    signed = signer.sign(notification())
    dns = offline_dns(keyring)
    assert verify_all(signed, dns) == [True, True]

    submit("127.0.0.1", customer_server.submission.port, local_ca.pem, SUPPORT, PASSWORD, signed)
    delivered = customer_server.mailboxes.wait_for(RECIPIENT, timeout=10).path.read_bytes()

    assert b"\r\nReceived: from [127.0.0.1] (authenticated as support@acme.test)" in delivered
    assert delivered.endswith(signed)
    assert verify_all(delivered, dns) == [True, True]


def test_what_the_smarthost_received_verifies_and_a_tampered_copy_does_not(aws_stack, signing_address, smarthost):
    address, keyring = signing_address
    signed = outbound_dkim.signer_for(address, aws_stack.secrets).sign(notification())

    submit(smarthost.host, smarthost.port, smarthost.ca_pem, smarthost.username, smarthost.password, signed)
    [received] = smarthost.wait_for(1)

    dns = offline_dns(keyring)
    assert verify_all(received.data, dns) == [True, True]
    added_from = received.data.replace(b"\r\nFrom: ", b"\r\nFrom: CEO <ceo@acme.test>\r\nFrom: ", 1)
    assert verify_all(added_from, dns) == [False, False]
    altered_body = received.data.replace(b"Your ticket was updated.", b"Your ticket was closed.", 1)
    assert verify_all(altered_body, dns) == [False, False]


def test_the_private_keys_live_in_one_secret_per_domain(aws_stack, signing_address):
    address, keyring = signing_address

    stored = aws_stack.secrets.get("relaydesk/dkim/acme.test")

    assert ":secret:relaydesk/dkim/acme.test" in address.dkim.secret_arn
    assert keyring.generations[0].keys[1].private_text() in stored.value
    assert "PRIVATE KEY" not in address.model_dump_json()
