"""The pipelining protocol pairs every reply with its command however the server's bytes arrive, and drops what
nobody asked for; the envelope's replies mean what RFC 5321 and RFC 2920 3.1 say. No sockets: a recording
transport stands in for the connection."""

from __future__ import annotations

import asyncio

import aiosmtplib
import pytest
from aiosmtplib.response import SMTPResponse
from relaydesk.errors import PermanentDeliveryError, TransientDeliveryError
from relaydesk.outbound.envelope import Outgoing, body_with_end, envelope_lines, judge
from relaydesk.outbound.pipelining import GroupReplies, PipeliningProtocol
from relaydesk.outbound.smtp import NothingAcceptedError

GROUP = b"MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"


class RecordingTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name, default=None):
        return default

    def close(self) -> None:
        self.closed = True


async def _connected() -> tuple[PipeliningProtocol, RecordingTransport]:
    protocol = PipeliningProtocol(loop=asyncio.get_running_loop())
    transport = RecordingTransport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(b"220 smtp.acme.test ESMTP\r\n")
    assert (await protocol.read_response(1)).code == 220
    return protocol, transport


async def _exchange(protocol: PipeliningProtocol, reads: list[bytes], replies: int, timeout: float = 1) -> GroupReplies:
    """Run one group while the server's bytes arrive in `reads`, one read at a time."""
    task = asyncio.create_task(protocol.exchange(GROUP, [timeout] * replies))
    await asyncio.sleep(0)
    for data in reads:
        protocol.data_received(data)
        await asyncio.sleep(0)
    return await task


def run(coroutine):
    return asyncio.run(coroutine)


def test_a_groups_replies_arriving_in_one_read_are_each_paired_with_their_command():
    async def scenario():
        protocol, transport = await _connected()
        result = await _exchange(protocol, [b"250 2.1.0 Ok\r\n550 5.1.1 No such user\r\n354 Go ahead\r\n"], 3)
        return result, transport.written

    result, written = run(scenario())

    assert result.failure is None
    assert [(r.code, r.message) for r in result.replies] == [(250, "2.1.0 Ok"), (550, "5.1.1 No such user"),
                                                            (354, "Go ahead")]
    assert written == [GROUP]  # one write: one flush for the whole envelope


def test_replies_split_anywhere_across_reads_and_multiline_replies_come_out_whole():
    async def scenario():
        protocol, _ = await _connected()
        return await _exchange(protocol, [b"25", b"0 Ok\r\n250-first line\r", b"\n250 last line\r\n3", b"54 Go\r\n"], 3)

    result = run(scenario())

    assert [(r.code, r.message) for r in result.replies] == [(250, "Ok"), (250, "first line\nlast line"), (354, "Go")]


def test_bytes_nobody_asked_for_are_never_paired_with_the_next_command():
    async def scenario():
        protocol, _ = await _connected()
        first = await _exchange(protocol, [b"250 Ok\r\n250 Ok\r\n354 Go\r\n250 one reply too many\r\n"], 3)
        protocol.data_received(b"250 unsolicited between groups\r\n")
        second = await _exchange(protocol, [b"451 4.3.0 Mine\r\n503 Mine too\r\n503 And mine\r\n"], 3)
        return first, second

    first, second = run(scenario())

    assert [r.code for r in first.replies] == [250, 250, 354]
    assert [r.message for r in second.replies] == ["4.3.0 Mine", "Mine too", "And mine"]


def test_a_connection_lost_in_the_middle_keeps_the_replies_that_came_before_it():
    async def scenario():
        protocol, _ = await _connected()
        task = asyncio.create_task(protocol.exchange(GROUP, [1, 1, 1]))
        await asyncio.sleep(0)
        protocol.data_received(b"250 Ok\r\n421 4.3.2 Closing\r\n")
        protocol.connection_lost(None)
        return await task

    result = run(scenario())

    assert [r.code for r in result.replies] == [250, 421]
    assert isinstance(result.failure, aiosmtplib.SMTPServerDisconnected)


def test_a_reply_that_does_not_come_in_time_fails_the_group_with_what_was_read():
    async def scenario():
        protocol, _ = await _connected()
        return await _exchange(protocol, [b"250 Ok\r\n"], 3, timeout=0.05)

    result = run(scenario())

    assert [r.code for r in result.replies] == [250]
    assert isinstance(result.failure, aiosmtplib.SMTPReadTimeoutError)


def test_a_reply_that_never_ends_is_refused_instead_of_filling_memory():
    async def scenario():
        protocol, _ = await _connected()
        endless = [b"250-" + b"x" * 1000 + b"\r\n"] * 40  # 40 KB of continuation lines, never a last line
        return await _exchange(protocol, endless, 1)

    result = run(scenario())

    assert result.replies == []
    assert isinstance(result.failure, aiosmtplib.SMTPResponseException) and "too long" in str(result.failure)


def test_a_single_command_owes_one_reply_so_the_rest_of_its_read_is_not_kept():
    # What STARTTLS relies on (RFC 3207 4.2): bytes behind the 220 in the same read answer nothing.
    async def scenario():
        protocol, _ = await _connected()
        task = asyncio.create_task(protocol.execute_command(b"STARTTLS", timeout=1))
        await asyncio.sleep(0)
        protocol.data_received(b"220 Ready to start TLS\r\n250-PIPELINING\r\n250 injected\r\n")
        ready = await task
        after = await _exchange(protocol, [b"250 Ok\r\n"], 1)
        return ready, after

    ready, after = run(scenario())

    assert ready.code == 220
    assert [r.message for r in after.replies] == ["Ok"]


# --- what the envelope's replies mean ------------------------------------------------------------------------

MESSAGE = Outgoing("a@acme.test", ("b@example.net", "c@example.net"), b"Subject: x\r\n\r\nhi\r\n")


def _replies(*pairs: tuple[int, str]) -> list[SMTPResponse]:
    return [SMTPResponse(code, text) for code, text in pairs]


def test_an_accepted_envelope_sends_the_body_with_the_refused_recipients_noted():
    verdict = judge(MESSAGE, _replies((250, "Ok"), (250, "Ok"), (452, "4.2.2 Mailbox full"), (354, "Go")))

    assert verdict.send_body and verdict.error is None
    assert [(r.recipient, r.smtp_code, r.enhanced_status) for r in verdict.refused] == [
        ("c@example.net", 452, "4.2.2")]


def test_a_refused_mail_from_is_the_error_and_a_354_after_it_gets_a_lone_dot_then_rset():
    verdict = judge(MESSAGE, _replies((550, "5.7.1 Sender refused"), (503, "need MAIL"), (503, "need MAIL"),
                                      (354, "Go")))

    assert not verdict.send_body and isinstance(verdict.error, PermanentDeliveryError)
    assert verdict.error.smtp_code == 550 and verdict.lone_dot and verdict.reset


def test_a_421_on_mail_from_means_nothing_was_accepted_and_the_server_is_closing():
    verdict = judge(MESSAGE, _replies((421, "4.3.2 Shutting down")))

    assert isinstance(verdict.error, NothingAcceptedError) and verdict.closing
    assert verdict.error.server_reply == "421 4.3.2 Shutting down"


def test_every_recipient_refused_takes_the_mildest_reply_and_never_the_body():
    verdict = judge(MESSAGE, _replies((250, "Ok"), (550, "5.1.1 No such user"), (450, "4.2.0 Greylisted"),
                                      (503, "5.5.1 need RCPT")))

    assert not verdict.send_body and not verdict.lone_dot and verdict.reset
    assert isinstance(verdict.error, TransientDeliveryError) and verdict.error.smtp_code == 450
    assert [r.smtp_code for r in verdict.error.refused] == [550, 450]


def test_a_refused_data_command_is_the_error_and_keeps_the_recipients_it_refused():
    verdict = judge(MESSAGE, _replies((250, "Ok"), (250, "Ok"), (550, "5.1.1 No"), (554, "5.7.1 Rejected")))

    assert not verdict.send_body and verdict.reset
    assert isinstance(verdict.error, PermanentDeliveryError) and verdict.error.smtp_code == 554
    assert [r.recipient for r in verdict.error.refused] == ["c@example.net"]


@pytest.mark.parametrize("address", ["b@example.net>\r\nRCPT TO:<m@evil.test", "b@example.net NOTIFY=NEVER",
                                     "<b@example.net>", "jöe@example.net", "b@example.net\x00", "b" * 250 + "@x.test"])
def test_an_address_that_cannot_go_on_a_command_line_as_it_is_is_refused_before_anything_is_sent(address):
    with pytest.raises(PermanentDeliveryError):
        envelope_lines(Outgoing("a@acme.test", ("ok@example.net", address), b"x\r\n"))


def test_the_body_is_dot_stuffed_and_ends_with_crlf_and_the_final_dot():
    assert body_with_end(b".one\r\ntwo\r\n..three") == b"..one\r\ntwo\r\n...three\r\n.\r\n"
