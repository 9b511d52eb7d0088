"""The relay function against real local smarthosts (STARTTLS/TLS + AUTH, local CA) and moto built from
template.yaml: what each server answer does on the wire, on the ticket and in the queue."""

from __future__ import annotations

import json
import time
from email import message_from_bytes
from email.policy import default

import pytest
from relaydesk.addresses.model import (
    ConnectorState,
)
from relaydesk.credentials import TlsMode
from relaydesk.notification import Notification
from relaydesk.tickets.model import DeliveryStatus

from local.lambdas import load
from tests.integration.relay_harness import ACCOUNT, record_signatures, relay_harness


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    yield from relay_harness(aws_stack_env, monkeypatch)


def _parsed(received):
    return message_from_bytes(received.data, policy=default)


# --- delivered --------------------------------------------------------------------------------------------------

def test_accepted_mail_goes_over_starttls_with_auth_and_the_queue_id_is_on_the_ticket(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    [received] = smarthost.received
    assert received.tls and received.auth_user == smarthost.username
    assert (received.mail_from, received.rcpt_tos) == ("support@acme.test", ["jane@example.net"])
    parsed = _parsed(received)
    for header, value in {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All",
                          "X-Mailer": "Relaydesk Mailer", "X-Relaydesk-From-Account-Id": ACCOUNT,
                          "X-Relaydesk-Email-Id": notification.notification_id}.items():
        assert parsed[header] == value
    assert parsed["Message-ID"] == f"<{notification.notification_id}@acme.test>"
    record = relay.record(notification)
    assert record.status is DeliveryStatus.DELIVERED
    assert received.reply in record.attempts[-1].reply  # "250 2.0.0 Ok: queued as <id>"
    assert relay.failures() == [] and relay.queued() == 0


def test_port_465_uses_implicit_tls(relay, make_smarthost):
    server = make_smarthost(mode="implicit")
    relay.connect("support@acme.test", server, tls=TlsMode.IMPLICIT)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert len(server.received) == 1 and server.received[0].tls
    assert relay.record(notification).status is DeliveryStatus.DELIVERED


def test_the_wire_carries_exactly_the_signed_bytes(relay, smarthost, monkeypatch):
    signed = record_signatures(monkeypatch)
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    assert [r.data for r in smarthost.received] == signed


def test_each_smarthost_gets_its_own_connections_and_different_smarthosts_are_served_at_once(relay, make_smarthost):
    # Two mailboxes (the shaper counts a mailbox by its smarthost and login), each allowed 3 connections.
    first, second = make_smarthost(username="support@acme.test"), make_smarthost(username="help@globex.test")
    relay.connect("support@acme.test", first, provider="microsoft365")
    relay.connect("help@globex.test", second, provider="microsoft365")
    for server in (first, second):
        server.faults.stall("EHLO", 2.5, times=1)  # under the 3 s command timeout
    relay.enqueue(*[relay.notification("support@acme.test") for _ in range(5)],
                  *[relay.notification("help@globex.test") for _ in range(5)])
    assert relay.poll() == 10  # one batch
    assert len(first.received) == 5 and len(second.received) == 5
    # Per smarthost: the first connection delivered one (its next one claimed and prepared meanwhile, at most two
    # more taken by then), then two more opened for the three or more left (each one AUTH).
    assert (first.stats.connections, second.stats.connections) == (3, 3)
    assert (first.stats.auth_attempts, second.stats.auth_attempts) == (3, 3)
    # Served one after the other, the second server's first mail would come 2.5 s (its stall) after the first's.
    assert abs(first.received[0].received_at - second.received[0].received_at) < 1.5


def test_partial_recipient_refusals_are_recorded_per_recipient(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply("RCPT", "550 5.1.1 <bob@example.net>: no such user", recipient="bob@example.net")
    notification = relay.notification("support@acme.test", cc=["bob@example.net"])
    relay.enqueue(notification)
    relay.poll()
    assert smarthost.received[0].rcpt_tos == ["jane@example.net"]
    attempt = relay.record(notification).attempts[-1]
    assert attempt.status is DeliveryStatus.DELIVERED
    assert [(r.recipient, r.smtp_code, r.enhanced_status) for r in attempt.refused] == [
        ("bob@example.net", 550, "5.1.1")]


def test_a_recipient_refused_for_now_is_retried_alone_and_the_accepted_one_is_not_sent_twice(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply("RCPT", "452 4.2.2 Mailbox full", recipient="bob@example.net", times=1)
    notification = relay.notification("support@acme.test", cc=["bob@example.net"])
    relay.enqueue(notification)
    relay.poll()
    assert [r.rcpt_tos for r in smarthost.received] == [["jane@example.net"]]
    ticket = relay.stores.tickets.get_ticket(relay.ticket.ticket_id)
    [follow_up] = [n for n in ticket.notifications if n.notification_id != notification.notification_id]
    assert follow_up.recipients == ["bob@example.net"] and follow_up.status is DeliveryStatus.QUEUED
    delayed = relay.sqs.get_queue_attributes(QueueUrl=relay.stores.settings.notifications_queue_url,
                                             AttributeNames=["ApproximateNumberOfMessagesDelayed"])
    assert delayed["Attributes"]["ApproximateNumberOfMessagesDelayed"] == "1"  # waits its retry delay


# --- transient ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "reply"), [("MAIL", "421 4.3.2 Service shutting down"),
                                                ("DATA", "451 4.3.0 Temporary failure"),
                                                ("RCPT", "452 4.5.3 Too many recipients")])
def test_temporary_refusals_are_retried_later_and_then_delivered(relay, smarthost, command, reply):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply(command, reply, times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert len(relay.failures()) == 1 and smarthost.received == []
    attempt = relay.record(notification).attempts[-1]
    assert (attempt.status, attempt.smtp_code) == (DeliveryStatus.DEFERRED, int(reply[:3]))
    assert attempt.enhanced_status == reply.split()[1]
    assert relay.poll() == 0  # not visible again yet: the delay holds it back
    relay.time_passes()
    relay.poll()
    assert len(smarthost.received) == 1
    assert relay.record(notification).status is DeliveryStatus.DELIVERED and relay.queued() == 0


def test_a_connection_dropped_after_the_final_dot_is_sent_again_with_the_same_message_id(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.drop_after_data(times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert len(relay.failures()) == 1 and len(smarthost.received) == 1  # the server may have it: it does here
    relay.time_passes()
    relay.poll()
    assert len(smarthost.received) == 2
    assert {_parsed(r)["Message-ID"] for r in smarthost.received} == {f"<{notification.notification_id}@acme.test>"}
    assert [a.status for a in relay.record(notification).attempts] == [DeliveryStatus.DEFERRED,
                                                                       DeliveryStatus.DELIVERED]
    assert "may have accepted" in relay.record(notification).attempts[0].reply


def test_a_stalled_server_times_out_and_the_notification_is_deferred(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.stall("DATA", 6.0, times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    started = time.monotonic()
    relay.poll()
    assert time.monotonic() - started < 5.5  # the data timeout (2 s here), not the server's stall
    assert len(relay.failures()) == 1
    assert relay.record(notification).status is DeliveryStatus.DEFERRED


def test_after_the_last_attempt_the_notification_waits_in_the_dlq_with_everything_to_resend(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply("DATA", "451 4.3.0 Temporary failure")
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    for _ in range(relay.stores.settings.max_delivery_attempts):
        relay.poll()
        relay.time_passes()
    assert relay.poll() == 0  # SQS's redrive took it on its next receive
    dlq = relay.stores.settings.notifications_dlq_url
    [message] = relay.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10).get("Messages", [])
    assert Notification.model_validate_json(message["Body"]) == notification
    record = relay.record(notification)
    assert len(record.attempts) == relay.stores.settings.max_delivery_attempts
    assert "dead-letter queue" in record.attempts[-1].reply
    assert relay.queued(dlq) == 1  # still there after a look


def test_dlq_list_shows_what_waits_and_redrive_sends_it_again(relay, smarthost, capsys):
    from relaydesk.cli import main

    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply("DATA", "451 4.3.0 Temporary failure")
    stuck, other = relay.notification("support@acme.test"), relay.notification("support@acme.test")
    relay.enqueue(stuck, other)
    for _ in range(relay.stores.settings.max_delivery_attempts):
        relay.poll()
        relay.time_passes()
    relay.poll()
    capsys.readouterr()

    assert main(["dlq", "list", "--json"]) == 0
    rows = {row["notification"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {stuck.notification_id, other.notification_id}
    row = rows[stuck.notification_id]
    assert (row["ticket"], row["address"], row["recipients"]) == (
        relay.ticket.ticket_id, "support@acme.test", "jane@example.net")
    assert "451 4.3.0" in row["last_error"]

    smarthost.faults.clear()  # the operator fixed the smarthost
    assert main(["dlq", "redrive", "--notification-id", stuck.notification_id]) == 0
    assert relay.queued(relay.stores.settings.notifications_dlq_url) == 1  # the other one stays
    relay.poll()
    assert [_parsed(r)["X-Relaydesk-Email-Id"] for r in smarthost.received] == [stuck.notification_id]
    assert relay.record(stuck).status is DeliveryStatus.DELIVERED

    assert main(["dlq", "redrive", "--notification-id", "N0000000000NOTTHERE"]) != 0
    assert main(["dlq", "redrive", "--all"]) == 0
    relay.poll()
    assert relay.record(other).status is DeliveryStatus.DELIVERED


# --- permanent ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("command", "reply"), [("RCPT", "550 5.1.1 No such user"),
                                                ("DATA", "552 5.3.4 Message too big for system"),
                                                ("DATA", "554 5.7.1 Message rejected as spam")])
def test_permanent_refusals_are_recorded_and_never_retried(relay, smarthost, command, reply):
    relay.connect("support@acme.test", smarthost)
    smarthost.faults.reply(command, reply)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert relay.failures() == [] and relay.queued() == 0
    transactions = smarthost.stats.transactions
    attempt = relay.record(notification).attempts[-1]
    assert (attempt.status, attempt.smtp_code, attempt.enhanced_status) == (
        DeliveryStatus.FAILED, int(reply[:3]), reply.split()[1])
    relay.enqueue(notification)  # even a duplicate delivery does not try again
    relay.poll()
    assert smarthost.stats.transactions == transactions and smarthost.received == []


# --- TLS ------------------------------------------------------------------------------------------------------

def test_no_starttls_means_nothing_is_sent_and_no_credentials_leave(relay, make_smarthost):
    server = make_smarthost(mode="none")
    relay.connect("support@acme.test", server)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert (server.stats.auth_attempts, server.stats.mail_commands, server.received) == (0, 0, [])
    assert relay.failures() == [] and relay.queued() == 0  # parked behind the hold, not retried until the DLQ
    assert relay.record(notification).status is DeliveryStatus.HELD
    address = relay.stores.directory.get_address("support@acme.test")
    assert address.connector.state is ConnectorState.TLS_FAILED and "STARTTLS" in address.last_error


def test_a_certificate_for_another_host_is_refused_before_auth(relay, make_smarthost):
    server = make_smarthost(cert_names=["wrong.example.net"])
    relay.connect("support@acme.test", server)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert (server.stats.auth_attempts, server.received) == (0, [])
    assert relay.record(notification).status is DeliveryStatus.HELD
    address = relay.stores.directory.get_address("support@acme.test")
    assert address.connector.state is ConnectorState.TLS_FAILED and "certificate" in address.last_error


# --- exactly once -----------------------------------------------------------------------------------------------

def test_duplicate_sqs_deliveries_make_one_smtp_transaction(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification, notification, notification)
    while relay.poll():
        pass
    assert smarthost.stats.transactions == 1 and len(smarthost.received) == 1
    assert len(relay.record(notification).attempts) == 1 and relay.queued() == 0


# --- credentials ------------------------------------------------------------------------------------------------

def test_credentials_changed_mid_stream_hold_then_everything_goes_once_the_secret_is_updated(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    assert len(smarthost.received) == 1

    smarthost.set_password(smarthost.username, "changed-on-the-server-1")  # someone changed it on the server
    relay.connections_idle_out()  # the warm connection authenticated before the change would still deliver
    waiting = [relay.notification("support@acme.test") for _ in range(3)]
    relay.enqueue(*waiting)
    relay.poll()
    address = relay.stores.directory.get_address("support@acme.test")
    assert address.connector.state is ConnectorState.AUTH_FAILED and "535" in address.last_error
    assert relay.failures() == [] and relay.queued() == 0  # parked, not retried hot
    assert {relay.record(n).status for n in waiting} == {DeliveryStatus.HELD}
    assert len(smarthost.failed_logins(smarthost.password)) == 1  # one refusal of the version the secret holds
    auth_attempts = smarthost.stats.auth_attempts
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    assert smarthost.stats.auth_attempts == auth_attempts  # same secret, same refusal: not tried again

    relay.rotate("support@acme.test", smarthost, "changed-on-the-server-1")  # the admin updates the secret
    last = relay.notification("support@acme.test")
    relay.enqueue(last)
    while relay.poll():
        pass
    assert len(smarthost.received) == 1 + 3 + 1 + 1  # none lost
    assert relay.stores.directory.get_address("support@acme.test").connector.state is ConnectorState.ACTIVE
    assert {relay.record(n).status for n in [*waiting, last]} == {DeliveryStatus.DELIVERED}


def test_no_password_in_logs_responses_or_ticket(relay, smarthost, capsys):
    import io
    import logging

    from local.lambdas import load

    logger = load("relay").logger
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    try:
        relay.connect("support@acme.test", smarthost)
        relay.enqueue(relay.notification("support@acme.test"))
        relay.poll()
        old_password = smarthost.password
        smarthost.set_password(smarthost.username, "Server-Side-New-Pw-9")
        relay.connections_idle_out()
        notification = relay.notification("support@acme.test")
        relay.enqueue(notification)
        relay.poll()
    finally:
        logger.removeHandler(handler)
    captured = capsys.readouterr()
    everything = lines.getvalue() + captured.out + captured.err + json.dumps(relay.responses)
    everything += relay.record(notification).model_dump_json()
    everything += relay.stores.directory.get_address("support@acme.test").model_dump_json()
    assert '"outcome":"delivered"' in lines.getvalue() and '"outcome":"held"' in lines.getvalue()
    assert old_password not in everything and "Server-Side-New-Pw-9" not in everything


# --- warm connection reuse ---------------------------------------------------------------------------------------

def _pool(relay):
    return load("relay").services(relay.stores)[0].pool


def test_two_invocations_of_a_warm_container_share_one_connection_and_one_auth(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    first, second = relay.notification("support@acme.test"), relay.notification("support@acme.test")
    relay.enqueue(first)
    relay.poll()
    relay.enqueue(second)
    relay.poll()
    assert len(smarthost.received) == 2
    assert smarthost.stats.auth_attempts == 1  # one login: every new connection authenticates (stats.connections
    # may also count the kit's own start-up probe, so the logins are what is counted)
    assert {relay.record(n).status for n in (first, second)} == {DeliveryStatus.DELIVERED}


def test_a_connection_idle_past_its_age_is_not_reused(relay, smarthost):
    from relaydesk.outbound.pool import MAX_IDLE_SECONDS

    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    pool = _pool(relay)
    pool.clock = lambda: time.monotonic() + MAX_IDLE_SECONDS + 1
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    assert len(smarthost.received) == 2
    assert smarthost.stats.auth_attempts == 2


def test_a_pooled_connection_found_closed_is_replaced_and_the_mail_goes_once(relay, smarthost):
    import socket

    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    [(_, _, session)] = _pool(relay)._idle
    session._smtp.transport.get_extra_info("socket").shutdown(socket.SHUT_RDWR)  # the connection dies idle
    deadline = time.monotonic() + 5
    while session.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert relay.failures() == [] and len(smarthost.received) == 2
    assert smarthost.stats.auth_attempts == 2
    assert [a.status for a in relay.record(notification).attempts] == [DeliveryStatus.DELIVERED]


def test_a_server_closing_a_pooled_connection_at_mail_from_is_retried_at_once_on_a_new_one(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    smarthost.faults.reply("MAIL", "421 4.4.2 Idle timeout, closing connection", times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    # Nothing of the transaction was accepted (refused at MAIL FROM): sent once, on a new connection, no deferral.
    assert relay.failures() == [] and len(smarthost.received) == 2
    assert smarthost.stats.auth_attempts == 2
    assert [a.status for a in relay.record(notification).attempts] == [DeliveryStatus.DELIVERED]


def test_a_pooled_connection_lost_after_the_final_dot_is_not_sent_again_at_once(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    smarthost.faults.drop_after_data(times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    # The server may have it (it does here): deferred with its Message-ID, never re-sent in the same breath.
    assert len(relay.failures()) == 1 and len(smarthost.received) == 2
    assert relay.record(notification).status is DeliveryStatus.DEFERRED


def test_a_pooled_connection_that_stalls_at_mail_from_is_deferred_not_resent_and_not_kept(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    smarthost.faults.stall("MAIL", 5.0, times=1)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    started = time.monotonic()
    relay.poll()
    # A stall is not a closed connection: one command timeout (3 s here), not a second try on a new connection.
    assert time.monotonic() - started < 4.5 and len(relay.failures()) == 1
    assert smarthost.stats.auth_attempts == 1 and len(_pool(relay)) == 0  # its state is doubtful: not pooled
    relay.time_passes()
    relay.poll()
    assert relay.record(notification).status is DeliveryStatus.DELIVERED and len(smarthost.received) == 2
    assert smarthost.stats.auth_attempts == 2


def test_a_new_password_on_the_server_and_in_the_secret_never_reuses_the_old_login(relay, smarthost):
    relay.connect("support@acme.test", smarthost)
    relay.enqueue(relay.notification("support@acme.test"))
    relay.poll()
    assert len(_pool(relay)) == 1
    relay.rotate("support@acme.test", smarthost, "rotated-by-the-admin-2")  # server first, then the secret
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert len(smarthost.received) == 2 and relay.record(notification).status is DeliveryStatus.DELIVERED
    assert (smarthost.stats.auth_attempts, smarthost.stats.auth_failures) == (2, 0)
    assert smarthost.received[-1].auth_user == smarthost.username


# --- fallback -------------------------------------------------------------------------------------------------

def test_a_disabled_connector_falls_back_to_ses_never_to_the_smarthost(relay, smarthost):
    relay.connect("support@acme.test", smarthost, state=ConnectorState.DISABLED)
    notification = relay.notification("support@acme.test")
    relay.enqueue(notification)
    relay.poll()
    assert (smarthost.stats.auth_attempts, smarthost.received) == (0, [])
    attempt = relay.record(notification).attempts[-1]
    assert (attempt.status, attempt.route) == (DeliveryStatus.DELIVERED, "ses")
    assert attempt.reply.startswith("SES message id ")
