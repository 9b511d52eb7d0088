"""An account's admins hear of a held address: one alert when the hold starts, a reminder a day while it lasts, one
notice when it ends; always through Relaydesk's own outbound, never the held connector, and never twice."""

from __future__ import annotations

import email
from dataclasses import replace
from datetime import timedelta
from email.policy import default

import pytest
from relaydesk.addresses import state
from relaydesk.alerts import holds, mail
from relaydesk.alerts.model import AlertKind, AlertState, HoldAlert
from relaydesk.clock import utcnow
from relaydesk.errors import TransientDeliveryError
from relaydesk.outbound.suppression import Suppression, SuppressionReason
from relaydesk.store.memory import MemoryHoldAlerts, MemoryOutbox, MemorySuppressions

from tests.unit.outbound.kit import SUPPORT, make_world, sqs_record

ADMINS = ["it@acme.test", "ops@acme.test"]


@pytest.fixture
def world(memory_stores):
    world = make_world(memory_stores)
    world.stores = replace(world.stores, hold_alerts=MemoryHoldAlerts(), suppressions=MemorySuppressions(),
                           settings=world.stores.settings.model_copy(update={
                               "console_url": "https://console.relaydesk.test"}))
    account = world.stores.directory.get_account("A1")
    account.admin_emails = ADMINS
    world.stores.directory.put_account(account)
    return world


def hold(world) -> None:
    """The smarthost stops taking the password: the relay holds the address, as in production."""
    world.smarthost.password = "changed-on-the-server"
    world.relay().relay_batch([sqs_record(world.notification())])
    assert world.address().connector.state.value == "auth_failed"


def sent_mail(world) -> list[tuple[str, list[str], email.message.EmailMessage]]:
    return [(source, to, email.message_from_bytes(data, policy=default))
            for source, to, data in world.stores.mailer.sent]


def test_a_hold_sends_one_alert_to_the_account_admins_naming_the_address_the_reason_and_the_fix(world):
    hold(world)
    transactions = len(world.smarthost.transactions)

    sent = holds.sync_address(world.stores, SUPPORT)

    assert sent.kind is AlertKind.HOLD and sent.recipients == tuple(ADMINS)
    [(source, to, message)] = sent_mail(world)
    assert source == "alerts@mail.relaydesk.test" and to == ADMINS
    assert message["Subject"] == f"Action needed: notifications from {SUPPORT} are on hold"
    body = message.get_content()
    assert "535 5.7.8 Username and Password not accepted" in body  # the server's reason
    assert "What to do:" in body and "relaydesk addresses rotate support@acme.test --password-stdin" in body
    assert "https://console.relaydesk.test/#/addresses/support@acme.test" in body
    assert "1 notification(s) are waiting" in body
    assert message["Auto-Submitted"] == "auto-generated" and message["X-Relaydesk-Alert"] == "hold"
    assert len(world.smarthost.transactions) == transactions and world.smarthost.logins[-1][1] is False
    assert holds.sync_address(world.stores, SUPPORT) is None  # nothing more until a day has passed
    assert len(world.stores.mailer.sent) == 1


def test_a_reminder_goes_once_a_day_while_the_hold_lasts(world):
    hold(world)
    start = utcnow()
    holds.sync_address(world.stores, SUPPORT, now=start)

    assert holds.sync_address(world.stores, SUPPORT, now=start + timedelta(hours=23)) is None
    first = holds.sync_address(world.stores, SUPPORT, now=start + timedelta(hours=24))
    assert holds.sync_address(world.stores, SUPPORT, now=start + timedelta(hours=30)) is None
    second = holds.sync_address(world.stores, SUPPORT, now=start + timedelta(hours=48))

    assert (first.kind, second.kind) == (AlertKind.REMINDER, AlertKind.REMINDER)
    subjects = [m["Subject"] for _, _, m in sent_mail(world)]
    assert subjects[1:] == [f"Reminder: notifications from {SUPPORT} are still on hold"] * 2
    assert world.stores.hold_alerts.get(SUPPORT).reminders == 2


def test_the_release_is_announced_once_and_closes_the_alert(world):
    hold(world)
    holds.sync_address(world.stores, SUPPORT)
    state.change(world.stores, "A1", SUPPORT, state.Release(why="the admin's fix"))

    sent = holds.sync_address(world.stores, SUPPORT)

    assert sent.kind is AlertKind.RELEASE and sent.recipients == tuple(ADMINS)
    assert sent_mail(world)[-1][2]["Subject"] == f"Resolved: notifications from {SUPPORT} are sending again"
    assert world.stores.hold_alerts.get(SUPPORT) is None
    assert holds.sync_address(world.stores, SUPPORT) is None and len(world.stores.mailer.sent) == 2


def test_a_second_hold_of_the_same_address_is_announced_again(world):
    hold(world)
    holds.sync_address(world.stores, SUPPORT)
    state.change(world.stores, "A1", SUPPORT, state.Release(why="the admin's fix"))
    hold(world)  # held again before any run saw the release

    sent = holds.sync_address(world.stores, SUPPORT)

    assert sent.kind is AlertKind.HOLD and len(world.stores.mailer.sent) == 2


def test_a_claim_of_another_run_is_left_alone_until_it_goes_stale(world):
    hold(world)
    now = utcnow()
    held_since = world.address().connector.held_since
    world.stores.hold_alerts.put_if(HoldAlert(email=SUPPORT, account_id="A1", held_since=held_since,
                                              kind=AlertKind.HOLD, state=AlertState.SENDING, claimed_at=now), None)

    assert holds.sync_address(world.stores, SUPPORT, now=now + timedelta(minutes=1)) is None
    taken_over = holds.sync_address(world.stores, SUPPORT, now=now + holds.CLAIM_STALE + timedelta(seconds=1))

    assert taken_over.kind is AlertKind.HOLD and len(world.stores.mailer.sent) == 1


def test_two_runs_racing_for_one_hold_send_one_alert(world):
    hold(world)
    ledger = world.stores.hold_alerts
    real_put_if = ledger.put_if
    raced: list = []

    def put_if_after_the_other_run(alert, expected):
        if not raced:  # the other run (the sweep) claims and sends between our read and our claim
            raced.append(None)
            raced[0] = holds.sync_address(world.stores, SUPPORT)
        return real_put_if(alert, expected)

    ledger.put_if = put_if_after_the_other_run
    ours = holds.sync_address(world.stores, SUPPORT)

    assert raced[0].kind is AlertKind.HOLD and ours is None
    assert len(world.stores.mailer.sent) == 1


def test_an_outbound_failure_hands_the_claim_back_and_the_next_run_sends(world):
    hold(world)

    class Down(MemoryOutbox):
        def send_raw(self, source, destinations, data):
            raise TransientDeliveryError("SES could not be reached")

    down = replace(world.stores, mailer=Down())
    with pytest.raises(TransientDeliveryError):
        holds.sync_address(down, SUPPORT)
    assert world.stores.hold_alerts.get(SUPPORT) is None  # not stuck as "sending"

    assert holds.sync_address(world.stores, SUPPORT).kind is AlertKind.HOLD


def test_without_admin_contacts_nothing_is_sent_and_a_contact_added_later_gets_the_reminder(world):
    account = world.stores.directory.get_account("A1")
    account.admin_emails = []
    world.stores.directory.put_account(account)
    hold(world)
    start = utcnow()

    assert holds.sync_address(world.stores, SUPPORT, now=start).recipients == ()
    account.admin_emails = ["new-admin@acme.test"]
    world.stores.directory.put_account(account)
    reminder = holds.sync_address(world.stores, SUPPORT, now=start + timedelta(days=1))

    assert reminder.recipients == ("new-admin@acme.test",) and len(world.stores.mailer.sent) == 1


def test_a_suppressed_admin_contact_is_left_out(world):
    world.stores.suppressions.add(Suppression(account_id="A1", recipient="ops@acme.test",
                                              reason=SuppressionReason.BOUNCE, detail="550 5.1.1 no such user"))
    hold(world)

    assert holds.sync_address(world.stores, SUPPORT).recipients == ("it@acme.test",)


def test_the_sweep_finds_a_hold_without_a_change_record_and_counts_held_addresses(world):
    hold(world)

    report = holds.sweep(world.stores)

    assert [s.kind for s in report.sent] == [AlertKind.HOLD] and report.held == 1
    assert holds.remind(world.stores).sent == []


def test_the_reminder_run_announces_a_release_the_change_stream_missed(world):
    hold(world)
    holds.sync_address(world.stores, SUPPORT)
    state.change(world.stores, "A1", SUPPORT, state.Release(why="the admin's fix"))

    report = holds.remind(world.stores)

    assert [s.kind for s in report.sent] == [AlertKind.RELEASE] and report.held == 0


def test_a_deleted_address_closes_its_alert_with_a_notice(world):
    hold(world)
    holds.sync_address(world.stores, SUPPORT)
    world.stores.directory.delete_address("A1", SUPPORT)

    sent = holds.sync_address(world.stores, SUPPORT)

    assert sent.kind is AlertKind.RELEASE
    assert sent_mail(world)[-1][2]["Subject"] == f"Resolved: {SUPPORT} was deleted, its hold is over"


def test_a_hostile_server_reply_is_bounded_and_stays_in_the_body(world):
    hold(world)
    address = world.address()
    address.last_error = ("auth_failed: smtp.acme.test refused the credentials (535 " + "A" * 5000 +
                          "\r\nBcc: victim@example.org). Notifications are held until the credentials change. "
                          "What to do: call us")
    world.stores.directory.put_address(address)

    holds.sync_address(world.stores, SUPPORT)

    [(_, to, message)] = sent_mail(world)
    assert to == ADMINS and message["Bcc"] is None
    assert len(message.get_content()) < 3 * mail.REASON_LIMIT


@pytest.mark.parametrize(("last_error", "reason", "fix"), [
    ("auth_failed: smtp.office365.com refused the credentials (535 5.7.139 SmtpClientAuthentication is disabled). "
     "Notifications are held until the credentials change. What to do: Enable SMTP AUTH for the mailbox.",
     "smtp.office365.com refused the credentials (535 5.7.139 SmtpClientAuthentication is disabled).",
     "Enable SMTP AUTH for the mailbox."),
    (None, "the mail server refused Relaydesk's sign-in", mail.DEFAULT_FIX),
    ("something else entirely", "something else entirely", mail.DEFAULT_FIX),
])
def test_reason_and_fix_come_out_of_the_last_error(last_error, reason, fix):
    assert mail.reason_and_fix(last_error) == (reason, fix)


def test_the_alert_code_has_no_route_to_a_smarthost():
    """Not through the held connector, by construction: nothing under relaydesk/alerts/ imports the SMTP side."""
    import ast
    from pathlib import Path

    import relaydesk.alerts

    smtp_side = {"relaydesk.outbound.connector", "relaydesk.outbound.session", "relaydesk.outbound.delivery",
                 "relaydesk.outbound.smtp", "relaydesk.outbound.pool",
                 "relaydesk.outbound.auth", "relaydesk.outbound.relay", "aiosmtplib", "smtplib"}
    imported = set()
    for path in Path(relaydesk.alerts.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
    assert imported & smtp_side == set()


def test_a_tls_hold_is_announced_as_such_with_its_reason_and_fix(world):
    state.change(world.stores, "A1", SUPPORT, state.Hold(
        state.HoldReason.TLS, "tls_failed: smtp.acme.test did not offer STARTTLS; nothing was sent. Notifications are "
        "held until the smarthost's TLS works again. What to do: Enable STARTTLS on the smarthost."))

    sent = holds.sync_address(world.stores, SUPPORT)

    body = sent_mail(world)[-1][2].get_content()
    assert sent.kind is AlertKind.HOLD and "could not reach your mail server securely" in body
    assert "Why: smtp.acme.test did not offer STARTTLS; nothing was sent." in body
    assert "What to do: Enable STARTTLS on the smarthost." in body and "tls_failed:" not in body
