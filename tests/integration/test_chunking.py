"""RFC 3030 CHUNKING against the local smarthost (aiosmtpd with BDAT, STARTTLS + AUTH): with CHUNKING and PIPELINING
advertised a message goes as MAIL FROM, every RCPT TO and BDAT LAST with its exact octets in one write, answered
in one round trip; what arrives, what each message's result says, and how the connection stays in step after a
refusal. The server side's BDAT (several chunks, no MAIL, a malformed length) is tested here too."""

from __future__ import annotations

import asyncio
import time

import pytest
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.dkim.keys import load_private_key
from relaydesk.dkim.signer import DkimSigner, SigningKey
from relaydesk.errors import NothingAcceptedError, PermanentDeliveryError, TransientDeliveryError
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.pipelined import PipelinedSubmission
from relaydesk.outbound.smtp import Accepted, Timeouts

from tests.dkim_helpers import EPOCH, keyring_for, notification, offline_dns, verify_all

SENDER = "support@acme.test"
JANE, BOB, CAROL = "jane@example.net", "bob@example.net", "carol@example.net"
BODY = (b"From: support@acme.test\r\nTo: jane@example.net\r\nSubject: Printer jammed\r\n"
        b"Message-ID: <n1@acme.test>\r\n\r\n.a line that starts with a dot\r\n.\r\nThe tray is empty.\r\n")


def _message(*recipients: str, body: bytes = BODY) -> Outgoing:
    return Outgoing(SENDER, recipients or (JANE,), body)


def _session(server, *, data_timeout: float = 5) -> PipelinedSubmission:
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, tls_mode=TlsMode.STARTTLS,
                                  username=server.username, password=server.password, ca_bundle_pem=server.ca_pem)
    return PipelinedSubmission(credentials, timeouts=Timeouts(connect=5, command=5, data=data_timeout))


def _send_all(server, messages: list[Outgoing], **options) -> tuple[list, PipelinedSubmission]:
    session = _session(server, **options)

    async def run():
        await session.open()
        try:
            return await session.send_all(messages)
        finally:
            await session.close()

    return asyncio.run(run()), session


def _groups(server) -> list[bytes]:
    """The reads that carried a mail transaction (a group starts with MAIL FROM, or RSET then MAIL FROM)."""
    return [chunk for _, chunk in server.reads if b"MAIL FROM:" in chunk]


# --- one write and one round trip a message ------------------------------------------------------------------

def test_a_message_goes_in_one_write_mail_rcpts_and_bdat_last_with_its_exact_octets(make_smarthost):
    server = make_smarthost(record_reads=True)

    [sent], session = _send_all(server, [_message(JANE, BOB, CAROL)])

    assert isinstance(sent, Accepted) and sent.code == 250 and sent.refused == []
    assert session.round_trips == 1  # no 354 to wait for: the body left with the envelope
    assert _groups(server) == [b"MAIL FROM:<support@acme.test>\r\nRCPT TO:<jane@example.net>\r\n"
                               b"RCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\n"
                               + b"BDAT %d LAST\r\n" % len(BODY) + BODY]  # not dot-stuffed: the length frames it
    [got] = server.received
    assert got.data == BODY and got.rcpt_tos == [JANE, BOB, CAROL]
    assert not any(b"DATA\r\n" in chunk for _, chunk in server.reads)


def test_messages_in_a_row_cost_one_round_trip_each_first_one_included(make_smarthost):
    server = make_smarthost(record_reads=True)
    bodies = [BODY.replace(b"<n1@", f"<n{i}@".encode()) for i in range(5)]

    results, session = _send_all(server, [_message(body=body) for body in bodies])

    assert all(isinstance(r, Accepted) for r in results)
    assert session.round_trips == 5 and len(_groups(server)) == 5  # DATA costs 6 here, 2 for a lone message
    assert len({r.reply for r in results}) == 5  # five queue ids: each message answered once
    assert [r.data for r in server.received] == bodies


def test_a_body_without_a_final_crlf_gets_one_and_the_length_counts_it(make_smarthost):
    server = make_smarthost(record_reads=True)

    [sent], _ = _send_all(server, [_message(body=BODY.rstrip(b"\r\n"))])

    assert isinstance(sent, Accepted)
    assert server.received[0].data == BODY
    assert b"BDAT %d LAST\r\n" % len(BODY) in _groups(server)[0]


def test_without_chunking_advertised_the_message_goes_with_data_as_before(make_smarthost):
    server = make_smarthost(chunking=False, record_reads=True)

    [sent], session = _send_all(server, [_message()])

    assert isinstance(sent, Accepted) and server.received[0].data == BODY
    assert session.round_trips == 2  # the envelope with DATA, then the dot-stuffed body and its final dot
    assert not any(b"BDAT" in chunk for _, chunk in server.reads)
    assert any(b"\r\n..a line that starts with a dot\r\n" in chunk for _, chunk in server.reads)


def test_without_pipelining_chunking_alone_is_not_used_and_each_command_waits(make_smarthost):
    server = make_smarthost(pipelining=False, chunking=True, record_reads=True)

    [sent], session = _send_all(server, [_message(JANE, BOB)])

    assert isinstance(sent, Accepted) and session.round_trips == 5  # MAIL, two RCPTs, DATA, body
    assert not any(b"BDAT" in chunk for _, chunk in server.reads)


def test_a_server_that_holds_its_bdat_reply_back_gets_data_from_then_on_on_every_connection(make_smarthost):
    # Postfix reads 4 KB at a time: with a longer group it sends the envelope's replies before it read the chunk,
    # and without TCP_NODELAY its BDAT reply waits for the client's ACK of them. Here the first two wait 300 ms.
    server = make_smarthost(record_reads=True)
    server.faults.stall("DATA", 0.3, times=2)

    results, session = _send_all(server, [_message(), _message(), _message()])
    [later], _ = _send_all(server, [_message()])  # a new connection to the same smarthost

    assert all(isinstance(r, Accepted) for r in results) and isinstance(later, Accepted)
    groups = _groups(server)
    # Once could be a busy machine; twice, and the third message and the new connection's go with DATA.
    assert [b"BDAT" in group for group in groups] == [True, True, False, False]
    assert groups[2].endswith(b"DATA\r\n") and len(server.received) == 4
    assert not session.chunking


# --- refusals: per recipient, the whole envelope, the end of the data ------------------------------------------

def test_refused_recipients_are_reported_each_with_its_own_reply_and_the_rest_get_the_mail(make_smarthost):
    server = make_smarthost()
    server.faults.reply("RCPT", "550 5.1.1 <bob@example.net>: Recipient address rejected", recipient=BOB)
    server.faults.reply("RCPT", "452 4.2.2 Mailbox full", recipient=CAROL)

    [sent], session = _send_all(server, [_message(BOB, JANE, CAROL)])

    assert isinstance(sent, Accepted) and session.round_trips == 1
    assert [(r.recipient, r.smtp_code, r.enhanced_status, r.reply) for r in sent.refused] == [
        (BOB, 550, "5.1.1", "550 5.1.1 <bob@example.net>: Recipient address rejected"),
        (CAROL, 452, "4.2.2", "452 4.2.2 Mailbox full")]
    assert [r.rcpt_tos for r in server.received] == [[JANE]]


def test_every_recipient_refused_is_the_outcome_the_chunk_is_discarded_and_the_next_message_is_delivered(
        make_smarthost):
    server = make_smarthost(record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=BOB)
    server.faults.reply("RCPT", "450 4.2.0 Greylisted", recipient=CAROL)

    (refused, after), session = _send_all(server, [_message(BOB, CAROL), _message(JANE)])

    # The mildest refusal decides (a 4xx is worth a retry), not the server's 554 to the BDAT that followed.
    assert isinstance(refused, TransientDeliveryError) and refused.smtp_code == 450
    assert [(r.recipient, r.smtp_code) for r in refused.refused] == [(BOB, 550), (CAROL, 450)]
    assert isinstance(after, Accepted) and [r.rcpt_tos for r in server.received] == [[JANE]]
    assert session.round_trips == 2
    assert _groups(server)[1].startswith(b"RSET\r\nMAIL FROM:")  # the BDAT's reply was read: still in step


def test_a_refused_mail_from_is_the_outcome_not_the_bdat_error_after_it(make_smarthost):
    server = make_smarthost()
    server.faults.reply("MAIL", "553 5.7.1 Sender address rejected: not owned by user", times=1)

    (refused, after), _ = _send_all(server, [_message(JANE, BOB), _message(JANE)])

    assert isinstance(refused, PermanentDeliveryError) and refused.smtp_code == 553
    assert refused.server_reply == "553 5.7.1 Sender address rejected: not owned by user"
    assert refused.refused == []  # the RCPTs' 503s say nothing about the recipients
    assert isinstance(after, Accepted) and len(server.received) == 1


@pytest.mark.parametrize("reply, error", [("554 5.7.1 Message rejected as spam", PermanentDeliveryError),
                                          ("451 4.7.1 Try again later", TransientDeliveryError)])
def test_a_refusal_of_bdat_last_is_the_messages_outcome_and_the_connection_carries_the_next(make_smarthost,
                                                                                            reply, error):
    server = make_smarthost()
    server.faults.reply("DATA", reply, times=1)  # the end-of-data reply: to DATA's final dot, or to BDAT LAST

    (refused, after), session = _send_all(server, [_message(JANE, BOB), _message(CAROL)])

    assert type(refused) is error and refused.server_reply == reply and refused.enhanced_status == reply[4:9]
    assert isinstance(after, Accepted) and [r.rcpt_tos for r in server.received] == [[CAROL]]
    assert session.round_trips == 2


def test_a_message_over_the_servers_size_is_refused_before_anything_is_sent(make_smarthost):
    server = make_smarthost(record_reads=True, data_size_limit=len(BODY) + 10)
    big = _message(body=BODY + b"x" * 200 + b"\r\n")

    (too_big, after), session = _send_all(server, [big, _message()])

    # 552 as the server would answer after the data: a message with attachments goes again with links.
    assert isinstance(too_big, PermanentDeliveryError) and too_big.smtp_code == 552
    assert "SIZE" in too_big.message
    assert isinstance(after, Accepted) and session.round_trips == 1
    assert len(_groups(server)) == 1 and b"xxxx" not in b"".join(chunk for _, chunk in server.reads)


# --- connections that end: the doubtful window ------------------------------------------------------------------

def test_a_connection_lost_after_the_chunk_before_its_reply_is_the_doubtful_case(make_smarthost):
    server = make_smarthost()
    server.faults.drop_after_data(times=1)

    [lost], _ = _send_all(server, [_message()])

    assert isinstance(lost, TransientDeliveryError) and not isinstance(lost, NothingAcceptedError)
    assert "may have accepted it" in lost.message
    assert len(server.received) == 1  # the server has it: the relay must not think otherwise


def test_a_connection_lost_mid_envelope_is_doubtful_too_since_the_body_had_left(make_smarthost):
    server = make_smarthost()
    server.faults.drop_at("RCPT", recipient=BOB)

    first, second, third = _send_all(server, [_message(JANE), _message(BOB), _message(JANE)])[0]

    assert isinstance(first, Accepted)
    # MAIL was answered, then the connection went: the body was written, the client cannot know what the server
    # did with it (retried later with the same Message-ID, never at once elsewhere).
    assert isinstance(second, TransientDeliveryError) and not isinstance(second, NothingAcceptedError)
    assert isinstance(third, NothingAcceptedError)  # never taken: the connection had ended
    assert [r.rcpt_tos for r in server.received] == [[JANE]]


def test_a_421_before_the_chunk_means_nothing_was_accepted(make_smarthost):
    server = make_smarthost()
    server.faults.reply("MAIL", "421 4.3.2 Service shutting down", times=1)

    (closing, untaken), session = _send_all(server, [_message(), _message()])

    assert isinstance(closing, NothingAcceptedError) and closing.smtp_code == 421
    assert isinstance(untaken, NothingAcceptedError)
    assert not session.connected and server.received == []


def test_a_connection_the_server_closed_while_idle_is_noticed_before_anything_is_written(make_smarthost):
    server = make_smarthost(record_reads=True)
    session = _session(server)

    async def run():
        await session.open()
        server.drop_connections()
        time.sleep(0.3)  # the loop does not run meanwhile: as in a container thawed a moment ago
        try:
            return await session.send_all([_message()])
        finally:
            await session.close()

    [untaken] = asyncio.run(run())

    assert isinstance(untaken, NothingAcceptedError)  # never written: safe to send at once on a new connection
    assert _groups(server) == [] and server.received == []


# --- DKIM survives the trip --------------------------------------------------------------------------------------

def test_dkim_signatures_verify_on_what_the_server_stored(make_smarthost):
    server = make_smarthost()
    keyring = keyring_for("acme.test")
    generation = keyring.signing_generation(EPOCH)
    signer = DkimSigner("acme.test", [SigningKey(k.selector, k.algorithm, load_private_key(k.algorithm,
                                                                                            k.private_text()))
                                      for k in generation.keys])
    long_line = "word " * 400  # quoted-printable folds it: lines end with "=" and a soft break
    bodies = [signer.sign(notification(body=body)) for body in (
        "Hello Bob,\n.\n.a dot opens this line\n..and two this one\n", f"Long:\n{long_line}\n",
        "no final line break")]

    results, _ = _send_all(server, [_message(BOB, body=body) for body in bodies])

    assert all(isinstance(r, Accepted) for r in results)
    stored = [r.data for r in server.received]
    assert stored == [body if body.endswith(b"\r\n") else body + b"\r\n" for body in bodies]
    assert [verify_all(data, offline_dns(keyring)) for data in stored] == [[True, True]] * 3


# --- the server side: BDAT as the local smarthost reads it ---------------------------------------------------

def _raw(server, group: bytes, replies: int) -> list[str]:
    """Open, sign in, write `group` in one write and read `replies` replies: each as "code text"."""
    session = _session(server)

    async def run():
        await session.open()
        try:
            exchanged = await session.client.exchange(group, [5.0] * replies)
            return [f"{r.code} {r.message}" for r in exchanged.replies]
        finally:
            await session.close()

    return asyncio.run(run())


def test_the_smarthost_joins_several_chunks_and_delivers_at_last(make_smarthost):
    server = make_smarthost()
    head, tail = BODY[:40], BODY[40:]

    replies = _raw(server, b"MAIL FROM:<support@acme.test>\r\nRCPT TO:<jane@example.net>\r\n"
                           + b"BDAT %d\r\n" % len(head) + head + b"BDAT %d LAST\r\n" % len(tail) + tail, 4)

    assert [r[:3] for r in replies] == ["250", "250", "250", "250"]
    assert replies[3].startswith("250 2.0.0 Ok: queued as")
    assert [r.data for r in server.received] == [BODY]


def test_the_smarthost_reads_and_refuses_a_chunk_without_mail_and_stays_in_step(make_smarthost):
    server = make_smarthost()

    replies = _raw(server, b"BDAT 7 LAST\r\nMAIL \r\nNOOP\r\n", 2)

    # "MAIL \r\n" was the chunk's seven octets, not a command: the NOOP after it is the next command.
    assert replies == ["503 5.5.1 Error: need MAIL command", "250 OK"]
    assert server.received == []


def test_the_smarthost_closes_on_a_bdat_without_a_length(make_smarthost):
    server = make_smarthost()

    replies = _raw(server, b"BDAT LAST\r\n", 1)

    assert replies[0].startswith("501 5.5.4")


# --- the relay: notifications on the ticket ------------------------------------------------------------------

@pytest.fixture
def relay(aws_stack_env, monkeypatch):
    from tests.integration.relay_harness import relay_harness

    yield from relay_harness(aws_stack_env, monkeypatch)


def _email_ids(server) -> list[str]:
    return [received.data.split(b"X-Relaydesk-Email-Id: ")[1].split(b"\r\n")[0].decode()
            for received in server.received]


def test_the_relay_sends_each_notification_in_one_write_over_one_connection(relay, make_smarthost):
    from relaydesk.addresses.limits import set_limits
    from relaydesk.addresses.providers import LimitOverrides
    from relaydesk.tickets.model import DeliveryStatus

    from tests.integration.relay_harness import ACCOUNT

    server = make_smarthost(record_reads=True)
    relay.connect(SENDER, server)
    set_limits(relay.stores.directory, ACCOUNT, SENDER, overrides=LimitOverrides(connections=1))
    notifications = [relay.notification(SENDER, cc=[BOB]) for _ in range(5)]
    relay.enqueue(*notifications)
    assert relay.poll() == 5

    # Every read that carried a message held its MAIL FROM, both RCPT TOs, BDAT LAST and the whole body: one write
    # and one round trip each, the first message included; no DATA, no 354.
    groups = _groups(server)
    assert len(groups) == 5 and server.stats.connections == 1
    for group, received in zip(groups, server.received, strict=True):
        assert group == (b"MAIL FROM:<support@acme.test>\r\nRCPT TO:<jane@example.net>\r\nRCPT TO:<bob@example.net>"
                         b"\r\n" + b"BDAT %d LAST\r\n" % len(received.data) + received.data)
    assert sorted(_email_ids(server)) == sorted(n.notification_id for n in notifications)  # each once
    for sent in notifications:
        attempt = relay.record(sent).attempts[-1]
        assert attempt.status is DeliveryStatus.DELIVERED and "queued as" in attempt.reply


def test_the_relay_records_each_refused_recipient_and_a_refused_bdat_on_the_ticket(relay, make_smarthost):
    from relaydesk.tickets.model import DeliveryStatus

    server = make_smarthost()
    relay.connect(SENDER, server)
    server.faults.reply("RCPT", "550 5.1.1 <bob@example.net>: Recipient address rejected", recipient=BOB)
    partly = relay.notification(SENDER, cc=[BOB])
    relay.enqueue(partly)
    relay.poll()
    server.faults.clear()
    server.faults.reply("DATA", "554 5.7.1 Message rejected as spam", times=1)
    refused = relay.notification(SENDER)
    relay.enqueue(refused)
    relay.poll()

    delivered = relay.record(partly).attempts[-1]
    assert delivered.status is DeliveryStatus.DELIVERED
    assert [(r.recipient, r.smtp_code, r.reply) for r in delivered.refused] == [
        (BOB, 550, "550 5.1.1 <bob@example.net>: Recipient address rejected")]
    failed = relay.record(refused).attempts[-1]
    assert failed.status is DeliveryStatus.FAILED and failed.reply == "554 5.7.1 Message rejected as spam"
    assert [r.rcpt_tos for r in server.received] == [[JANE]]


# --- a real Postfix smarthost (Debian's package, set up as the latency bench sets it up) ----------------------

def _postfix_unavailable() -> str:
    from bench.postfix_instances import unavailable

    return unavailable()


@pytest.mark.skipif(bool(_postfix_unavailable()), reason="Postfix cannot run here (see bench/postfix_instances.py)")
def test_a_real_postfix_takes_bdat_one_round_trip_a_message_and_holds_its_end_of_data_check_until_bdat_last():
    import os
    import tempfile
    from pathlib import Path

    from bench.network_process import NetworkProcess
    from bench.postfix_instances import PostfixSmarthost, running
    from local.ca import LocalCA

    folder = tempfile.TemporaryDirectory(prefix="relaydesk-test-postfix-")  # pytest's are private to root
    root = Path(folder.name)
    os.chmod(root, 0o755)  # noqa: S103  # Postfix's daemons (the postfix user) reach their queue below it
    ca = LocalCA(root / "ca")
    certificate = ca.issue(["127.0.0.1", "localhost"])
    keyring = keyring_for("acme.test")
    generation = keyring.signing_generation(EPOCH)
    signer = DkimSigner("acme.test", [SigningKey(k.selector, k.algorithm, load_private_key(k.algorithm,
                                                                                            k.private_text()))
                                      for k in generation.keys])
    bodies = [signer.sign(notification(body=f"Message {i}.\n.\n.a dot opens this line\n")) for i in range(3)]
    with folder, NetworkProcess() as net:
        smarthost = PostfixSmarthost(root / "smarthost", cert_path=certificate.cert_path,
                                     key_path=certificate.key_path, ca_pem=ca.pem, username="relay@acme.test",
                                     password="bench-only-password", policy_port=net.policy_port)
        with running(smarthost.instance):
            credentials = SmtpCredentials(host="127.0.0.1", port=smarthost.port, tls_mode=TlsMode.STARTTLS,
                                          username=smarthost.username, password=smarthost.password,
                                          ca_bundle_pem=ca.pem)
            session = PipelinedSubmission(credentials, timeouts=Timeouts(connect=10, command=10, data=10))

            async def run():
                await session.open()
                try:
                    chunking = session.chunking
                    results = await session.send_all([_message(BOB, body=body) for body in bodies])
                    net.set_wait(0.3)  # Postfix's end-of-data restrictions ask the policy service: held 0.3 s
                    started = time.perf_counter()
                    waited = await session.send_all([_message(BOB, body=bodies[0])])
                    return chunking, results + waited, time.perf_counter() - started
                finally:
                    await session.close()

            chunking, results, held = asyncio.run(run())
            stored = smarthost.collect(4)

    assert chunking and all(isinstance(r, Accepted) for r in results)
    assert session.round_trips == 4  # one a message: Postfix advertised CHUNKING and PIPELINING
    assert held >= 0.3  # the end-of-data check ran at BDAT LAST, as at DATA's final dot
    assert sorted(data.split(b"\r\n\r\n", 1)[1] for data in stored) == sorted(
        body.split(b"\r\n\r\n", 1)[1] for body in [*bodies, bodies[0]])  # the body exactly, dots included
    assert all(verify_all(data, offline_dns(keyring)) == [True, True] for data in stored)
