"""The relay with a fake smarthost (no sockets): each answer ends where an operator expects, on the ticket and in
the SQS batch response."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.addresses.model import AddressKind, ConnectorState
from relaydesk.errors import TransientDeliveryError
from relaydesk.notification import AttachmentRef, NotificationKind
from relaydesk.outbound import ses as ses_module
from relaydesk.outbound.batch import batch_response
from relaydesk.outbound.policy import Outcome, retry_delay
from relaydesk.store.memory import MemoryRetryDelay
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import SUPPORT, FakeSession, make_world, sqs_record


@pytest.fixture
def world(memory_stores):
    return make_world(memory_stores)


def test_accepted_mail_is_delivered_and_the_queue_id_is_on_the_ticket(world):
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED and not result.failed
    [(envelope_from, recipients, data)] = world.smarthost.transactions
    assert (envelope_from, recipients) == (SUPPORT, ["jane@example.net"])
    assert message_from_bytes(data, policy=default)["X-Relaydesk-Email-Id"] == notification.notification_id
    record = world.record(notification)
    assert record.status is DeliveryStatus.DELIVERED
    assert "queued as FAKE1" in record.attempts[-1].reply
    assert record.attempts[-1].route == "connector:smtp.acme.test:587"


def test_a_temporary_refusal_is_retried_with_a_growing_delay(world):
    world.smarthost.replies = [(451, "4.3.0 try again later")]
    notification = world.notification()
    results = world.relay().relay_batch([sqs_record(notification, receive_count=2)])
    delays = MemoryRetryDelay()
    response = batch_response(results, delays)
    assert response == {"batchItemFailures": [{"itemIdentifier": f"m-{notification.notification_id}"}]}
    assert delays.calls == [("rh-2", retry_delay(2))]
    attempt = world.record(notification).attempts[-1]
    assert (attempt.status, attempt.smtp_code, attempt.enhanced_status) == (DeliveryStatus.DEFERRED, 451, "4.3.0")


def test_the_last_temporary_failure_goes_to_the_dlq_at_once_and_the_ticket_says_so(world):
    world.smarthost.replies = [(421, "4.4.2 closing")]
    notification = world.notification()
    [result] = world.relay(max_attempts=5).relay_batch([sqs_record(notification, receive_count=5)])
    assert result.failed and result.last_attempt and result.retry_in == 0
    assert "dead-letter queue" in world.record(notification).attempts[-1].reply


def test_a_permanent_refusal_is_recorded_and_never_retried(world):
    world.smarthost.replies = [(550, "5.1.1 <jane@example.net>: mailbox unavailable")]
    notification = world.notification()
    relay = world.relay()
    [result] = relay.relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.FAILED and not result.failed
    attempt = world.record(notification).attempts[-1]
    assert (attempt.status, attempt.smtp_code, attempt.enhanced_status) == (DeliveryStatus.FAILED, 550, "5.1.1")
    relay.relay_batch([sqs_record(notification, receive_count=2)])  # SQS delivers it again
    assert len(world.smarthost.transactions) == 0 and len(world.record(notification).attempts) == 1


def test_a_duplicate_sqs_delivery_makes_no_second_smtp_transaction(world):
    notification = world.notification()
    relay = world.relay()
    relay.relay_batch([sqs_record(notification)])
    [again] = relay.relay_batch([sqs_record(notification, message_id="another-sqs-id")])
    assert again.result.outcome is Outcome.DELIVERED and again.result.duplicate
    assert len(world.smarthost.transactions) == 1
    assert len(world.record(notification).attempts) == 1


def test_a_connection_lost_after_the_final_dot_is_retried_with_the_same_message_id(world):
    world.smarthost.replies = [(None, "")]
    notification = world.notification()
    relay = world.relay()
    [first] = relay.relay_batch([sqs_record(notification)])
    assert first.failed
    [second] = relay.relay_batch([sqs_record(notification, receive_count=2)])
    assert second.result.outcome is Outcome.DELIVERED
    ids = {message_from_bytes(data, policy=default)["Message-ID"] for _, _, data in world.smarthost.transactions}
    assert len(world.smarthost.transactions) == 2 and len(ids) == 1
    assert [a.status for a in world.record(notification).attempts] == [DeliveryStatus.DEFERRED,
                                                                       DeliveryStatus.DELIVERED]


def test_with_one_connection_allowed_it_serves_every_notification_of_one_address_in_a_batch(world):
    notifications = [world.notification() for _ in range(3)]
    results = world.relay(connections_per_smarthost=1).relay_batch([sqs_record(n) for n in notifications])
    assert [r.result.outcome for r in results] == [Outcome.DELIVERED] * 3
    assert world.smarthost.connections == 1 and len(world.smarthost.transactions) == 3


def test_an_unreadable_sqs_message_is_kept_for_the_dlq_not_dropped(world):
    [result] = world.relay().relay_batch([{"messageId": "bad", "receiptHandle": "rh", "body": "{not json"}])
    assert result.failed and result.notification is None


@pytest.mark.parametrize("state", [ConnectorState.DISABLED, ConnectorState.PENDING])
def test_a_connector_that_is_not_active_falls_back_to_the_default_outbound(memory_stores, state):
    world = make_world(memory_stores, state=state)
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED and result.result.route == "ses"
    assert world.smarthost.transactions == []
    [(source, _destinations, data)] = world.stores.mailer.sent
    parsed = message_from_bytes(data, policy=default)
    assert source == "support@acme.mail.relaydesk.test" == parsed["From"].addresses[0].addr_spec
    assert parsed["Reply-To"].addresses[0].addr_spec == SUPPORT
    assert parsed["Auto-Submitted"] == "auto-generated"


def test_an_address_without_a_connector_sends_through_the_default_outbound(memory_stores):
    world = make_world(memory_stores, kind=AddressKind.FORWARDING)
    [result] = world.relay().relay_batch([sqs_record(world.notification())])
    assert result.result.route == "ses" and world.smarthost.transactions == []


def test_the_system_address_never_goes_through_a_connector(world):
    notification = world.notification(support_address="support@acme.mail.relaydesk.test")
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.route == "ses" and world.smarthost.transactions == []


def test_a_pending_connectors_verification_mail_goes_through_the_connector(memory_stores):
    world = make_world(memory_stores, state=ConnectorState.PENDING)
    notification = world.notification(kind=NotificationKind.VERIFICATION, ticket_id=None, recipients=[SUPPORT],
                                       verification_token="VTOKEN12345")
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.route.startswith("connector:") and len(world.smarthost.transactions) == 1


def test_over_the_ses_limit_attachments_become_links(memory_stores, monkeypatch):
    monkeypatch.setattr(ses_module, "SES_RAW_MESSAGE_LIMIT", 4000)
    world = make_world(memory_stores, kind=AddressKind.FORWARDING)
    world.stores.blobs.put("attachments/A1/T1/C1/01-big.bin", b"x" * 5000)
    ref = AttachmentRef(filename="big.bin", size=5000, s3_key="attachments/A1/T1/C1/01-big.bin")
    [result] = world.relay().relay_batch([sqs_record(world.notification(attachments=[ref]))])
    assert result.result.outcome is Outcome.DELIVERED
    parsed = message_from_bytes(world.stores.mailer.sent[0][2], policy=default)
    assert list(parsed.iter_attachments()) == [] and "big.bin: https://" in parsed.get_body(("plain",)).get_content()


def test_a_message_too_big_even_with_links_is_a_recorded_failure(memory_stores, monkeypatch):
    monkeypatch.setattr(ses_module, "SES_RAW_MESSAGE_LIMIT", 4000)
    world = make_world(memory_stores, kind=AddressKind.FORWARDING)
    notification = world.notification(text_body="y" * 6000)
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.FAILED and not result.failed
    assert world.stores.mailer.sent == []
    record = world.record(notification)
    assert record.status is DeliveryStatus.FAILED and "limit" in record.attempts[-1].reply


def test_nothing_starts_when_the_invocation_is_about_to_time_out(world):
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)], remaining_ms=lambda: 2000)
    assert result.failed and "time out" in result.result.reply
    assert world.smarthost.transactions == [] and world.smarthost.connections == 0


def test_an_unexpected_error_defers_its_own_record_and_spares_the_rest(world, monkeypatch):
    broken, fine = world.notification(), world.notification()
    calls = {"n": 0}

    def flaky_compose(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("surprise")
        return real_compose(*args, **kwargs)

    from relaydesk.outbound import delivery as relay_module

    real_compose = relay_module.compose
    monkeypatch.setattr(relay_module, "compose", flaky_compose)
    results = world.relay().relay_batch([sqs_record(broken), sqs_record(fine)])
    assert [r.failed for r in results] == [True, False]
    assert "RuntimeError" in results[0].result.reply
    assert len(world.smarthost.transactions) == 1


def test_a_smarthost_that_cannot_be_reached_is_tried_once_per_batch_and_the_address_says_why(world, monkeypatch):
    async def unreachable(session):
        session.host.connections += 1
        raise TransientDeliveryError("could not connect to connector:smtp.acme.test:587: ConnectionRefusedError")

    monkeypatch.setattr(FakeSession, "open", unreachable)
    results = world.relay().relay_batch([sqs_record(world.notification()) for _ in range(3)])
    assert [r.failed for r in results] == [True, True, True]
    assert world.smarthost.connections == 1
    assert "could not connect" in world.address().last_error


def test_a_recipient_refused_for_now_gets_its_own_copy_later_and_the_others_are_not_sent_twice(world):
    world.smarthost.refuse = {"bob@example.net": "452 4.2.2 Mailbox full"}
    notification = world.notification(cc=["bob@example.net"])
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED and not result.failed
    [(_, accepted, _)] = world.smarthost.transactions
    assert accepted == ["jane@example.net"]
    [(follow_up, delay)] = world.stores.queue.sent
    assert (follow_up.recipients, follow_up.cc, delay) == (["bob@example.net"], [], retry_delay(1))
    assert follow_up.notification_id != notification.notification_id and follow_up.subject == notification.subject
    assert world.record(follow_up).status is DeliveryStatus.QUEUED
    assert follow_up.notification_id in world.record(notification).attempts[-1].reply

    world.smarthost.refuse = {}
    world.relay().relay_batch([sqs_record(follow_up)])
    assert world.smarthost.transactions[-1][1] == ["bob@example.net"]
    assert world.record(follow_up).status is DeliveryStatus.DELIVERED


def test_a_recipient_refused_for_good_is_recorded_and_not_retried(world):
    world.smarthost.refuse = {"bob@example.net": "550 5.1.1 No such user"}
    notification = world.notification(cc=["bob@example.net"])
    world.relay().relay_batch([sqs_record(notification)])
    assert world.stores.queue.sent == []
    [refused] = world.record(notification).attempts[-1].refused
    assert (refused.recipient, refused.smtp_code, refused.enhanced_status) == ("bob@example.net", 550, "5.1.1")


def test_a_mail_too_big_with_attachments_goes_again_with_links(world):
    world.stores.blobs.put("attachments/A1/T1/C1/01-big.bin", b"x" * 3000)
    ref = AttachmentRef(filename="big.bin", size=3000, s3_key="attachments/A1/T1/C1/01-big.bin")
    world.smarthost.replies = [(552, "5.3.4 Message size exceeds fixed maximum message size")]
    notification = world.notification(attachments=[ref])
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.DELIVERED
    [(_, _, data)] = world.smarthost.transactions
    parsed = message_from_bytes(data, policy=default)
    assert list(parsed.iter_attachments()) == [] and "big.bin: https://" in parsed.get_body(("plain",)).get_content()
    assert "links instead of attachments" in world.record(notification).attempts[-1].reply


def test_a_mail_too_big_without_attachments_is_a_recorded_failure(world):
    world.smarthost.replies = [(552, "5.3.4 Message size exceeds fixed maximum message size")]
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.FAILED and world.smarthost.transactions == []


def test_signing_on_without_keys_defers_the_notification_and_tells_the_admin_what_to_do(world):
    address = world.stores.directory.get_address(SUPPORT)
    address.dkim.enabled, address.dkim.domain = True, "acme.test"
    world.stores.directory.put_address(address)
    notification = world.notification()

    [result] = world.relay().relay_batch([sqs_record(notification)])

    assert result.failed and result.result.outcome is Outcome.DEFERRED
    assert world.smarthost.transactions == []  # never sent unsigned
    assert "relaydesk dkim setup" in world.stores.directory.get_address(SUPPORT).last_error
    assert world.record(notification).attempts[-1].status is DeliveryStatus.DEFERRED


def test_a_message_that_cannot_be_signed_fails_for_good_instead_of_looping(world, monkeypatch):
    from relaydesk.errors import DkimSigningError
    from relaydesk.outbound import delivery as relay_module

    class Refusing:
        def sign(self, message: bytes) -> bytes:
            raise DkimSigningError("the message has no From header")

    monkeypatch.setattr(relay_module.dkim, "signer_for", lambda address, secrets: Refusing())
    notification = world.notification()

    [result] = world.relay().relay_batch([sqs_record(notification)])

    assert result.result.outcome is Outcome.FAILED and not result.failed
    assert world.smarthost.transactions == []
    assert world.record(notification).status is DeliveryStatus.FAILED


@pytest.mark.parametrize("key", ["attachments/A2/T1/C1/01-theirs.pdf", "inbound/ses-message-id",
                                 "attachments/A1/../A2/T1/C1/01-x.pdf", "attachments/A10/T1/C1/01-prefix.pdf"])
def test_an_attachment_outside_the_notifications_own_account_is_never_fetched_and_fails_it(world, key):
    world.stores.blobs.put(key, b"another account's invoice")
    notification = world.notification(attachments=[AttachmentRef(filename="invoice.pdf", s3_key=key)])

    [result] = world.relay().relay_batch([sqs_record(notification)])

    assert result.result.outcome is Outcome.FAILED
    assert "not stored under its account's prefix" in result.result.reply
    assert world.smarthost.transactions == []
    assert world.record(notification).status.value == "failed"  # recorded on the ticket
