"""The pipelining SMTP client against the local smarthost (aiosmtpd, STARTTLS + AUTH): what arrives, what each
message's result says, and how many round trips it took, with PIPELINING advertised and without."""

from __future__ import annotations

import asyncio
import time

import pytest
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import NothingAcceptedError, PermanentDeliveryError, TlsRequiredError, TransientDeliveryError
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.fanout import open_sessions, send_over
from relaydesk.outbound.pipelined import PipelinedSubmission
from relaydesk.outbound.smtp import Accepted, Timeouts

SENDER = "support@acme.test"
JANE, BOB, CAROL = "jane@example.net", "bob@example.net", "carol@example.net"
BODY = (b"From: support@acme.test\r\nTo: jane@example.net\r\nSubject: Printer jammed\r\n"
        b"Message-ID: <n1@acme.test>\r\n\r\n.a line that starts with a dot\r\nThe tray is empty.\r\n")


@pytest.fixture
def make_smarthost(make_smarthost):
    """These tests are about DATA: servers here advertise PIPELINING without CHUNKING (BDAT: test_chunking.py)."""
    return lambda **options: make_smarthost(**{"chunking": False, **options})


def _message(*recipients: str, body: bytes = BODY) -> Outgoing:
    return Outgoing(SENDER, recipients or (JANE,), body)


def _session(server, *, data_timeout: float = 5, command_timeout: float = 5) -> PipelinedSubmission:
    mode = TlsMode.IMPLICIT if server.mode == "implicit" else TlsMode.STARTTLS
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, tls_mode=mode, username=server.username,
                                  password=server.password, ca_bundle_pem=server.ca_pem)
    return PipelinedSubmission(credentials, timeouts=Timeouts(connect=5, command=command_timeout, data=data_timeout))


def _send_all(server, messages: list[Outgoing], **options) -> tuple[list, PipelinedSubmission]:
    session = _session(server, **options)

    async def run():
        await session.open()
        try:
            return await session.send_all(messages)
        finally:
            await session.close()

    return asyncio.run(run()), session


def _commands_read(server) -> list[list[bytes]]:
    """Per read of the server, the command lines it held (message bodies left out)."""
    verbs = (b"MAIL FROM:", b"RCPT TO:", b"DATA\r\n", b"RSET\r\n", b".\r\n")
    return [[line for line in chunk.split(b"\r\n") if line and any((line + b"\r\n").startswith(v) for v in verbs)]
            for _, chunk in server.reads]


# --- one round trip for the envelope -------------------------------------------------------------------------

def test_an_advertised_pipelining_puts_the_whole_envelope_in_one_write_and_one_read(make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)

    [sent], session = _send_all(server, [_message(JANE, BOB, CAROL)])

    assert isinstance(sent, Accepted) and sent.code == 250 and sent.refused == []
    assert session.round_trips == 2  # the envelope with DATA, then the body with its final dot
    envelope = next(chunk for _, chunk in server.reads if b"MAIL FROM:" in chunk)
    assert envelope == (b"MAIL FROM:<support@acme.test>\r\nRCPT TO:<jane@example.net>\r\n"
                        b"RCPT TO:<bob@example.net>\r\nRCPT TO:<carol@example.net>\r\nDATA\r\n")
    [got] = server.received
    assert got.data == BODY and got.rcpt_tos == [JANE, BOB, CAROL]


def test_without_pipelining_every_command_waits_for_its_reply(make_smarthost):
    server = make_smarthost(pipelining=False, record_reads=True)

    [sent], session = _send_all(server, [_message(JANE, BOB, CAROL)])

    assert isinstance(sent, Accepted)
    assert session.round_trips == 6  # MAIL, three RCPTs, DATA, body
    assert all(len(commands) <= 1 for commands in _commands_read(server))
    assert server.received[0].data == BODY


def test_messages_in_a_row_cost_one_round_trip_each_the_next_envelope_riding_with_the_previous_body(
        make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)

    results, session = _send_all(server, [_message() for _ in range(5)])

    assert all(isinstance(r, Accepted) for r in results)
    assert session.round_trips == 6  # first envelope; four bodies each with the next envelope; the last body
    assert len({r.reply for r in results}) == 5  # five queue ids: five messages, each answered once
    assert [r.data for r in server.received] == [BODY] * 5
    assert [b"." in c and b"MAIL FROM:<support@acme.test>" in c for c in _commands_read(server)].count(True) == 4


def test_the_same_messages_without_pipelining_take_four_round_trips_each(make_smarthost):
    server = make_smarthost(pipelining=False)

    results, session = _send_all(server, [_message() for _ in range(5)])

    assert all(isinstance(r, Accepted) for r in results)
    assert session.round_trips == 20
    assert len(server.received) == 5


# --- per recipient, refused DATA, RFC 2920 3.1 ---------------------------------------------------------------

@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-at-a-time"])
def test_refused_recipients_are_reported_each_with_its_own_reply_and_the_rest_get_the_mail(make_smarthost,
                                                                                           pipelining):
    server = make_smarthost(pipelining=pipelining)
    server.faults.reply("RCPT", "550 5.1.1 <bob@example.net>: Recipient address rejected", recipient=BOB)
    server.faults.reply("RCPT", "452 4.2.2 Mailbox full", recipient=CAROL)

    [sent], _ = _send_all(server, [_message(BOB, JANE, CAROL)])

    assert isinstance(sent, Accepted)
    assert [(r.recipient, r.smtp_code, r.enhanced_status, r.reply) for r in sent.refused] == [
        (BOB, 550, "5.1.1", "550 5.1.1 <bob@example.net>: Recipient address rejected"),
        (CAROL, 452, "4.2.2", "452 4.2.2 Mailbox full")]
    [got] = server.received
    assert got.rcpt_tos == [JANE]


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelined", "one-at-a-time"])
def test_every_recipient_refused_sends_none_of_the_body_and_the_connection_goes_on(make_smarthost, pipelining):
    server = make_smarthost(pipelining=pipelining, record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=BOB)
    server.faults.reply("RCPT", "450 4.2.0 Greylisted", recipient=CAROL)

    (refused, after), session = _send_all(server, [_message(BOB, CAROL), _message(JANE)])

    # The mildest refusal decides (a 4xx is worth a retry); every recipient's reply is carried to the ticket.
    assert isinstance(refused, TransientDeliveryError) and refused.smtp_code == 450
    assert [(r.recipient, r.smtp_code) for r in refused.refused] == [(BOB, 550), (CAROL, 450)]
    assert isinstance(after, Accepted)
    assert [r.rcpt_tos for r in server.received] == [[JANE]]
    assert sum(chunk.count(b"Printer jammed") for _, chunk in server.reads) == 1  # only the second body was sent
    assert any(b"RSET" in chunk for _, chunk in server.reads)
    assert session.round_trips == (3 if pipelining else 8)  # one-at-a-time: MAIL, 2 RCPT, RSET; MAIL, RCPT, DATA, body


@pytest.mark.parametrize("reply, error", [("554 5.7.1 Message rejected by policy", PermanentDeliveryError),
                                          ("451 4.3.0 Try again later", TransientDeliveryError)])
def test_a_refused_data_command_sends_no_body_resets_and_the_next_message_goes(make_smarthost, reply, error):
    server = make_smarthost(pipelining=True, record_reads=True)
    server.faults.refuse_data(reply, times=1)

    (refused, after), _ = _send_all(server, [_message(JANE, BOB), _message(CAROL)])

    assert type(refused) is error and refused.server_reply == reply
    assert refused.smtp_code == int(reply[:3]) and refused.enhanced_status == reply[4:9]
    assert isinstance(after, Accepted)
    assert [r.rcpt_tos for r in server.received] == [[CAROL]]
    assert sum(chunk.count(b"Printer jammed") for _, chunk in server.reads) == 1
    assert any(chunk.startswith(b"RSET\r\nMAIL FROM:") for _, chunk in server.reads)  # RSET opens the next group


def test_a_354_after_every_recipient_was_refused_gets_a_lone_dot_never_the_body(make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient=BOB)
    server.faults.data_without_recipients(times=1)

    (refused, after), _ = _send_all(server, [_message(BOB), _message(JANE)])

    assert isinstance(refused, PermanentDeliveryError) and refused.smtp_code == 550
    assert server.unaddressed == [b""]  # RFC 2920 3.1: "the client SMTP should send a single dot"
    assert isinstance(after, Accepted) and [r.rcpt_tos for r in server.received] == [[JANE]]
    assert sum(chunk.count(b"Printer jammed") for _, chunk in server.reads) == 1


def test_a_refused_mail_from_is_the_messages_error_and_its_pipelined_recipients_are_not_counted(make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.reply("MAIL", "553 5.7.1 Sender address rejected: not owned by user", times=1)

    (refused, after), _ = _send_all(server, [_message(JANE, BOB), _message(JANE)])

    assert isinstance(refused, PermanentDeliveryError) and refused.smtp_code == 553
    assert getattr(refused, "refused", []) == []  # the RCPTs' 503s say nothing about the recipients
    assert isinstance(after, Accepted) and len(server.received) == 1


# --- connections that end ------------------------------------------------------------------------------------

def test_a_connection_dropped_mid_pipeline_keeps_what_was_answered_and_marks_the_rest_not_accepted(
        make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.drop_at("RCPT", recipient=BOB)

    first, second, third = _send_all(server, [_message(JANE), _message(BOB), _message(JANE)])[0]

    # The first message's end of data was answered in the group that carried the second envelope.
    assert isinstance(first, Accepted)
    assert isinstance(second, NothingAcceptedError)  # the server never saw its body: safe to send elsewhere
    assert isinstance(third, NothingAcceptedError)  # never taken: the connection had ended
    assert [r.rcpt_tos for r in server.received] == [[JANE]]


def test_a_connection_dropped_after_the_final_dot_is_the_doubtful_case_not_a_safe_retry(make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.drop_after_data(times=1)

    [lost], _ = _send_all(server, [_message()])

    assert isinstance(lost, TransientDeliveryError) and not isinstance(lost, NothingAcceptedError)
    assert "may have accepted it" in lost.message
    assert len(server.received) == 1  # the server has it: the relay must not think otherwise


def test_a_server_that_waits_longer_than_the_data_timeout_leaves_the_message_doubtful(make_smarthost):
    server = make_smarthost(pipelining=True, end_of_data_wait=2.0)

    [lost], session = _send_all(server, [_message()], data_timeout=0.2)

    assert isinstance(lost, TransientDeliveryError) and "may have accepted it" in lost.message
    assert not session.connected  # replies still owed would pair with the wrong commands: closed


# --- the invocation's time limit (`deadline`: the end of data's answer must come by then) ------------------------

def _send_by(session: PipelinedSubmission, recipient: str, seconds_left: float):
    """One send whose deadline is `seconds_left` from when it starts: its Accepted or its error."""
    async def send():
        try:
            return await session.send(SENDER, [recipient], BODY, deadline=time.monotonic() + seconds_left)
        except TransientDeliveryError as error:
            return error
    return send()


def test_a_deadline_too_close_for_the_envelope_and_the_end_of_data_writes_nothing(make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    session = _session(server, command_timeout=5, data_timeout=5)

    async def run():
        await session.open()
        try:
            return await _send_by(session, JANE, 9.0), await _send_by(session, BOB, 11.0)
        finally:
            await session.close()

    late, sent = asyncio.run(run())

    # Under the envelope's round trip and the data timeout (5 + 5 s) left: not even MAIL FROM went out, since DATA
    # rides in the same write; the connection carries the next message, which has the time.
    assert isinstance(late, TransientDeliveryError) and not isinstance(late, NothingAcceptedError)
    assert "not transmitted" in late.message
    assert isinstance(sent, Accepted)
    assert [chunk.count(b"MAIL FROM:") for _, chunk in server.reads if b"MAIL FROM:" in chunk] == [1]
    assert [received.rcpt_tos for received in server.received] == [[BOB]]


def test_an_envelope_answered_too_late_for_the_deadline_gets_no_body_and_the_connection_is_dropped(
        make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.stall("MAIL", 0.6, times=1)  # each reply within the 1 s command timeout, the three 1.8 s late
    server.faults.stall("RCPT", 0.6, times=2)
    session = _session(server, command_timeout=1, data_timeout=0.5)

    async def run():
        await session.open()
        try:
            deadline = time.monotonic() + 2.0  # enough for 1 + 0.5 s when the envelope is written
            try:
                return await session.send(SENDER, [JANE, BOB], BODY, deadline=deadline), session.connected
            except TransientDeliveryError as error:
                return error, session.connected
        finally:
            await session.close()

    late, connected = asyncio.run(run())

    # The 354 came 1.8 s after the write: the end of data's answer could come after the deadline, so the body never
    # left; the server's open transaction ends with the connection, and nothing was delivered.
    assert isinstance(late, TransientDeliveryError) and "not transmitted" in late.message
    assert server.received == [] and not connected


def test_a_421_on_mail_from_closes_the_connection_and_nothing_was_accepted(make_smarthost):
    server = make_smarthost(pipelining=True)
    server.faults.reply("MAIL", "421 4.3.2 Service shutting down", times=1)

    (closing, untaken), session = _send_all(server, [_message(), _message()])

    assert isinstance(closing, NothingAcceptedError) and closing.smtp_code == 421
    assert isinstance(untaken, NothingAcceptedError)
    assert not session.connected and server.received == []


def test_an_address_that_would_smuggle_a_command_is_refused_before_anything_is_sent(make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)
    hostile = "bob@example.net>\r\nRCPT TO:<mallory@evil.test"

    (refused, after), _ = _send_all(server, [_message(JANE, hostile), _message(JANE)])

    assert isinstance(refused, PermanentDeliveryError)
    assert isinstance(after, Accepted)
    assert not any(b"mallory" in chunk for _, chunk in server.reads)
    assert [r.rcpt_tos for r in server.received] == [[JANE]]


# --- TLS before credentials ----------------------------------------------------------------------------------

def test_no_credentials_leave_before_a_verified_tls_connection(make_smarthost):
    server = make_smarthost(pipelining=True, record_reads=True)

    [sent], _ = _send_all(server, [_message()])

    assert isinstance(sent, Accepted)
    chunks = [chunk for _, chunk in server.reads]
    starttls = chunks.index(b"STARTTLS\r\n")
    auth = next(i for i, chunk in enumerate(chunks) if chunk.startswith(b"AUTH "))
    assert starttls < auth and chunks[auth].startswith(b"AUTH PLAIN ")  # one mechanism, after TLS
    assert server.stats.auth_attempts == 1
    assert server.received[0].tls and server.received[0].auth_user == server.username


def test_a_server_without_starttls_gets_no_credentials_and_no_mail(make_smarthost):
    server = make_smarthost(mode="none", pipelining=True, record_reads=True)

    with pytest.raises(TlsRequiredError):
        _send_all(server, [_message()])

    assert server.stats.auth_attempts == 0
    assert not any(b"AUTH" in chunk or b"MAIL" in chunk for _, chunk in server.reads)
    assert server.received == []


def test_implicit_tls_pipelines_too(make_smarthost):
    server = make_smarthost(mode="implicit", pipelining=True)

    results, session = _send_all(server, [_message(), _message()])

    assert all(isinstance(r, Accepted) for r in results)
    assert session.round_trips == 3 and len(server.received) == 2


# --- N connections -------------------------------------------------------------------------------------------

def test_messages_spread_over_n_connections_each_arrive_once(make_smarthost):
    server = make_smarthost(pipelining=True, end_of_data_wait=0.05, record_reads=True)
    messages = [_message(body=BODY.replace(b"<n1@", f"<n{i}@".encode())) for i in range(12)]

    async def run():
        sessions = await open_sessions(lambda: _session(server), 3)
        try:
            return await send_over(sessions, messages)
        finally:
            await asyncio.gather(*(session.close() for session in sessions))

    results = asyncio.run(run())

    assert all(isinstance(r, Accepted) for r in results)
    assert sorted(r.data for r in server.received) == sorted(m.data for m in messages)
    assert server.stats.connections == 3
    carried_by = {number for number, chunk in server.reads if b"Printer jammed" in chunk}
    assert carried_by == {1, 2, 3}  # every connection carried messages while the others waited for replies


def test_an_oauth_mailbox_signs_in_with_xoauth2_after_tls_then_pipelines(make_smarthost, token_server):
    from relaydesk.credentials import AuthKind
    from relaydesk.oauth import AccessTokens

    server = make_smarthost(pipelining=True, record_reads=True, oauth=token_server,
                            oauth_mailboxes={token_server.client_id: {SENDER}})
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, username=SENDER, auth_kind=AuthKind.OAUTH2,
                                  oauth_client_id=token_server.client_id,
                                  oauth_client_secret=token_server.client_secret,
                                  oauth_token_url=token_server.token_url, ca_bundle_pem=server.ca_pem)
    session = PipelinedSubmission(credentials, timeouts=Timeouts(connect=5, command=5, data=5), tokens=AccessTokens())

    async def run():
        await session.open()
        try:
            return await session.send_all([_message(), _message()])
        finally:
            await session.close()

    results = asyncio.run(run())

    assert all(isinstance(r, Accepted) for r in results) and session.round_trips == 3
    assert [r.auth_user for r in server.received] == [SENDER, SENDER]
    auth = [chunk for _, chunk in server.reads if chunk.startswith(b"AUTH ")]
    assert len(auth) == 1 and auth[0].startswith(b"AUTH XOAUTH2 ")  # one mechanism, one attempt
    assert token_server.client_secret.encode() not in b"".join(chunk for _, chunk in server.reads)
