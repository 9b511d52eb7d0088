"""One message's envelope on the wire: the MAIL FROM, RCPT TO and DATA lines, and what the server's replies to them
mean (RFC 5321 3.3, RFC 2920 3.1), with the same errors `SmtpSubmission.send` raises. No I/O here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aiosmtplib.response import SMTPResponse

from relaydesk.errors import NothingAcceptedError, PermanentDeliveryError, ReplyCode, SmtpDeliveryError
from relaydesk.outbound.policy import enhanced_status, error_for_reply
from relaydesk.tickets.model import RecipientOutcome

PATH_LIMIT = 254  # RFC 5321 4.5.3.1.3: a path is at most 256 octets, angle brackets included
# Printable ASCII without space, angle brackets or quotes: what compose puts in an envelope (an internationalised
# domain goes out as its A-label); an empty address is the null sender of RFC 5321 4.5.5.
SENDABLE_ADDRESS = re.compile(r'(?:[!#-;=?-~]+@[!#-;=?-~]+)?', re.ASCII)
LEADING_DOT = re.compile(rb"(?m)^\.")
END_OF_DATA = b".\r\n"  # RFC 5321 4.1.1.4
RESET = b"RSET\r\n"


@dataclass(frozen=True, eq=False)
class Outgoing:
    """A message ready for the wire: envelope and exact bytes (CRLF, signed). `tag` is the caller's own handle
    (a notification id, an index), handed back with the result untouched. `deadline` (`time.monotonic()`): the
    server's answer to its end of data must come by then, else the end of data is not sent (OUT_OF_TIME)."""

    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    tag: object = None
    deadline: float | None = None


def _address_line(verb: bytes, address: str) -> bytes:
    """`MAIL FROM:<a>` or `RCPT TO:<a>` with CRLF, the address exactly as given. One that cannot go on a command
    line as it is (not ASCII, a control character, a space or an angle bracket that would smuggle a parameter or a
    command in, too long) is refused whole: aiosmtplib's `quote_address` would parse a shorter address out of it
    and send the mail there instead."""
    if len(address) > PATH_LIMIT or not SENDABLE_ADDRESS.fullmatch(address):
        raise PermanentDeliveryError(f"the address {address[:80]!r} cannot be sent in an SMTP command",
                                     recipient=address[:PATH_LIMIT])
    return verb + b"<" + address.encode("ascii") + b">\r\n"


def address_lines(message: Outgoing) -> list[bytes]:
    """MAIL FROM and one RCPT TO per recipient. Raises PermanentDeliveryError before anything is sent."""
    if not message.recipients:
        raise PermanentDeliveryError("the message has no recipient")
    return [_address_line(b"MAIL FROM:", message.envelope_from),
            *(_address_line(b"RCPT TO:", recipient) for recipient in message.recipients)]


def envelope_lines(message: Outgoing) -> list[bytes]:
    """MAIL FROM, one RCPT TO per recipient, DATA. Raises PermanentDeliveryError before anything is sent."""
    return [*address_lines(message), b"DATA\r\n"]


def body_with_end(data: bytes) -> bytes:
    """The message as DATA carries it: dot-stuffed (RFC 5321 4.5.2), CRLF-terminated, then the final dot."""
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return LEADING_DOT.sub(b"..", data) + END_OF_DATA


@dataclass(frozen=True)
class Verdict:
    """What the envelope's replies decide. `send_body`: DATA was answered 354 and the transaction goes on.
    Otherwise `error` is the message's result, and before the next transaction the client sends a lone final dot
    (`lone_dot`: DATA was answered 354 although nothing may be sent, RFC 2920 3.1) and RSET (`reset`)."""

    send_body: bool
    refused: list[RecipientOutcome] = field(default_factory=list)
    error: SmtpDeliveryError | None = None
    lone_dot: bool = False
    reset: bool = False

    @property
    def closing(self) -> bool:
        """The server said 421: it is closing the connection (RFC 5321 3.8)."""
        return self.error is not None and self.error.smtp_code == ReplyCode.SERVICE_CLOSING


def closing_error(reply: SMTPResponse, said: str) -> NothingAcceptedError:
    """The server said 421 and closes (RFC 5321 3.8) before it took the message: nothing of it was accepted."""
    return NothingAcceptedError(said, smtp_code=reply.code, enhanced_status=enhanced_status(reply.message),
                                server_reply=f"{reply.code} {reply.message}")


def envelope_refusal(message: Outgoing, mail: SMTPResponse,
                     rcpts: list[SMTPResponse]) -> tuple[list[RecipientOutcome], SmtpDeliveryError | None]:
    """The recipients refused so far, and the message's error when the envelope ends the transaction: a refused
    MAIL FROM (the RCPTs' replies after it say nothing about the recipients), or every recipient refused (the
    mildest refusal decides: a 4xx anywhere is worth a retry; every recipient's reply goes to the ticket)."""
    if mail.code != ReplyCode.OK:
        said = f"MAIL FROM refused: {mail.code} {mail.message}"
        if mail.code == ReplyCode.SERVICE_CLOSING:
            return [], closing_error(mail, said)
        return [], error_for_reply(mail.code, mail.message, said)
    refused = [RecipientOutcome(recipient=recipient, smtp_code=reply.code,
                                enhanced_status=enhanced_status(reply.message), reply=f"{reply.code} {reply.message}")
               for recipient, reply in zip(message.recipients, rcpts, strict=False)
               if reply.code not in (ReplyCode.OK, ReplyCode.WILL_FORWARD)]
    if len(rcpts) >= len(message.recipients) and len(refused) == len(message.recipients):
        mildest = min(refused, key=lambda r: r.smtp_code or 0)
        return refused, error_for_reply(mildest.smtp_code, mildest.reply.partition(" ")[2],
                                        f"every recipient was refused: {mildest.reply}", recipient=mildest.recipient,
                                        refused=refused)
    return refused, None


def judge(message: Outgoing, replies: list[SMTPResponse]) -> Verdict:
    """`replies`: MAIL's, then one per RCPT, then DATA's (missing when a client that does not pipeline stopped
    before DATA). Every status of the group is checked (RFC 2920 3.1)."""
    mail, rest = replies[0], replies[1:]
    rcpts, data = rest[:len(message.recipients)], rest[len(message.recipients):]
    data_reply = data[0] if data else None
    lone_dot = data_reply is not None and data_reply.code == ReplyCode.START_MAIL_INPUT
    refused, error = envelope_refusal(message, mail, rcpts)
    if error is not None:
        if isinstance(error, NothingAcceptedError) and error.smtp_code == ReplyCode.SERVICE_CLOSING:
            return Verdict(False, error=error)
        return Verdict(False, refused=refused, error=error, lone_dot=lone_dot, reset=True)
    if data_reply is None or data_reply.code != ReplyCode.START_MAIL_INPUT:
        code, text = (data_reply.code, data_reply.message) if data_reply else (None, "DATA was not answered")
        error = error_for_reply(code, text, f"the message was refused: {code} {text}")
        error.refused = refused  # type: ignore[attr-defined]
        return Verdict(False, refused=refused, error=error, reset=True)
    return Verdict(True, refused=refused)
