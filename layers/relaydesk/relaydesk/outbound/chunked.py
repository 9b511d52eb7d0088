"""One message as RFC 3030 CHUNKING sends it over a pipelining connection: MAIL FROM, every RCPT TO and
`BDAT <octets> LAST` followed by the exact octets, in one write, and what the replies to that group mean. No I/O.

Unlike DATA, the body leaves with the envelope: there is no 354 to wait for, and no dot-stuffing (the length frames
the body, RFC 3030 2). The server reads the chunk whatever it answered before it (RFC 3030 2: it "MUST accept and
discard the associated message data"), so its reply to BDAT is always owed and read, and the connection stays in
step. Once the group is written, a connection lost before the BDAT reply leaves the message doubtful, as one lost
after the final dot of DATA does: the server may have taken it.
"""

from __future__ import annotations

from aiosmtplib.response import SMTPResponse

from relaydesk.errors import PermanentDeliveryError, ReplyCode, SmtpDeliveryError, TransientDeliveryError
from relaydesk.outbound.envelope import Outgoing, address_lines, closing_error, envelope_refusal
from relaydesk.outbound.policy import error_for_reply
from relaydesk.outbound.smtp import LOST_AFTER_DATA, Accepted

CRLF = b"\r\n"


def chunked_group(message: Outgoing) -> tuple[bytes, int]:
    """The group's bytes and the replies it is owed (MAIL, one per RCPT, BDAT). The body is sent as it is and
    ends in CRLF (RFC 5322's last line; DKIM signs it with one). Raises PermanentDeliveryError before anything is
    sent."""
    lines = address_lines(message)
    body = message.data if message.data.endswith(CRLF) else message.data + CRLF
    return b"".join(lines) + b"BDAT %d LAST\r\n" % len(body) + body, len(lines) + 1


def judge_chunk(message: Outgoing, replies: list[SMTPResponse]) -> tuple[Accepted | SmtpDeliveryError, bool]:
    """Every reply of the group (MAIL, each RCPT, BDAT): the message's result, and whether RSET goes before the
    next transaction (after any refusal, so the server's state is known whatever it did with the failed one).
    A refused MAIL FROM or every recipient refused is the message's result; the BDAT's error that follows it
    (503, 554) is only the server saying it discarded the chunk."""
    refused, error = envelope_refusal(message, replies[0], replies[1:-1])
    if error is not None:
        return error, error.smtp_code != ReplyCode.SERVICE_CLOSING
    bdat = replies[-1]
    if ReplyCode.is_positive(bdat.code):
        return Accepted(code=bdat.code, reply=f"{bdat.code} {bdat.message}", refused=refused), False
    return error_for_reply(bdat.code, bdat.message, f"the message was refused: {bdat.code} {bdat.message}",
                           refused=refused), True


def judge_cut_short(message: Outgoing, replies: list[SMTPResponse], failure: Exception, *,
                    before: list[SMTPResponse] | None = None) -> SmtpDeliveryError:
    """The group was written but the connection failed (lost, timed out, a malformed reply) before the BDAT reply.
    `replies`: the message's that came (MAIL's first); `before`: those of what opened the group (an RSET).
    Nothing was accepted when the replies that came already end the transaction (a refused MAIL FROM, every
    recipient refused, a 421 before BDAT: the server closed before it read the chunk); otherwise the server may
    have taken the message and the client cannot know: the doubtful case, retried later with the same Message-ID."""
    closing = next((reply for reply in [*(before or []), *replies] if reply.code == ReplyCode.SERVICE_CLOSING), None)
    if closing is not None:  # RFC 5321 3.8: it said why before it closed
        return closing_error(closing, f"the smarthost closed the connection: {closing.code} {closing.message}")
    if replies:
        _, error = envelope_refusal(message, replies[0], replies[1:])
        if error is not None:
            return error
    return TransientDeliveryError(f"{LOST_AFTER_DATA} ({type(failure).__name__})")


def over_size(message: Outgoing, limit: int | None) -> SmtpDeliveryError | None:
    """The server's SIZE (RFC 1870 4: the largest message it takes) rules the message out before anything is
    sent: the same 552 a server answers at the end of the data, so a message with attachments goes again with
    links instead."""
    size = len(message.data)
    if limit is None or size <= limit:
        return None
    return PermanentDeliveryError(f"the message is {size} octets, more than the {limit} the smarthost takes "
                                  "(its SIZE); nothing was sent", smtp_code=ReplyCode.MESSAGE_TOO_BIG,
                                  enhanced_status="5.3.4")

