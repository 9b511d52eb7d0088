"""`make demo`, driven as a user runs it: the end user's mail becomes a ticket, its notification leaves through
acme.test's smarthost (TLS + AUTH) and lands in the end user's mailbox with the header contract; a manual forward is
suspended; and the SMTP password the admin typed appears nowhere."""

from __future__ import annotations

import email
import email.policy
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# One demo run (one stack) serves every test here: `make test` keeps a module on one xdist worker (`--dist loadfile`).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    state = tmp_path_factory.mktemp("demo")
    password = "Pw-" + secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    env["RELAYDESK_DEMO_SMTP_PASSWORD"] = password
    completed = subprocess.run(
        [sys.executable, "-m", "local.demo", "--state-dir", str(state), "--result-json", str(state / "result.json")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=280, check=False)
    result = json.loads((state / "result.json").read_text())
    return completed, result, state, password


def test_demo_succeeds_and_tells_each_step(demo_run):
    completed, result, _, _ = demo_run

    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert result["ok"] is True
    for step in ("Create the Acme account", "Connect support@acme.test", "Verify forwarding and outbound",
                 "forwarded at server level to support@acme.", "Ticket created", "requester jane@example.net",
                 "Notification submitted through acme.test's smarthost", "delivered via connector:",
                 "Delivered to jane@example.net's mailbox", "Bob Agent answers the ticket",
                 "Jane Doe answers that reply", "threaded onto ticket", "suspended: manual_forward", "Demo complete"):
        assert step in completed.stdout


def test_ticket_has_the_end_user_as_requester(demo_run):
    _, result, _, _ = demo_run

    assert result["requester"] == "jane@example.net"
    assert result["ticket_status"] != "suspended"


def test_delivery_record_is_delivered_with_the_smarthosts_reply(demo_run):
    _, result, _, _ = demo_run

    record = result["delivery"]
    assert record["status"] == "delivered"
    assert record["recipients"] == ["jane@example.net"]
    last = record["attempts"][-1]
    assert last["smtp_code"] == 250
    assert last["reply"] == result["smarthost"]["reply"]  # the queue id the customer's server gave
    assert last["route"].startswith("connector:")


def test_notification_was_authenticated_by_the_smarthost_over_tls(demo_run):
    _, result, _, _ = demo_run

    assert result["smarthost"]["tls"] is True
    assert result["smarthost"]["auth_user"] == "support@acme.test"
    assert result["smarthost"]["rcpt_tos"] == ["jane@example.net"]


def test_end_users_mailbox_holds_the_notification_with_every_header_of_the_contract(demo_run):
    _, result, _, _ = demo_run

    message = email.message_from_bytes(Path(result["mailbox_file"]).read_bytes(), policy=email.policy.default)

    assert message["Delivered-To"] == "jane@example.net"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["X-Mailer"] == "Relaydesk Mailer"
    assert message["X-Relaydesk-From-Account-Id"] == result["account_id"]
    assert message["X-Relaydesk-Email-Id"] == result["notification_id"]
    assert message["From"].addresses[0].addr_spec == "support@acme.test"
    assert message["Message-ID"] == result["delivery"]["message_id"]
    assert message["In-Reply-To"].endswith("@mail.example.net>")
    assert message["In-Reply-To"] in message["References"]
    assert f"[RD#{result['ticket_id']}]" in message["Subject"]
    assert "ESMTPSA" in message["Received"] and "authenticated as support@acme.test" in message["Received"]


def test_the_agents_reply_and_janes_answer_to_it_land_on_the_same_ticket(demo_run):
    _, result, _, _ = demo_run

    reply = email.message_from_bytes(Path(result["reply_file"]).read_bytes(), policy=email.policy.default)
    assert reply["From"].addresses[0].display_name == "Bob Agent (Acme Support)"
    assert f"[RD#{result['ticket_id']}]" in reply["Subject"] and reply["X-Relaydesk-Email-Id"] == \
        result["reply_notification_id"]
    comment = result["answer_comment"]
    assert comment["source_message_id"] == result["answer_message_id"]
    assert comment["author"] == "jane@example.net" and comment["public"] is True
    assert comment["body"].startswith("Did that, it prints again.")


def test_manual_forward_is_suspended_beside_the_normal_ticket(demo_run):
    _, result, _, _ = demo_run

    assert result["suspension_reason"] == "manual_forward"
    assert result["suspended_ticket_id"] != result["ticket_id"]


def test_the_configured_password_appears_in_no_output_log_or_file(demo_run):
    completed, _, state, password = demo_run

    assert password not in completed.stdout
    assert password not in completed.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "functions.log" for p in files) and any(p.name == "cli.log" for p in files)
    leaked = [str(p) for p in files if password.encode() in p.read_bytes()]
    assert leaked == []


def test_the_delivered_notification_is_signed_with_the_customers_domain_and_verifies_after_its_server(demo_run):
    import dkim

    _, result, _, _ = demo_run
    raw = Path(result["mailbox_file"]).read_bytes()  # as the end user got it: after acme.test's server (Received)
    published = result["dkim_records"]

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        value = published.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    signatures = email.message_from_bytes(raw, policy=email.policy.default).get_all("DKIM-Signature")
    algorithms = {" ".join(str(s).split()).split(" a=")[1].split(";")[0] for s in signatures}
    assert algorithms == {"rsa-sha256", "ed25519-sha256"}
    assert all(" d=acme.test;" in " ".join(str(s).split()) for s in signatures)
    for index in range(len(signatures)):
        assert dkim.DKIM(raw).verify(idx=index, dnsfunc=dns)
        tampered = raw.replace(b"Printer on floor 3", b"Printer on floor 4", 1)
        assert not dkim.DKIM(tampered).verify(idx=index, dnsfunc=dns)
