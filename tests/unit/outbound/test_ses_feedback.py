"""SES's bounces and complaints for Relaydesk's own outbound: recorded on the notification they are about, the
recipient suppressed for the account, and the relay sends to that recipient no more (by any route) and says why."""

from __future__ import annotations

from dataclasses import replace

import pytest
from relaydesk.inbound.classify import email_id_alias
from relaydesk.markers import message_id_for
from relaydesk.outbound import feedback
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.suppression import Suppression, SuppressionReason
from relaydesk.store.memory import MemorySuppressions
from relaydesk.store.ses import is_sending_paused
from relaydesk.tickets.model import DeliveryStatus, NotificationRecord

from tests.unit.outbound.kit import SUPPORT, make_world, sqs_record


@pytest.fixture
def world(memory_stores):
    world = make_world(memory_stores)
    world.stores = replace(world.stores, suppressions=MemorySuppressions())
    return world


def sent(world, notification) -> None:
    """What inbound does before it queues a notification: the record, and our Message-ID and Email-Id linked."""
    world.stores.tickets.put_notification(world.ticket.ticket_id, NotificationRecord(
        notification_id=notification.notification_id, message_id=message_id_for(notification.notification_id,
                                                                                 "acme.test"),
        recipients=notification.recipients))
    world.stores.tickets.link_message_id(email_id_alias(notification.notification_id), world.ticket.ticket_id)


def ses_event(kind: str, notification_id: str | None, recipients: list[str], *, bounce_type: str = "Permanent",
              account_id: str = "A1") -> dict:
    headers = [{"name": "From", "value": "Acme <support@acme.mail.relaydesk.test>"},
               {"name": "X-Relaydesk-From-Account-Id", "value": account_id}]
    if notification_id:
        headers.append({"name": "X-Relaydesk-Email-Id", "value": notification_id})
    message = {"eventType": kind, "mail": {"messageId": "0100018c-ses-id", "headers": headers}}
    if kind == "Bounce":
        message["bounce"] = {"bounceType": bounce_type, "reportingMTA": "dsn; a8-30.smtp-out.amazonses.com",
                             "bouncedRecipients": [{"emailAddress": r, "status": "5.1.1", "action": "failed",
                                                    "diagnosticCode": "smtp; 550 5.1.1 user unknown"}
                                                   for r in recipients]}
    else:
        message["complaint"] = {"complaintFeedbackType": "abuse",
                                "complainedRecipients": [{"emailAddress": r} for r in recipients]}
    return message


def test_a_permanent_bounce_is_recorded_on_its_notification_and_suppresses_the_recipient(world):
    notification = world.notification()
    sent(world, notification)

    result = feedback.apply(world.stores, ses_event("Bounce", notification.notification_id, ["jane@example.net"]))

    assert result.recorded and result.suppressed == ["jane@example.net"]
    record = world.record(notification)
    assert record.status is DeliveryStatus.BOUNCED
    assert record.reports[0]["diagnostic_code"] == "smtp; 550 5.1.1 user unknown"
    [entry] = world.stores.suppressions.list("A1")
    assert (entry.reason, entry.notification_id) == (SuppressionReason.BOUNCE, notification.notification_id)
    again = feedback.apply(world.stores, ses_event("Bounce", notification.notification_id, ["jane@example.net"]))
    assert again.recorded and len(world.record(notification).reports) == 1  # SNS may deliver twice


def test_a_transient_bounce_is_recorded_but_suppresses_nobody(world):
    notification = world.notification()
    sent(world, notification)

    result = feedback.apply(world.stores, ses_event("Bounce", notification.notification_id, ["jane@example.net"],
                                                    bounce_type="Transient"))

    assert result.recorded and result.suppressed == [] and world.stores.suppressions.list("A1") == []
    assert world.record(notification).reports[0]["action"] == "delayed"


def test_a_complaint_suppresses_the_recipient_and_leaves_the_delivery_status(world):
    notification = world.notification()
    sent(world, notification)
    status = world.record(notification).status

    result = feedback.apply(world.stores, ses_event("Complaint", notification.notification_id, ["jane@example.net"]))

    assert result.suppressed == ["jane@example.net"] and world.record(notification).status is status
    assert world.stores.suppressions.list("A1")[0].reason is SuppressionReason.COMPLAINT


def test_a_report_that_names_no_account_of_ours_suppresses_nothing(world):
    result = feedback.apply(world.stores, ses_event("Bounce", None, ["jane@example.net"], account_id="A-unknown"))

    assert result.suppressed == [] and world.stores.suppressions.list("A1") == []


def test_a_hostile_report_is_bounded(world):
    event = ses_event("Bounce", "N" + "0" * 18, [f"r{n}@example.net" for n in range(5000)] + ["bad\r\nBcc: x"])
    event["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "x" * 100_000
    event["mail"]["headers"] *= 1000

    result = feedback.apply(world.stores, event)

    assert len(result.suppressed) == feedback.MAX_RECIPIENTS
    assert all(len(s.detail) <= 500 for s in world.stores.suppressions.list("A1"))
    assert not result.recorded  # no ticket has that notification


def test_the_relay_leaves_a_suppressed_recipient_out_and_says_why(world):
    world.stores.suppressions.add(Suppression(account_id="A1", recipient="jane@example.net",
                                              reason=SuppressionReason.BOUNCE, detail="550 5.1.1 user unknown"))
    notification = world.notification(recipients=["jane@example.net", "bob@example.net"])

    [result] = world.relay().relay_batch([sqs_record(notification)])

    assert result.result.outcome is Outcome.DELIVERED
    [(_, recipients, data)] = world.smarthost.transactions
    assert recipients == ["bob@example.net"] and b"jane@example.net" not in data
    refusal = world.record(notification).attempts[-1].refused
    assert [r.recipient for r in refusal] == ["jane@example.net"]
    assert "bounced permanently" in refusal[0].reply and "relaydesk suppressions remove" in refusal[0].reply


def test_a_notification_for_suppressed_recipients_only_is_failed_without_a_connection(world):
    world.stores.suppressions.add(Suppression(account_id="A1", recipient="jane@example.net",
                                              reason=SuppressionReason.COMPLAINT))
    notification = world.notification()

    [result] = world.relay().relay_batch([sqs_record(notification)])

    assert result.result.outcome is Outcome.FAILED and not result.failed  # recorded, not retried
    assert world.smarthost.connections == 0
    record = world.record(notification)
    assert record.status is DeliveryStatus.FAILED and "marked our mail as spam" in record.attempts[-1].reply
    assert record.recipients == ["jane@example.net"]


def test_suppression_belongs_to_one_account(world):
    world.stores.suppressions.add(Suppression(account_id="OTHER", recipient="jane@example.net",
                                              reason=SuppressionReason.BOUNCE))

    [result] = world.relay().relay_batch([sqs_record(world.notification())])

    assert result.result.outcome is Outcome.DELIVERED


@pytest.mark.parametrize(("reply", "paused"), [
    ("AccountSendingPausedException: Email sending is disabled for this account", True),
    ("ConfigurationSetSendingPausedException: sending paused for relaydesk-outbound", True),
    ("MessageRejected: Email address is not verified", False),
])
def test_sending_paused_is_told_apart_from_a_rejected_message(reply, paused):
    assert is_sending_paused(reply) is paused


def test_sending_paused_defers_the_notification_instead_of_failing_it(memory_stores):
    from botocore.exceptions import ClientError
    from relaydesk.errors import TransientDeliveryError
    from relaydesk.store.ses import SesRawOutbound

    class Paused:
        def send_raw_email(self, **_):
            raise ClientError({"Error": {"Code": "AccountSendingPausedException", "Message": "paused"}},
                              "SendRawEmail")

    with pytest.raises(TransientDeliveryError) as raised:
        SesRawOutbound(Paused(), "relaydesk-outbound").send_raw("a@b.test", ["c@d.test"], b"x")
    assert is_sending_paused(raised.value.server_reply)
    assert SUPPORT  # the kit's address (imported for the world above)
