"""The relay's mail transactions against the local smarthost (aiosmtpd, STARTTLS + AUTH): pipelined (RFC 2920) when
the server advertises PIPELINING, one command at a time when it does not, with what each recipient's reply did on
the ticket."""

from __future__ import annotations

import pytest
from relaydesk.tickets.model import DeliveryStatus

from tests.integration.relay_harness import relay_harness

SUPPORT = "support@acme.test"
JANE, BOB, CAROL = "jane@example.net", "bob@example.net", "carol@example.net"
VERBS = (b"MAIL FROM:", b"RCPT TO:", b"DATA\r\n", b"RSET\r\n", b".\r\n")


@pytest.fixture
def make_smarthost(make_smarthost):
    """These tests are about DATA: servers here advertise PIPELINING without CHUNKING (BDAT: test_chunking.py)."""
    return lambda **options: make_smarthost(**{"chunking": False, **options})


@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    yield from relay_harness(aws_stack_env, monkeypatch)


def _commands_per_read(server) -> list[list[bytes]]:
    """Per read of the server, the command lines it held (message bodies left out), reads without one left out."""
    reads = [[line for line in chunk.split(b"\r\n") if line and any((line + b"\r\n").startswith(v) for v in VERBS)]
             for _, chunk in server.reads]
    return [commands for commands in reads if commands]


def _envelopes(server) -> list[bytes]:
    return [chunk for _, chunk in server.reads if b"MAIL FROM:" in chunk]


def test_with_pipelining_advertised_the_envelope_goes_in_one_write_and_is_answered_in_one_round_trip(
        relay, make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    relay.connect(SUPPORT, server)
    notification = relay.notification(SUPPORT, cc=[BOB, CAROL])
    relay.enqueue(notification)
    relay.poll()

    # One read held MAIL FROM, every RCPT TO and DATA: the relay wrote them together and waited once for the three
    # replies; the body went next, so the envelope cost one round trip and the message two.
    assert _envelopes(server) == [b"MAIL FROM:<support@acme.test>\r\nRCPT TO:<jane@example.net>\r\n"
                                  b"RCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n"]
    [received] = server.received
    assert received.tls and received.rcpt_tos == [JANE, BOB, CAROL]
    attempt = relay.record(notification).attempts[-1]
    assert attempt.status is DeliveryStatus.DELIVERED and received.reply in attempt.reply


def test_without_pipelining_the_relay_falls_back_to_one_command_per_round_trip(relay, make_smarthost):
    server = make_smarthost(pipelining=False, record_reads=True)
    relay.connect(SUPPORT, server)
    notification = relay.notification(SUPPORT, cc=[BOB])
    relay.enqueue(notification)
    relay.poll()

    commands = _commands_per_read(server)
    assert all(len(read) == 1 for read in commands)  # each command waited for the reply to the one before it
    assert [read[0].split(b":")[0] for read in commands[:4]] == [b"MAIL FROM", b"RCPT TO", b"RCPT TO", b"DATA"]
    assert [r.rcpt_tos for r in server.received] == [[JANE, BOB]]
    assert relay.record(notification).status is DeliveryStatus.DELIVERED


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-at-a-time"])
def test_refused_recipients_are_recorded_each_with_its_reply_and_the_others_get_the_mail(relay, make_smarthost,
                                                                                         pipelining):
    server = make_smarthost(pipelining=pipelining, record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 <bob@example.net>: Recipient address rejected", recipient=BOB)
    server.faults.reply("RCPT", "553 5.7.1 <carol@example.net>: Relay access denied", recipient=CAROL)
    relay.connect(SUPPORT, server)
    notification = relay.notification(SUPPORT, recipients=[BOB, JANE], cc=[CAROL])
    relay.enqueue(notification)
    relay.poll()

    assert [r.rcpt_tos for r in server.received] == [[JANE]]
    attempt = relay.record(notification).attempts[-1]
    assert attempt.status is DeliveryStatus.DELIVERED
    assert [(r.recipient, r.smtp_code, r.enhanced_status, r.reply) for r in attempt.refused] == [
        (BOB, 550, "5.1.1", "550 5.1.1 <bob@example.net>: Recipient address rejected"),
        (CAROL, 553, "5.7.1", "553 5.7.1 <carol@example.net>: Relay access denied")]
    envelope = [b"MAIL FROM:<support@acme.test>", b"RCPT TO:<bob@example.net>", b"RCPT TO:<jane@example.net>",
                b"RCPT TO:<carol@example.net>", b"DATA"]
    reads = _commands_per_read(server)
    assert (reads[:1] == [envelope]) if pipelining else (reads[:5] == [[command] for command in envelope])


def test_every_recipient_refused_fails_that_notification_alone_and_the_connection_carries_the_next(
        relay, make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=BOB)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=CAROL)
    relay.connect(SUPPORT, server)
    refused = relay.notification(SUPPORT, recipients=[BOB], cc=[CAROL], subject="refused everywhere")
    after = relay.notification(SUPPORT)
    relay.enqueue(refused, after)
    relay.poll()

    attempt = relay.record(refused).attempts[-1]
    assert attempt.status is DeliveryStatus.FAILED and attempt.smtp_code == 550
    assert [(r.recipient, r.smtp_code) for r in attempt.refused] == [(BOB, 550), (CAROL, 550)]
    assert relay.record(after).status is DeliveryStatus.DELIVERED
    assert [r.rcpt_tos for r in server.received] == [[JANE]]
    assert sum(chunk.count(b"refused everywhere") for _, chunk in server.reads) == 0  # its body never left
    assert any(b"RSET\r\n" in chunk for _, chunk in server.reads)
    assert server.stats.auth_attempts == 1  # one connection carried both
    assert relay.failures() == []  # a permanent refusal is final: not retried


@pytest.mark.parametrize("reply, status, retried", [
    ("554 5.7.1 Message rejected by policy", DeliveryStatus.FAILED, False),
    ("451 4.3.0 Try again later", DeliveryStatus.DEFERRED, True)])
def test_a_refused_data_command_sends_no_body_and_resets_before_the_next_message(relay, make_smarthost, reply,
                                                                                 status, retried):
    server = make_smarthost(pipelining=True, record_reads=True)
    server.faults.refuse_data(reply, times=1)
    relay.connect(SUPPORT, server)
    first = relay.notification(SUPPORT, subject="refused at DATA")
    second = relay.notification(SUPPORT)
    relay.enqueue(first, second)
    relay.poll()

    attempt = relay.record(first).attempts[-1]
    assert attempt.status is status and attempt.smtp_code == int(reply[:3]) and reply in attempt.reply
    assert relay.record(second).status is DeliveryStatus.DELIVERED
    assert sum(chunk.count(b"refused at DATA") for _, chunk in server.reads) == 0  # RFC 2920 3.1: no body
    assert any(b"RSET\r\n" in chunk for _, chunk in server.reads)
    assert len(relay.failures()) == (1 if retried else 0)


def test_a_354_after_every_recipient_was_refused_gets_a_lone_dot_and_the_next_message_goes(relay, make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=BOB)
    server.faults.data_without_recipients(times=1)
    relay.connect(SUPPORT, server)
    refused = relay.notification(SUPPORT, recipients=[BOB], subject="nobody takes it")
    after = relay.notification(SUPPORT)
    relay.enqueue(refused, after)
    relay.poll()

    assert server.unaddressed == [b""]  # RFC 2920 3.1: "the client SMTP should send a single dot"
    assert relay.record(refused).status is DeliveryStatus.FAILED
    assert relay.record(after).status is DeliveryStatus.DELIVERED
    assert [r.rcpt_tos for r in server.received] == [[JANE]]
    assert sum(chunk.count(b"nobody takes it") for _, chunk in server.reads) == 0


def test_a_batch_for_one_mailbox_goes_over_three_pipelined_connections_each_notification_once(relay, make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.stall("MAIL", 0.1)  # a server some way off: the first connection does not finish alone meanwhile
    relay.connect(SUPPORT, server, provider="microsoft365")  # 3 connections per mailbox
    notifications = [relay.notification(SUPPORT) for _ in range(10)]
    relay.enqueue(*notifications)
    assert relay.poll() == 10

    assert server.stats.connections == 3 and server.stats.auth_attempts == 3  # each logged in once, over TLS
    assert all(received.tls for received in server.received)
    ids = [received.data.split(b"X-Relaydesk-Email-Id: ")[1].split(b"\r\n")[0].decode() for received in server.received]
    assert sorted(ids) == sorted(n.notification_id for n in notifications)  # each once, none twice
    assert {relay.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}
    assert relay.failures() == [] and relay.queued() == 0


def test_across_messages_each_next_envelope_rides_with_the_previous_final_dot_one_round_trip_a_message(
        relay, make_smarthost):
    from relaydesk.addresses.limits import set_limits
    from relaydesk.addresses.providers import LimitOverrides

    from tests.integration.relay_harness import ACCOUNT

    server = make_smarthost(pipelining=True, record_reads=True)
    # A server some way off: each envelope's replies take a moment, in which the relay claims and prepares the next
    # message (on loopback its replies would come before the next message is ready, and it would go alone).
    server.faults.stall("MAIL", 0.15)
    relay.connect(SUPPORT, server)
    set_limits(relay.stores.directory, ACCOUNT, SUPPORT, overrides=LimitOverrides(connections=1))
    notifications = [relay.notification(SUPPORT) for _ in range(5)]
    relay.enqueue(*notifications)
    assert relay.poll() == 5

    assert server.stats.connections == 1
    # A read holding a message's final dot and the next MAIL FROM: one write carried both, and the replies to the
    # end of data and to the next envelope came back together, so after the first, each message took one round trip
    # (its body, with the next envelope).
    rode = [chunk for _, chunk in server.reads if b"\r\n.\r\nMAIL FROM:<support@acme.test>\r\n" in chunk]
    assert len(rode) == 4
    ids = [received.data.split(b"X-Relaydesk-Email-Id: ")[1].split(b"\r\n")[0].decode() for received in server.received]
    assert sorted(ids) == sorted(n.notification_id for n in notifications)  # each once
    assert {relay.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}
