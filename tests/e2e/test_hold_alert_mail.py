"""The hold alert, end to end on the local stack: acme.test's mail server stops taking Relaydesk's password, a
notification puts support@acme.test on hold, and the account's admin finds one alert in the local mailbox, sent
through Relaydesk's own outbound (SES) while the held smarthost saw nothing of it; after the new password is
rotated in, the admin gets the release notice."""

from __future__ import annotations

import io
import smtplib
from email.message import EmailMessage

import pytest

from local.stack import LocalStack

pytestmark = pytest.mark.e2e

SUPPORT = "support@acme.test"
ADMIN = "it@acme.test"
OLD_PASSWORD = "first-password-0123"
NEW_PASSWORD = "second-password-4567"


def relaydesk(monkeypatch, capsys, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    """The CLI in this process, against the stack's environment (which LocalStack exported)."""
    from relaydesk.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def mail_jane(stack: LocalStack, subject: str) -> None:
    message = EmailMessage()
    message["From"] = "Jane Doe <jane@example.net>"
    message["To"] = SUPPORT
    message["Subject"] = subject
    message["Message-ID"] = f"<{subject.replace(' ', '.')}@mail.example.net>"
    message.set_content("Hello, the printer is jammed again.\n")
    with smtplib.SMTP(stack.customer.mx.host, stack.customer.mx.port, timeout=10) as client:
        client.starttls(context=stack.client_tls())
        client.send_message(message, from_addr="jane@example.net", to_addrs=[SUPPORT])


def test_a_hold_mails_the_account_admin_through_ses_never_through_the_held_smarthost(tmp_path, monkeypatch, capsys):
    with LocalStack(tmp_path / "stack") as stack:
        run = lambda *argv, stdin="": relaydesk(monkeypatch, capsys, *argv, stdin=stdin)  # noqa: E731
        code, out, err = run("accounts", "create", "--subdomain", "acme", "--name", "Acme",
                             "--admin-email", ADMIN, "--json")
        assert code == 0, err
        account_id = __import__("json").loads(out)["account_id"]
        stack.customer.set_password(SUPPORT, OLD_PASSWORD)
        stack.customer.forward(SUPPORT, f"support@acme.{stack.mail_domain}")
        code, _, err = run("addresses", "connect", SUPPORT, "--account", account_id, "--host", "127.0.0.1",
                           "--port", str(stack.customer.submission.port), "--tls", "starttls", "--username", SUPPORT,
                           "--ca-bundle", str(stack.ca.pem_path), "--password-stdin", stdin=OLD_PASSWORD + "\n")
        assert code == 0, err
        code, _, err = run("addresses", "verify", SUPPORT, "--timeout", "30")
        assert code == 0, err

        # acme.test's admin resets the mailbox password on the server; Relaydesk still has the old one.
        stack.customer.set_password(SUPPORT, NEW_PASSWORD, end_sessions=True)
        submitted_before = len(stack.customer.submission.received)
        mail_jane(stack, "Printer jammed again")

        alert = stack.mailboxes.wait_for(ADMIN, lambda m: m["X-Relaydesk-Alert"] == "hold", timeout=60)

        message = alert.message()
        body = message.get_body(("plain",)).get_content()
        assert message["Subject"] == f"Action needed: notifications from {SUPPORT} are on hold"
        assert "refused the credentials" in body and "535" in body  # the reason, in the server's words
        assert "What to do:" in body and f"relaydesk addresses rotate {SUPPORT} --password-stdin" in body
        assert message["From"] == f"Relaydesk <alerts@{stack.mail_domain}>"
        # It came through SES (the local SES hands it to acme.test's MX), never through the held smarthost.
        stack.journal.wait_for("ses", lambda entry: entry.data["rcpt"] == ADMIN, timeout=10)
        assert any("amazonses.com" in str(hop) for hop in message.get_all("Received"))
        held_smarthost_saw = stack.customer.submission.received[submitted_before:]
        assert all(ADMIN not in r.rcpt_tos and b"X-Relaydesk-Alert" not in r.data for r in held_smarthost_saw)
        assert OLD_PASSWORD not in alert.path.read_text() and NEW_PASSWORD not in alert.path.read_text()

        # One alert per hold: the next notification is parked without a second mail.
        mail_jane(stack, "Still jammed")
        stack.journal.wait_for("relay", lambda e: e.data["notification_ids"], after=len(stack.journal), timeout=30)

        code, _, err = run("addresses", "rotate", SUPPORT, "--password-stdin", "--timeout", "30",
                           stdin=NEW_PASSWORD + "\n")
        assert code == 0, err
        released = stack.mailboxes.wait_for(ADMIN, lambda m: m["X-Relaydesk-Alert"] == "release", timeout=60)
        assert released.message()["Subject"] == f"Resolved: notifications from {SUPPORT} are sending again"
        kinds = [d.message()["X-Relaydesk-Alert"] for d in stack.mailboxes.messages(ADMIN)]
        assert sorted(k for k in kinds if k) == ["hold", "release"]
