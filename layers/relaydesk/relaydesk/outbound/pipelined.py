"""Mail transactions over one smarthost connection, pipelined (RFC 2920) when the server advertises PIPELINING.

With CHUNKING advertised too (RFC 3030: Postfix 3.4 on, Exchange Online, Gmail), a message is one write: MAIL
FROM, every RCPT TO and `BDAT <octets> LAST` with the exact body (`outbound/chunked.py`), so every message costs one
round trip, a connection's first included, and there is no 354 to wait for. With PIPELINING alone, a message costs
one round trip for its envelope (MAIL FROM, every RCPT TO and DATA in one write) and one for its body; when the
next message is ready, its envelope rides in the same write as the previous body and final dot (RFC 2920 3.1:
message content may open a group), so a stream of messages costs one round trip each after the first. Without
PIPELINING, one command at a time. TLS and AUTH are `SmtpSubmission`'s: a verified TLS connection before any
credentials, one AUTH. A message larger than the server's SIZE is not sent. Results per message have the shape of
`SmtpSubmission.send`: `Accepted` with the refused recipients, or the typed error it raises.
"""

from __future__ import annotations

import select
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from relaydesk.errors import NothingAcceptedError, ReplyCode, SmtpDeliveryError, TransientDeliveryError
from relaydesk.outbound.chunked import chunked_group, judge_chunk, judge_cut_short, over_size
from relaydesk.outbound.envelope import (
    END_OF_DATA,
    RESET,
    Outgoing,
    Verdict,
    body_with_end,
    envelope_lines,
    judge,
)
from relaydesk.outbound.pipelining import GroupReplies, PipeliningSMTP
from relaydesk.outbound.policy import enhanced_status, error_for_reply
from relaydesk.outbound.smtp import LOST_AFTER_DATA, OUT_OF_TIME, Accepted, SmtpSubmission
from relaydesk.tickets.model import RecipientOutcome

Sent = Accepted | SmtpDeliveryError
Report = Callable[[Outgoing, Sent], None]


class MessageSource(Protocol):
    """Where a connection takes its next message from (several connections may share one)."""

    def ready(self) -> Outgoing | None:
        """A message prepared already, or None; never waits."""

    async def next(self) -> Outgoing | None:
        """The next message, once it is prepared; None when there are no more."""


class Backlog:
    """A `MessageSource` over messages prepared in advance, shared by any number of connections."""

    def __init__(self, messages: Iterable[Outgoing]) -> None:
        self._waiting = deque(messages)

    def __len__(self) -> int:
        return len(self._waiting)

    def ready(self) -> Outgoing | None:
        return self._waiting.popleft() if self._waiting else None

    async def next(self) -> Outgoing | None:
        return self.ready()


@dataclass
class _Carried:
    """Bytes that open the next group (a body and its final dot, or a lone dot and RSET) and whose replies that
    group reads first: for `message` the end of data's reply decides its fate; the others are only read."""

    data: bytes = b""
    message: Outgoing | None = None
    refused: list[RecipientOutcome] = field(default_factory=list)
    replies: int = 0

    @classmethod
    def after(cls, message: Outgoing, verdict: Verdict) -> _Carried:
        if verdict.send_body:
            return cls(body_with_end(message.data), message, verdict.refused, 1)
        data = (END_OF_DATA if verdict.lone_dot else b"") + (RESET if verdict.reset else b"")
        return cls(data, None, [], data.count(b"\r\n"))


# A BDAT reply that comes this long after the envelope's replies, and at least half their round trip later, was held
# back by the server, not computed: Postfix reads its input 4 KB at a time and, when the group is longer, sends the
# envelope's replies before it has read the chunk; without TCP_NODELAY its BDAT reply then waits for the client's
# ACK of them (Nagle), a delayed ACK (at least 40 ms on Linux) or a round trip more a message. DATA is not hit: each
# of the server's writes follows one of the client's, which carries the ACK.
HELD_BACK = 0.03
HELD_BACK_TIMES = 2  # a busy machine can stall one reply too; a server that holds them back does it every time
# Smarthosts (routes) and how often they held a BDAT reply back: at HELD_BACK_TIMES, every connection of this
# container sends them DATA from then on, a new one included (it would pay the wait again to learn it again).
_HELD_BACK_BY: dict[str, int] = {}


def held_back(route: str) -> bool:
    """Has the smarthost at `route` held BDAT replies back (so this container sends it DATA)?"""
    return _HELD_BACK_BY.get(route, 0) >= HELD_BACK_TIMES


def forget_held_back(route: str) -> None:
    """A new server at `route` (a test's, on a port an earlier one had): BDAT is tried again."""
    _HELD_BACK_BY.pop(route, None)


def reply_held_back(exchanged: GroupReplies) -> bool:
    """Did the BDAT reply (the group's last) come `HELD_BACK` or more after the reply before it, and at least half
    the envelope's round trip later?"""
    if len(exchanged.arrived) < 2:
        return False
    first, before_last, last = exchanged.arrived[0], exchanged.arrived[-2], exchanged.arrived[-1]
    gap = last - before_last
    return gap >= HELD_BACK and gap >= (first - exchanged.written_at) / 2


def _too_late(message: Outgoing, worst: float) -> bool:
    """Would an answer that takes `worst` seconds more come after the message's deadline?"""
    return message.deadline is not None and time.monotonic() + worst > message.deadline


class PipelinedSubmission(SmtpSubmission):
    """`SmtpSubmission` (open, TLS, AUTH, close, pooling) whose mail transactions are pipelined when the server
    advertises PIPELINING. `send` keeps `SmtpSubmission.send`'s contract; `stream` sends many messages."""

    client_class = PipeliningSMTP

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.round_trips = 0  # groups written, each followed by a wait for its replies
        self._reset_owed = False  # a refused chunked transaction: RSET opens the next group

    @property
    def pipelining(self) -> bool:
        smtp = self._smtp
        return isinstance(smtp, PipeliningSMTP) and smtp.is_connected and smtp.pipelining

    @property
    def chunking(self) -> bool:
        """Messages go as BDAT (RFC 3030) with their envelope in one write: the server advertised CHUNKING and
        PIPELINING (without PIPELINING, one command at a time as before), and it has not held a BDAT reply back
        (`reply_held_back`: then DATA, on every connection to it)."""
        smtp = self._smtp
        return self.pipelining and isinstance(smtp, PipeliningSMTP) and smtp.chunking and not held_back(self.route)

    def _check_size(self, message: Outgoing) -> None:
        """Raises `over_size`'s 552 for a message larger than the server's SIZE, before anything of it is sent."""
        smtp = self._smtp
        too_big = over_size(message, smtp.size_limit if isinstance(smtp, PipeliningSMTP) else None)
        if too_big is not None:
            raise too_big

    async def send(self, envelope_from: str, recipients: list[str], data: bytes, *,
                   deadline: float | None = None) -> Accepted:
        """One mail transaction with exactly `data`. Raises a typed error; partial recipient refusals come back in
        `Accepted.refused`. `deadline` (`time.monotonic()`): the answer to the end of data must come by then, so
        the envelope is not written when its round trip and the data timeout would pass it (DATA rides in the same
        write: once the server answers 354, the only way back is to drop the connection)."""
        [sent] = await self.send_all([Outgoing(envelope_from, tuple(recipients), data, deadline=deadline)])
        if isinstance(sent, SmtpDeliveryError):
            raise sent
        return sent

    async def send_all(self, messages: Iterable[Outgoing]) -> list[Sent]:
        """Every message's result, in order; a message the connection ended before is NothingAcceptedError."""
        batch = [replace(message, tag=index) for index, message in enumerate(messages)]
        results: dict[object, Sent] = {}
        await self.stream(Backlog(batch), lambda message, sent: results.__setitem__(message.tag, sent))
        return [results.get(index) or NothingAcceptedError(f"not connected to {self.route}")
                for index in range(len(batch))]

    async def stream(self, source: MessageSource, report: Report) -> None:
        """Send messages from `source` until it has none left or the connection ends. `report(message, result)` is
        called for each message taken, as soon as its result is known; a message this connection did not take
        stays in `source` for another one."""
        if self.chunking and not await self._stream_chunked(source, report):
            return
        carried = _Carried()
        if self._reset_owed:  # the last chunked transaction was refused
            carried, self._reset_owed = _Carried(RESET, replies=1), False
        message = await source.next() if self.connected else None
        while message is not None:
            verdict = await self._transaction(message, carried, report)
            if verdict is None or verdict.closing:
                return
            if verdict.send_body and _too_late(message, self._timeouts.data):
                # The envelope's replies came so late that the end of data's answer could pass the deadline: the
                # body is not sent, and the transaction the server opened ends with the connection.
                await self.close()
                report(message, TransientDeliveryError(OUT_OF_TIME))
                return
            carried = _Carried.after(message, verdict)
            if not self.connected:  # closed by the server after its reply: the body never left
                if carried.message is not None:
                    report(message, NothingAcceptedError(f"the connection to {self.route} closed before the body"))
                return
            # The next envelope rides with this body when it is ready; otherwise the body goes alone, now.
            message = source.ready() if self.pipelining else None
            if message is None:
                if carried.data and not await self._flush(carried, report):
                    return
                carried = _Carried()
                message = await source.next() if self.connected else None

    async def _transaction(self, message: Outgoing, carried: _Carried, report: Report) -> Verdict | None:
        """Envelope of `message` (after what is carried); reports the carried message's result and, when the
        transaction ends here, this one's. None: the connection ended."""
        try:
            lines = envelope_lines(message)
            self._check_size(message)
        except SmtpDeliveryError as error:
            if carried.data and not await self._flush(carried, report):
                return None
            report(message, error)
            return Verdict(False)
        if _too_late(message, self._timeouts.command + self._timeouts.data):
            # Checked before the envelope is written: DATA goes out with it, and after the server's 354 the body
            # follows. Nothing of this message leaves; the carried one is settled first.
            if carried.data and not await self._flush(carried, report):
                return None
            report(message, TransientDeliveryError(OUT_OF_TIME))
            return Verdict(False)
        if self.pipelining:
            group = await self._exchange(carried.data + b"".join(lines),
                                         self._timeouts_for(carried) + [self._timeouts.command] * len(lines))
            replies = self._settle(carried, group, report)
        else:
            replies, group = await self._one_at_a_time(message, lines)
        if group.failure is not None and len(replies) < len(lines):
            report(message, self._before_data(group.failure, replies))
            return None
        verdict = judge(message, replies)
        if verdict.error is not None:
            report(message, verdict.error)
        return verdict

    # --- CHUNKING: one write and one round trip a message ------------------------------------------------------

    async def _stream_chunked(self, source: MessageSource, report: Report) -> bool:
        """Each message in one group (MAIL FROM, every RCPT TO, BDAT LAST and the body) and one round trip; the
        source prepares the next one meanwhile. A refused transaction leaves RSET to open the next group. True:
        the connection goes on with DATA (the server held a BDAT reply back)."""
        if not self._idle_and_quiet():
            return False
        message = await source.next()
        while message is not None and await self._send_chunked(message, report):
            message = await source.next() if self.connected else None
        return self.connected and held_back(self.route)

    async def _send_chunked(self, message: Outgoing, report: Report) -> bool:
        """One message; False when the connection ended."""
        try:
            group, owed = chunked_group(message)
            self._check_size(message)
        except SmtpDeliveryError as error:
            report(message, error)
            return True
        if _too_late(message, self._timeouts.command + self._timeouts.data):
            # The body leaves with the envelope: nothing of this message is written when its answer could come
            # after the deadline.
            report(message, TransientDeliveryError(OUT_OF_TIME))
            return True
        reset = 1 if self._reset_owed else 0
        timeouts = [self._timeouts.command] * (reset + owed - 1) + [self._timeouts.data]
        exchanged = await self._exchange(RESET * reset + group, timeouts)
        if not exchanged.written:  # the connection was gone: none of it left, another connection may send it
            report(message, NothingAcceptedError(f"not connected to {self.route}"))
            return False
        self._reset_owed = False
        replies = exchanged.replies[reset:]
        if exchanged.failure is not None:
            report(message, judge_cut_short(message, replies, exchanged.failure,
                                            before=exchanged.replies[:reset]))
            return False
        sent, self._reset_owed = judge_chunk(message, replies)
        report(message, sent)
        if reply_held_back(exchanged):
            _HELD_BACK_BY[self.route] = _HELD_BACK_BY.get(self.route, 0) + 1
            if held_back(self.route):
                return False  # the stream goes on with DATA, where the next envelope rides with the previous body
        return self.connected

    def _idle_and_quiet(self) -> bool:
        """An idle connection has nothing to say: one the server closed or wrote to meanwhile (a 421 for an idle
        timeout, a TLS close) while the event loop had not looked yet (a container thawed a moment ago) is closed
        now, before a group is written that it would take as doubtful; the message goes on a new connection."""
        smtp = self._smtp
        transport = smtp.transport if smtp is not None else None
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return self.connected
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable:
            assert smtp is not None
            smtp.close()
            self._smtp = None
            self.authenticated_as = None
            return False
        return self.connected

    async def _one_at_a_time(self, message: Outgoing, lines: list[bytes]) -> tuple[list[SMTPResponse], GroupReplies]:
        """Without PIPELINING: each command waits for its reply; no RCPT after a refused MAIL, no DATA when every
        recipient was refused."""
        replies: list[SMTPResponse] = []
        for index, line in enumerate(lines):
            group = await self._exchange(line, [self._timeouts.command])
            replies += group.replies
            if group.failure is not None:
                return replies, group
            refused_mail = index == 0 and replies[0].code != ReplyCode.OK
            nobody = index == len(message.recipients) and all(r.code // 100 != 2 for r in replies[1:])
            if refused_mail or nobody:
                break
        return replies, GroupReplies(replies)

    async def _flush(self, carried: _Carried, report: Report) -> bool:
        """Send what is carried on its own; False when the connection ended."""
        group = await self._exchange(carried.data, self._timeouts_for(carried))
        self._settle(carried, group, report)
        return group.failure is None and self.connected

    def _timeouts_for(self, carried: _Carried) -> list[float]:
        first = self._timeouts.data if carried.message is not None else self._timeouts.command
        return [first] + [self._timeouts.command] * (carried.replies - 1) if carried.replies else []

    def _settle(self, carried: _Carried, group: GroupReplies, report: Report) -> list[SMTPResponse]:
        """Report the carried message's end of data; returns the replies that follow the carried ones."""
        if carried.message is not None:
            if group.replies:
                report(carried.message, self._end_of_data(carried, group.replies[0]))
            else:
                name = type(group.failure).__name__
                report(carried.message, TransientDeliveryError(f"{LOST_AFTER_DATA} ({name})"))
        return group.replies[carried.replies:]

    def _end_of_data(self, carried: _Carried, reply: SMTPResponse) -> Sent:
        if reply.code // 100 == 2:
            return Accepted(code=reply.code, reply=f"{reply.code} {reply.message}", refused=carried.refused)
        return error_for_reply(reply.code, reply.message, f"the message was refused: {reply.code} {reply.message}",
                               refused=carried.refused)

    def _before_data(self, failure: aiosmtplib.SMTPException, replies: list[SMTPResponse]) -> SmtpDeliveryError:
        """The connection failed before the server saw any of the body: nothing of this message was accepted.
        A stalled server is not a closed one: a timeout is not sent again at once (that would double the wait)."""
        if isinstance(failure, aiosmtplib.SMTPTimeoutError):
            return TransientDeliveryError(f"the envelope to {self.route} timed out")
        closing = next((reply for reply in replies if reply.code == ReplyCode.SERVICE_CLOSING), None)
        if closing is not None:  # RFC 5321 3.8: it said why before it closed
            said = f"{closing.code} {closing.message}"
            return NothingAcceptedError(f"the smarthost closed the connection: {said}", smtp_code=closing.code,
                                        enhanced_status=enhanced_status(closing.message), server_reply=said)
        return NothingAcceptedError(f"the envelope to {self.route} failed: {type(failure).__name__}")

    async def _exchange(self, group: bytes, timeouts: list[float]) -> GroupReplies:
        smtp = self._smtp
        if not isinstance(smtp, PipeliningSMTP) or not smtp.is_connected:
            return GroupReplies([], aiosmtplib.SMTPServerDisconnected(f"not connected to {self.route}"))
        self.round_trips += 1
        group_replies = await smtp.exchange(group, timeouts)
        if group_replies.failure is not None or any(r.code == ReplyCode.SERVICE_CLOSING for r in group_replies.replies):
            smtp.close()  # no QUIT: the server is closing, or replies still owed would pair with the wrong commands
            await self.close()
        return group_replies
