"""Verification, default, disable/enable with the fallback path, through the local stack's customer mail server:
the admin's CLI, acme.test's smarthost and server-level forward, SES receiving and sending, inbound and relay."""

from __future__ import annotations

import json
import secrets
import smtplib
import time
from email.message import EmailMessage

import pytest
from relaydesk.cli.output import EXIT_VERIFY_TIMEOUT

from tests.fixtures_local_stack import admin_cli, observed_stores

# One stack per module, its tests in order on one worker (`make test` runs xdist with --dist loadfile).
pytestmark = pytest.mark.slow

SUPPORT = "support@acme.test"
UNFORWARDED = "help@acme.test"
JANE = "jane@example.net"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    from local.stack import LocalStack

    with LocalStack(tmp_path_factory.mktemp("addresses-stack")) as running:
        yield running


@pytest.fixture(scope="module")
def admin(stack):
    """Runs the `relaydesk` command in its own process, as an admin does, with the env the local stack wrote."""
    return admin_cli(stack, timeout=120)


@pytest.fixture(scope="module")
def stores(stack):
    return observed_stores()


@pytest.fixture(scope="module")
def account(stack, admin):
    code, out, err = admin("accounts", "create", "--subdomain", "acme", "--name", "Acme", "--json")
    assert code == 0, err
    return json.loads(out)


def connect(stack, admin, account, email: str) -> None:
    password = secrets.token_urlsafe(12)
    stack.customer.set_password(email, password)
    submission = stack.customer.submission
    code, out, err = admin("addresses", "connect", email, "--account", account["account_id"],
                           "--host", submission.host, "--port", str(submission.port), "--tls", "starttls",
                           "--username", email, "--password-stdin", "--ca-bundle", str(stack.ca.pem_path),
                           stdin=password + "\n")
    assert code == 0, err
    assert password not in out + err


def show(stores, email: str) -> dict:
    """What `relaydesk addresses show --json` prints, read directly (the CLI's own output is tested elsewhere)."""
    return stores.directory.get_address(email).model_dump(mode="json")


def jane_writes(stack, subject: str) -> None:
    message = EmailMessage()
    message["From"] = f"Jane Doe <{JANE}>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = f"<{secrets.token_hex(8)}@mail.example.net>"
    message.set_content("Hello, help please.\n")
    mx = stack.customer.mx
    with smtplib.SMTP(mx.host, mx.port, local_hostname="mail.example.net", timeout=30) as client:
        client.starttls(context=stack.client_tls())
        client.send_message(message, from_addr=JANE, to_addrs=[SUPPORT])


def delivered_route(stores, account, subject: str, timeout: float = 60) -> str:
    """The route of the delivered notification of the ticket with this subject, once it is delivered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for ticket in stores.tickets.list_tickets(account["account_id"]):
            if ticket.subject == subject:
                for record in ticket.notifications:
                    if record.status.value == "delivered":
                        return record.attempts[-1].route
        time.sleep(0.3)
    raise AssertionError(f"no delivered notification for {subject!r} within {timeout} s")


def test_verify_succeeds_through_the_forward_and_the_smarthost_then_default_is_allowed(stack, admin, account,
                                                                                       stores):
    stack.customer.forward(SUPPORT, account["system_address"])
    connect(stack, admin, account, SUPPORT)
    code, _, err = admin("addresses", "set-default", SUPPORT)
    assert code == 4 and "not verified" in err

    code, _, err = admin("addresses", "verify", SUPPORT, "--timeout", "60", "--poll", "0.2")

    assert code == 0, err
    view = show(stores, SUPPORT)
    assert view["forwarding"]["status"] == view["outbound"]["status"] == "verified"
    assert view["forwarding"]["verified_at"] and view["outbound"]["verified_at"]
    assert view["connector"]["state"] == "active"
    # the outbound verification really left through acme.test's smarthost, authenticated as the address
    assert any(r.auth_user == SUPPORT and r.tls for r in stack.customer.submission.received)
    code, _, err = admin("addresses", "set-default", SUPPORT)
    assert code == 0, err


def test_disabled_connector_falls_back_to_ses_and_enable_requires_verification_again(stack, admin, account,
                                                                                        stores):
    assert show(stores, SUPPORT)["connector"]["state"] == "active"
    jane_writes(stack, "Through the connector")
    assert delivered_route(stores, account, "Through the connector").startswith("connector:")

    code, _, err = admin("addresses", "disable", SUPPORT)
    assert code == 0, err
    jane_writes(stack, "While disabled")
    assert delivered_route(stores, account, "While disabled") == "ses"

    code, _, err = admin("addresses", "enable", SUPPORT)
    assert code == 0, err
    view = show(stores, SUPPORT)
    assert view["connector"]["state"] == "pending" and view["outbound"]["status"] == "unverified"
    code, _, err = admin("addresses", "verify", SUPPORT, "--timeout", "60", "--poll", "0.2")
    assert code == 0, err
    assert show(stores, SUPPORT)["connector"]["state"] == "active"


def test_verify_without_a_server_level_forward_times_out_with_hints(stack, admin, account, stores):
    connect(stack, admin, account, UNFORWARDED)  # no forward set on acme.test's server for this one

    code, _, err = admin("addresses", "verify", UNFORWARDED, "--timeout", "2", "--poll", "0.2")

    assert code == EXIT_VERIFY_TIMEOUT
    assert "forwarding verification failed" in err and "server level" in err
    view = show(stores, UNFORWARDED)
    assert view["forwarding"]["status"] == "failed" and "one forwarding hop" in view["forwarding"]["error"]
    assert view["connector"]["state"] == "pending"
