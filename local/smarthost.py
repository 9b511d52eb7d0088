"""A real SMTP server for tests and the local stack: STARTTLS or implicit TLS, AUTH, recording, scripted faults.

One class, `SmtpServer`, in the modes a customer's mail server has:

- ``mode="starttls"`` (port 587 style, the default): STARTTLS offered and, with ``require_tls=True``, required
  before AUTH and MAIL; AUTH PLAIN/LOGIN required (``auth_required=True``).
- ``mode="implicit"`` (port 465 style): TLS from the first byte.
- ``mode="none"``: no STARTTLS offered at all (a misconfigured server). AUTH is then never offered either,
  because AUTH is only accepted over TLS; a client that insists gets 530/538.
- ``oauth=TokenServer(...)`` (any mode with TLS): AUTH XOAUTH2 is offered too, as Exchange Online and Gmail do; a
  token that `oauth` issued gets 235 (``auth_user`` is the mailbox) when it may send as the mailbox: an app's token
  if the app may (``oauth_mailboxes``: client id -> mailboxes), a service account's token if it was issued for that
  very mailbox (its `sub`) with Gmail's scope. Anything else gets ``535 5.7.3 Authentication unsuccessful`` as
  Exchange Online answers, or with ``xoauth2_replies="gmail"`` Gmail's error challenge (334 and a base64 JSON
  status), then ``535-5.7.8 Username and Password not accepted``.
- ``pipelining=True`` (the default, as Postfix, Exchange Online and Gmail do) advertises PIPELINING (RFC 2920) in
  the EHLO reply; aiosmtpd reads commands line by line and answers each in order, so a pipelined group works.
- ``chunking=True`` (the default, as Postfix, Exchange Online and Gmail do) advertises CHUNKING (RFC 3030): a
  message may come as ``BDAT <octets> [LAST]`` and exactly that many octets, in one chunk or several; the chunk is
  always read, also when it is refused (no MAIL: 503; every RCPT refused: 554; too big: 552), and a LAST chunk is
  handed to the handler as the end of DATA is, with the same ``DATA`` faults (reply, stall, drop after the data).
  ``chunking=False``: a server that only knows DATA (BDAT gets 500 and what follows is read as commands).
- ``end_of_data_wait=0.2`` waits that long before answering the end of DATA, as Exchange Online does while it scans
  a message; ``server.end_of_data_wait`` may be changed while it runs.
- ``record_reads=True`` keeps every chunk the server read after TLS (``server.reads``: connection number, bytes), so
  a test can see which commands arrived together.

It runs on 127.0.0.1 with an ephemeral port in its own thread (aiosmtpd's threaded controller), so sync and
async tests use it alike::

    server = SmtpServer(ca, users={"relay@acme.test": "s3cret"}).start()
    ...  # send to (server.host, server.port), trusting server.ca_pem
    server.received[0].data          # the exact bytes received after DATA
    server.faults.reply("RCPT", "550 5.1.1 No such user", recipient="bob@example.test")
    server.set_password("relay@acme.test", "new")   # rotation on the server side
    server.stop()

Like a real server, it can be broken and fixed while it runs: ``server.offer_starttls(False)`` (EHLO no longer offers
STARTTLS, as after a bad Postfix reload), ``server.use_certificate(["wrong.example.net"])`` (the next handshakes
present another certificate), ``server.drop_connections()`` (a reload: open sessions are closed).
``cram_md5=True`` also offers AUTH CRAM-MD5 (before PLAIN and LOGIN, as Cyrus SASL lists it). Every AUTH attempt is
an `AuthAttempt` in ``server.auth_log`` (user, mechanism, outcome and a digest of what was tried, never the secret
itself), so a test can count failed logins per password.

Every accepted message is a `Received`; counters are in `server.stats`. `on_message(received)` (optional) runs in a
worker thread before the server replies 250, so a mail server built on this can forward or store the message;
if it raises, the server replies 451 and the message is not counted as accepted.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from local.ca import LocalCA, ServerCertificate

if TYPE_CHECKING:
    from local.oauth_server import TokenServer
    from local.provider_limits import SendingLimits

log = logging.getLogger(__name__)


def _not_aiosmtpd_own_deprecation(record: logging.LogRecord) -> bool:
    # aiosmtpd 1.4 sets its own deprecated Session.login_data after every successful AUTH and warns about it, one
    # line per login in every test run and bench; nothing here reads login_data (we use auth_data).
    return "login_data is deprecated" not in record.getMessage()


logging.getLogger("mail.log").addFilter(_not_aiosmtpd_own_deprecation)

Mode = Literal["starttls", "implicit", "none"]
COMMANDS = ("CONNECT", "EHLO", "MAIL", "RCPT", "DATA")
DATA_COMMAND = "DATA-COMMAND"  # faults on the DATA command itself; "DATA" ones apply after the final dot
DATA_WITHOUT_RECIPIENTS = "DATA-WITHOUT-RECIPIENTS"
DATA_WITHOUT_RECIPIENTS_REPLY = "554 5.5.1 Error: no valid recipients"
XOAUTH2_REFUSED = "535 5.7.3 Authentication unsuccessful"  # Exchange Online's reply to a token it does not accept
# Gmail's: an error challenge (developers.google.com/gmail/imap/xoauth2-protocol), then 535 5.7.8 once the client
# sends an empty line.
GMAIL_XOAUTH2_CHALLENGE = '{"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"}'
GMAIL_XOAUTH2_REFUSED = ("535-5.7.8 Username and Password not accepted. For more information, go to\r\n"
                         "535 5.7.8  https://support.google.com/mail/?p=BadCredentials - gsmtp")
GMAIL_SCOPE = "https://mail.google.com/"
DEFAULT_CERT_NAMES = ("127.0.0.1", "localhost")


@dataclass
class Received:
    """One message that reached the end of DATA: envelope, exact bytes, who authenticated, what we answered.

    `reply` is None when the connection was dropped after the final dot before any reply (fault
    ``drop_after_data``): the server has the message, the client never learnt it.
    """

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    auth_user: str | None
    tls: bool
    reply: str | None
    peer: tuple | None = None
    received_at: float = field(default_factory=time.time)
    # The longest the server held back one reply of this transaction (faults ``stall`` at MAIL, RCPT or DATA): a
    # client whose timeout for that reply ran out may not know the message arrived (with BDAT the body had left).
    stalled: float = 0.0


@dataclass(frozen=True)
class AuthAttempt:
    """One AUTH as the server saw it. `digest`: SHA-256 of the password tried (`password_digest`), so a test can
    tell which password a failed login used without the log ever holding one; CRAM-MD5 and XOAUTH2 carry none."""

    user: str
    mechanism: str
    ok: bool
    digest: str | None = None


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


@dataclass
class Stats:
    """Counters a test asserts on the wire (how many connections, AUTH attempts, transactions)."""

    connections: int = 0
    auth_attempts: int = 0
    auth_failures: int = 0
    mail_commands: int = 0
    transactions: int = 0  # transactions that reached the end of DATA, whatever the reply
    reads: int = 0  # chunks read from clients (after TLS): a pipelined group arrives as one


@dataclass
class _Fault:
    command: str
    reply: str | None = None
    recipient: str | None = None
    stall: float = 0.0
    drop: bool = False
    times: int | None = None


class Faults:
    """Scripted misbehaviour, thread-safe; each fault may be limited to its first `times` uses.

    - ``reply(command, "451 4.3.0 Try later", recipient=None, times=None)``: answer MAIL, RCPT (all recipients or
      one) or DATA with a fixed reply instead of accepting (e.g. 421, 451, 452, 550, 552, 554). A 421 also closes
      the connection, as RFC 5321 says.
    - ``refuse_data(reply, times=None)``: answer the DATA command itself with `reply` instead of 354 (the refused
      DATA of RFC 2920 3.1; with no valid recipient aiosmtpd answers 503 by itself).
    - ``data_without_recipients(times=None)``: answer DATA with 354 even when no recipient was accepted (a server
      that ignores RFC 2920 3.1's advice); whatever the client sends up to the final dot is refused with 554 and
      kept in ``server.unaddressed`` (a client that follows RFC 2920 sends a lone dot).
    - ``drop_after_data(times=None)``: read the whole message, then drop the connection before replying.
    - ``drop_at(command, recipient=None, times=None)``: drop the connection instead of answering MAIL, RCPT (all
      recipients or one) or the DATA command: a connection lost in the middle of a pipelined group.
    - ``stall(command, seconds, times=None)``: say nothing for `seconds` before handling CONNECT (the greeting),
      EHLO, MAIL, RCPT or DATA (after the final dot).
    - ``clear()``: behave again.

    A wrong password is not a fault: change the user's password with `SmtpServer.set_password` (535 follows).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def reply(self, command: str, reply: str, *, recipient: str | None = None, times: int | None = None) -> None:
        command = command.upper()
        if command not in ("MAIL", "RCPT", "DATA"):
            raise ValueError(f"reply faults apply to MAIL, RCPT or DATA, not {command}")
        if not reply[:3].isdigit():
            raise ValueError("a reply starts with a three-digit code")
        self._add(_Fault(command, reply=reply, recipient=recipient.lower() if recipient else None, times=times))

    def refuse_data(self, reply: str, *, times: int | None = None) -> None:
        if not reply[:3].isdigit():
            raise ValueError("a reply starts with a three-digit code")
        self._add(_Fault(DATA_COMMAND, reply=reply, times=times))

    def data_without_recipients(self, *, times: int | None = None) -> None:
        self._add(_Fault(DATA_WITHOUT_RECIPIENTS, reply=DATA_WITHOUT_RECIPIENTS_REPLY, times=times))

    def drop_after_data(self, *, times: int | None = None) -> None:
        self._add(_Fault("DATA", drop=True, times=times))

    def drop_at(self, command: str, *, recipient: str | None = None, times: int | None = None) -> None:
        command = command.upper()
        if command not in ("MAIL", "RCPT", "DATA"):
            raise ValueError(f"drop_at applies to MAIL, RCPT or DATA, not {command}")
        self._add(_Fault(DATA_COMMAND if command == "DATA" else command, drop=True,
                         recipient=recipient.lower() if recipient else None, times=times))

    def stall(self, command: str, seconds: float, *, times: int | None = None) -> None:
        command = command.upper()
        if command not in COMMANDS:
            raise ValueError(f"stall applies to one of {COMMANDS}, not {command}")
        self._add(_Fault(command, stall=seconds, times=times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def _add(self, fault: _Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, command: str, *, recipient: str | None = None) -> list[_Fault]:
        """The faults that apply now (consuming one use of each)."""
        taken = []
        with self._lock:
            for fault in list(self._faults):
                if fault.command != command:
                    continue
                if fault.recipient and fault.recipient != (recipient or "").lower():
                    continue
                taken.append(fault)
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
        return taken


def _is_tls(server: SMTP) -> bool:
    return server.transport is not None and server.transport.get_extra_info("ssl_object") is not None


def _user(session) -> str:
    login = getattr(session.auth_data, "login", None)
    return login.decode("utf-8", "replace") if isinstance(login, bytes) else (login or "anonymous")


class _Protocol(SMTP):
    """aiosmtpd's SMTP plus a connection counter, a greeting stall, AUTH over implicit TLS and CHUNKING (BDAT)."""

    _chunks: bytearray | None = None  # the BDAT chunks of the transaction so far (RFC 3030)

    def __init__(self, owner: SmtpServer, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._owner = owner
        self._number = 0  # this connection's place in the server's count (1 = the first client)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None
        raw = transport.get_extra_info("socket")
        if first and raw is not None and raw.family in (socket.AF_INET, socket.AF_INET6):
            # aiosmtpd writes a multi-line reply (EHLO) a line per write; with Nagle on, the second line waits for
            # the client's delayed ACK (~40 ms on Linux), a cost no production MTA has. Measured by the relay bench.
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        if first and not self._owner.starttls_offered:
            self.tls_context = None  # EHLO offers no STARTTLS; AUTH is then never offered (it needs TLS)
            self.require_starttls = False
        if first:
            self._number = self._owner._count("connections")
            self._owner._sessions.add(self)
            # aiosmtpd only knows STARTTLS as "TLS"; on an implicit-TLS connection AUTH is already protected.
            if transport.get_extra_info("ssl_object") is not None:
                self._auth_require_tls = False

    def data_received(self, data: bytes) -> None:
        self._owner._read(self._number, data)
        super().data_received(data)

    def connection_lost(self, error: Exception | None) -> None:
        self._owner._sessions.discard(self)
        _Handler.end_transaction(self._owner, self.session)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        for fault in self._owner.faults.take("CONNECT"):
            await asyncio.sleep(fault.stall)
        await super()._handle_client()

    async def smtp_DATA(self, arg: str) -> None:
        if self.envelope is not None and self.envelope.mail_from and not self.envelope.rcpt_tos \
                and self._owner.faults.take(DATA_WITHOUT_RECIPIENTS):
            await self._take_unaddressed()
            return
        # Only where aiosmtpd itself would answer 354: a fault does not hide a missing EHLO, AUTH or recipient.
        ready = self.session is not None and self.session.host_name and self.envelope is not None \
            and self.envelope.rcpt_tos and not arg and (self.session.authenticated or not self._auth_required)
        faults = self._owner.faults.take(DATA_COMMAND) if ready else []
        if any(fault.drop for fault in faults):
            assert self.transport is not None
            self.transport.abort()
            return
        if reply := next((fault.reply for fault in faults if fault.reply), None):
            await self.push(reply)
            return
        await super().smtp_DATA(arg)

    async def smtp_BDAT(self, arg: str | None) -> None:
        """RFC 3030 CHUNKING: ``BDAT <octets> [LAST]``, then exactly that many octets of the message, taken as they
        are (no dot-stuffing, no end-of-data line). Every chunk is read, also when the transaction cannot go on
        (no MAIL, every RCPT refused, too big): the client is kept in step, and the chunk is refused (RFC 3030 2:
        "the receiver-SMTP MUST accept and discard the associated message data"). A LAST chunk ends the
        transaction as the final dot ends DATA: the message goes to the same handler, with the same faults."""
        size, last = _bdat_arguments(arg)
        if size is None:
            # Without a length nothing after this line can be told apart from commands: the session ends.
            await self.push("501 5.5.4 Syntax: BDAT <octets> [LAST]; closing")
            assert self.transport is not None
            self.transport.close()
            return
        if not self._owner.chunking:  # as a server without CHUNKING answers: what follows is read as commands
            await self.push('500 Error: command "BDAT" not recognized')
            return
        envelope = self.envelope
        assert envelope is not None
        if not envelope.mail_from:  # never sent, or refused
            await self._discard(size)
            await self.push("503 5.5.1 Error: need MAIL command")
            return
        if not envelope.rcpt_tos:  # every recipient refused: the transaction is over
            await self._discard(size)
            self._set_post_data_state()
            await self.push(DATA_WITHOUT_RECIPIENTS_REPLY)
            return
        chunks = self._chunks if self._chunks is not None else bytearray()
        room = (self.data_size_limit or size) - len(chunks)
        if size > room:
            await self._discard(size)
            self._set_post_data_state()
            await self.push("552 5.3.4 Error: message too big")
            return
        chunks += await self._reader.readexactly(size)
        if not last:
            self._chunks = chunks
            await self.push(f"250 2.0.0 {size} octets received")
            return
        envelope.original_content = bytes(chunks)
        envelope.content = envelope.original_content
        status = await self._call_handler_hook("DATA")
        self._set_post_data_state()
        await self.push(status)

    async def _discard(self, size: int) -> None:
        """Read `size` octets and keep none of them (memory stays bounded whatever length the client gave)."""
        while size > 0:
            size -= len(await self._reader.readexactly(min(size, 64 * 1024)))

    def _set_post_data_state(self) -> None:
        self._chunks = None  # a new transaction; RFC 3030 2: RSET clears every chunk of the one before
        super()._set_post_data_state()

    async def _take_unaddressed(self) -> None:
        await self.push("354 End data with <CR><LF>.<CR><LF>")
        lines = []
        while (line := await self._reader.readuntil(b"\r\n")) != b".\r\n":
            lines.append(line)
        self._owner.unaddressed.append(b"".join(lines))
        await self.push(DATA_WITHOUT_RECIPIENTS_REPLY)


def _bdat_arguments(arg: str | None) -> tuple[int | None, bool]:
    """``<octets> [LAST]`` as (octets, last); (None, False) when it is not that."""
    words = (arg or "").split()
    if not 1 <= len(words) <= 2 or not words[0].isascii() or not words[0].isdigit() or len(words[0]) > 18:
        return None, False
    if len(words) == 2 and words[1].upper() != "LAST":
        return None, False
    return int(words[0]), len(words) == 2


class _Handler:
    """aiosmtpd hooks: faults first, then record and accept."""

    def __init__(self, owner: SmtpServer) -> None:
        self.owner = owner

    @staticmethod
    def end_transaction(owner: SmtpServer, session) -> None:
        """A transaction counted by the sending limits is over (answered, reset, or its connection lost)."""
        user = getattr(session, "limits_user", None) if session is not None else None
        if user is not None and owner.limits is not None:
            owner.limits.end(user)
            session.limits_user = None

    async def handle_RSET(self, server, session, envelope):
        self.end_transaction(self.owner, session)
        return "250 OK"

    async def _stall(self, faults: list[_Fault]) -> None:
        for fault in faults:
            if fault.stall:
                await asyncio.sleep(fault.stall)

    @staticmethod
    def _scripted(faults: list[_Fault]) -> str | None:
        return next((f.reply for f in faults if f.reply), None)

    async def _refuse(self, server: SMTP, reply: str) -> str:
        if reply.startswith("421"):
            # RFC 5321 3.8: after 421 the server closes the transmission channel.
            await server.push(reply)
            server.transport.close()
            await asyncio.sleep(3600)  # cancelled by connection_lost
        return reply

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH XOAUTH2 (offered only with `oauth`, only after TLS: aiosmtpd's auth_require_tls). The initial
        response is base64 of ``user=<mailbox>^Aauth=Bearer <token>^A^A``; never logged."""
        if len(args) == 2:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=True)
            blob = answer
        mailbox = self.owner._check_xoauth2(blob)
        if mailbox is None:
            if self.owner.xoauth2_replies == "gmail":
                await server.challenge_auth(GMAIL_XOAUTH2_CHALLENGE)  # the client answers with an empty line
                return AuthResult(success=False, handled=False, message=GMAIL_XOAUTH2_REFUSED)
            return AuthResult(success=False, handled=False, message=XOAUTH2_REFUSED)
        return AuthResult(success=True, auth_data=LoginPassword(mailbox.encode(), b""))

    async def auth_CRAM__MD5(self, server: SMTP, args: list[str]) -> AuthResult:
        """AUTH CRAM-MD5 (RFC 2195; offered only with `cram_md5`): the client answers the challenge with its user
        name and HMAC-MD5(password, challenge)."""
        challenge = f"<{secrets.token_hex(8)}.{int(time.time())}@{self.owner.hostname}>".encode()
        answer = await server.challenge_auth(challenge)
        if not isinstance(answer, bytes):
            return AuthResult(success=False, handled=True)
        user, _, digest = answer.decode("utf-8", "replace").rpartition(" ")
        if self.owner._check_cram_md5(user, challenge, digest):
            return AuthResult(success=True, auth_data=LoginPassword(user.encode(), b""))
        return AuthResult(success=False, handled=False)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._stall(self.owner.faults.take("EHLO"))
        session.host_name = hostname
        if self.owner.pipelining:
            responses.insert(-1, "250-PIPELINING")  # before the last line ("250 HELP"), which ends the reply
        if self.owner.chunking:
            responses.insert(-1, "250-CHUNKING")
        return responses

    @staticmethod
    async def _drop(server: SMTP) -> None:
        server.transport.abort()
        await asyncio.sleep(3600)  # cancelled by connection_lost

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.owner._count("mail_commands")
        faults = self.owner.faults.take("MAIL")
        session.stalled = sum(fault.stall for fault in faults)  # a new transaction
        await self._stall(faults)
        if any(fault.drop for fault in faults):
            await self._drop(server)
        if reply := self._scripted(faults):
            return await self._refuse(server, reply)
        if self.owner.limits is not None:
            if refusal := self.owner.limits.begin(_user(session)):
                return refusal
            session.limits_user = _user(session)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 2.1.0 Sender OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        faults = self.owner.faults.take("RCPT", recipient=address)
        session.stalled = max(getattr(session, "stalled", 0.0), sum(fault.stall for fault in faults))
        await self._stall(faults)
        if any(fault.drop for fault in faults):
            await self._drop(server)
        if reply := self._scripted(faults):
            return await self._refuse(server, reply)
        if self.owner.accept_recipient is not None and not self.owner.accept_recipient(address):
            return "550 5.7.1 Relaying denied: this server does not accept mail for that recipient"
        if self.owner.limits is not None and \
                (refusal := self.owner.limits.recipient(_user(session), len(envelope.rcpt_tos))):
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 Recipient OK"

    async def handle_DATA(self, server, session, envelope):
        try:
            return await self._data(server, session, envelope)
        finally:
            self.end_transaction(self.owner, session)

    async def _data(self, server, session, envelope):
        self.owner._count("transactions")
        faults = self.owner.faults.take("DATA")
        await self._stall(faults)
        if self.owner.end_of_data_wait > 0:
            await asyncio.sleep(self.owner.end_of_data_wait)
        login = getattr(session.auth_data, "login", None)
        received = Received(
            mail_from=envelope.mail_from, rcpt_tos=list(envelope.rcpt_tos), data=bytes(envelope.original_content),
            auth_user=login.decode("utf-8", "replace") if isinstance(login, bytes) else login,
            tls=_is_tls(server), reply=None, peer=session.peer,
            stalled=max(getattr(session, "stalled", 0.0), sum(f.stall for f in faults)))
        if any(f.drop for f in faults):
            # The server has the message; the client never hears so (the "did it go?" case).
            self.owner._record(received)
            server.transport.abort()
            await asyncio.sleep(3600)  # cancelled by connection_lost
        if reply := self._scripted(faults):
            return await self._refuse(server, reply)
        if self.owner.limits is not None and \
                (refusal := self.owner.limits.complete(_user(session), len(envelope.rcpt_tos))):
            return refusal
        if self.owner.on_message is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(None, self.owner.on_message, received)
            except Exception:  # a failed forward is a temporary failure for the sender, as in a real MTA
                log.exception("on_message failed; replying 451")
                return "451 4.3.0 Temporary local problem, try again later"
        received.reply = f"250 2.0.0 Ok: queued as {secrets.token_hex(5).upper()}"
        self.owner._record(received)
        return received.reply


class _Controller(Controller):
    """aiosmtpd's threaded controller on a socket bound in advance, so port 0 (ephemeral) works."""

    def __init__(self, owner: SmtpServer, sock: socket.socket, **kwargs) -> None:
        self._owner = owner
        self._sock = sock
        super().__init__(_Handler(owner), hostname=sock.getsockname()[0], port=sock.getsockname()[1], **kwargs)

    def factory(self) -> SMTP:
        return _Protocol(self._owner, self.handler, **self.SMTP_kwargs)

    def _create_server(self):
        return self.loop.create_server(self._factory_invoker, sock=self._sock, ssl=self.ssl_context)

    def _trigger_server(self) -> None:
        # aiosmtpd connects a probe client to prove its factory works; that probe raced the connection counter
        # (a test could see 2 connections for 1 client). Building one protocol in the loop thread proves the same
        # without touching the socket, so every counted connection is a real client's.
        self.loop.call_soon_threadsafe(self._factory_invoker)


class SmtpServer:
    """A loopback SMTP server (see the module docstring for modes and faults).

    Args:
        ca: the local CA that issues this server's certificate.
        users: login -> password; AUTH checks it at run time (see `set_password`, `remove_user`).
        mode: "starttls" | "implicit" | "none".
        require_tls: with mode "starttls", refuse everything but EHLO/NOOP/QUIT before STARTTLS (RFC 3207).
        auth_required: refuse MAIL before a successful AUTH (a submission server); False for an MX.
        cert_names: SANs of the server certificate; give a wrong name to test host-name verification.
        hostname: the name in the greeting and EHLO reply.
        on_message: called (in a worker thread) with each `Received` before the 250 is sent.
        accept_recipient: when given, RCPT of an address it returns False for gets 550 (an MX's "no relaying").
        oauth: a `local.oauth_server.TokenServer` whose tokens AUTH XOAUTH2 accepts; XOAUTH2 is offered only then.
        oauth_mailboxes: client id -> the mailboxes its tokens may send as (`allow_mailbox` adds one).
        xoauth2_replies: "exchange" (535 5.7.3) or "gmail" (error challenge, then 535 5.7.8) for a refused token.
        pipelining: advertise PIPELINING (RFC 2920) in the EHLO reply.
        chunking: advertise CHUNKING (RFC 3030: BDAT) in the EHLO reply, as Postfix, Exchange Online and Gmail do;
            False for a server that only knows DATA.
        end_of_data_wait: seconds to wait before answering the end of DATA (a server scanning the message).
        record_reads: keep every chunk read from clients in `reads` (connection number, bytes).
        limits: a provider's sending limits, enforced per signed-in mailbox and time-scaled
            (`local.provider_limits`); over them the server answers as Microsoft 365 does.
    """

    def __init__(self, ca: LocalCA, *, users: dict[str, str] | None = None, mode: Mode = "starttls",
                 require_tls: bool = True, auth_required: bool = True,
                 cert_names: Iterable[str] = DEFAULT_CERT_NAMES, hostname: str = "smtp.acme.test",
                 host: str = "127.0.0.1", on_message: Callable[[Received], None] | None = None,
                 accept_recipient: Callable[[str], bool] | None = None,
                 data_size_limit: int = 35 * 1024 * 1024, oauth: TokenServer | None = None,
                 oauth_mailboxes: dict[str, set[str]] | None = None,
                 xoauth2_replies: Literal["exchange", "gmail"] = "exchange", pipelining: bool = True,
                 chunking: bool = True,
                 end_of_data_wait: float = 0.0, record_reads: bool = False, cram_md5: bool = False,
                 limits: SendingLimits | None = None) -> None:
        if mode not in ("starttls", "implicit", "none"):
            raise ValueError(f"unknown mode {mode!r}")
        self.ca = ca
        self.mode: Mode = mode
        self.host = host
        self.hostname = hostname
        self.on_message = on_message
        self.accept_recipient = accept_recipient
        self.faults = Faults()
        self.limits = limits  # a provider's sending limits per mailbox (local/provider_limits.py), or none
        self.stats = Stats()
        self.received: list[Received] = []
        self._users: dict[str, str] = dict(users or {})
        self.oauth = oauth
        self.xoauth2_replies = xoauth2_replies
        self.pipelining = pipelining
        self.chunking = chunking
        self.end_of_data_wait = end_of_data_wait
        self.record_reads = record_reads
        self.reads: list[tuple[int, bytes]] = []
        self.unaddressed: list[bytes] = []  # bodies sent after DATA with no recipient (fault data_without_recipients)
        self._oauth_mailboxes = {client: {box.lower() for box in boxes}
                                 for client, boxes in (oauth_mailboxes or {}).items()}
        self.cram_md5 = cram_md5
        self.starttls_offered = True
        self.auth_log: list[AuthAttempt] = []
        self._lock = threading.Condition()
        self._sessions: set[_Protocol] = set()  # open connections, so a password change can end a user's sessions
        self._cert: ServerCertificate | None = ca.issue(list(cert_names)) if mode != "none" else None
        self._context = self._cert.server_context() if self._cert else None
        self._options = {"require_tls": require_tls, "auth_required": auth_required,
                         "data_size_limit": data_size_limit}
        self._controller: _Controller | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> SmtpServer:
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((self.host, 0))
        sock.listen(100)
        sock.setblocking(False)
        context = self._context
        excluded = [name for name, on in (("XOAUTH2", self.oauth is not None), ("CRAM-MD5", self.cram_md5)) if not on]
        kwargs = {
            "server_hostname": self.hostname, "ident": "ESMTP Relaydesk local", "authenticator": self._authenticate,
            "auth_required": self._options["auth_required"], "auth_require_tls": True,
            "data_size_limit": self._options["data_size_limit"], "enable_SMTPUTF8": True, "timeout": 60,
            "auth_exclude_mechanism": excluded,
        }
        if self.mode == "implicit":
            kwargs["ssl_context"] = context
        elif self.mode == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = self._options["require_tls"]
        self._controller = _Controller(self, sock, **kwargs)
        self._controller.start()
        self.port = sock.getsockname()[1]
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start() if self._controller is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- users -----------------------------------------------------------------------------------------------
    @property
    def ca_pem(self) -> str:
        """The CA certificate (PEM) a client must trust to verify this server."""
        return self.ca.pem

    def set_password(self, user: str, password: str) -> None:
        """Add the user or change its password; takes effect for the next AUTH."""
        with self._lock:
            self._users[user] = password

    def end_sessions(self, user: str) -> int:
        """Close every open connection authenticated as `user` (what a server does when an admin resets the
        password); its client signs in again on its next connection. Returns how many were closed."""
        ended = 0
        for session in list(self._sessions):
            login = getattr(getattr(session.session, "auth_data", None), "login", None) if session.session else None
            login = login.decode("utf-8", "replace") if isinstance(login, bytes) else login
            if login == user and session.transport is not None and self._controller is not None:
                self._controller.loop.call_soon_threadsafe(session.transport.close)
                ended += 1
        return ended

    def offer_starttls(self, offered: bool) -> None:
        """Switch STARTTLS off (a misconfigured server) or on again; takes effect for the next connection."""
        self.starttls_offered = offered

    def drop_connections(self) -> int:
        """Close every client connection, as a server reload or restart does (a client's idle, already
        authenticated session is gone: its next login is checked against the server's current settings)."""
        if self._controller is None:
            return 0
        sessions = [session for session in list(self._sessions) if session.transport is not None]
        for session in sessions:
            self._controller.loop.call_soon_threadsafe(session.transport.close)
        return len(sessions)

    def use_certificate(self, names: Iterable[str]) -> None:
        """Present a certificate for `names` from the next handshake on (a wrong name, then the right one)."""
        if self._context is None:
            raise ValueError("a server without TLS has no certificate")
        certificate = self.ca.issue(list(names))
        self._context.load_cert_chain(certificate.cert_path, certificate.key_path)

    def failed_logins(self, password: str | None = None) -> list[AuthAttempt]:
        """The refused AUTH attempts, all of them or those that tried `password`."""
        with self._lock:
            return [a for a in self.auth_log if not a.ok
                    and (password is None or a.digest == password_digest(password))]

    def remove_user(self, user: str) -> None:
        with self._lock:
            self._users.pop(user, None)

    def allow_mailbox(self, client_id: str, mailbox: str) -> None:
        """Let the app `client_id` send as `mailbox` (Exchange's Add-MailboxPermission)."""
        with self._lock:
            self._oauth_mailboxes.setdefault(client_id, set()).add(mailbox.lower())

    def _check_xoauth2(self, blob: bytes) -> str | None:
        """The mailbox an XOAUTH2 initial response may send as, or None; counted like a password AUTH."""
        self._count("auth_attempts")
        fields = dict(part.split("=", 1) for part in blob.decode("utf-8", "replace").split("\x01") if "=" in part)
        mailbox = fields.get("user", "").lower()
        scheme, _, token = fields.get("auth", "").partition(" ")
        grant = self.oauth.grant_of(token) if self.oauth is not None and scheme.lower() == "bearer" else None
        with self._lock:
            if grant is None:
                allowed = False
            elif grant.subject is not None:  # a service account's token acts as its `sub` only, with Gmail's scope
                allowed = grant.subject == mailbox and GMAIL_SCOPE in grant.scope.split()
            else:
                allowed = mailbox in self._oauth_mailboxes.get(grant.client_id, set())
        self._log_auth(AuthAttempt(mailbox, "XOAUTH2", allowed))
        if allowed:
            return mailbox
        self._count("auth_failures")
        return None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        self._count("auth_attempts")
        login = password = ""
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode("utf-8", "replace")
            password = auth_data.password.decode("utf-8", "replace")
            with self._lock:
                expected = self._users.get(login)
            if expected is not None and secrets.compare_digest(expected.encode(), password.encode()):
                self._log_auth(AuthAttempt(login, mechanism, True, password_digest(password)))
                return AuthResult(success=True, auth_data=auth_data)
        self._count("auth_failures")
        self._log_auth(AuthAttempt(login, mechanism, False, password_digest(password)))
        return AuthResult(success=False, handled=False)

    def _check_cram_md5(self, user: str, challenge: bytes, digest: str) -> bool:
        self._count("auth_attempts")
        with self._lock:
            password = self._users.get(user)
        expected = hmac.new(password.encode(), challenge, hashlib.md5).hexdigest() if password is not None else ""
        ok = bool(expected) and hmac.compare_digest(expected, digest)
        if not ok:
            self._count("auth_failures")
        self._log_auth(AuthAttempt(user, "CRAM-MD5", ok))
        return ok

    def _log_auth(self, attempt: AuthAttempt) -> None:
        with self._lock:
            self.auth_log.append(attempt)

    # -- recording -------------------------------------------------------------------------------------------
    def _count(self, name: str) -> int:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)
            return getattr(self.stats, name)

    def _read(self, connection: int, data: bytes) -> None:
        with self._lock:
            self.stats.reads += 1
            if self.record_reads:
                self.reads.append((connection, bytes(data)))

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)
            self._lock.notify_all()

    def wait_for(self, count: int = 1, timeout: float = 10.0) -> list[Received]:
        """Block until at least `count` messages were received; returns them, or raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{len(self.received)} of {count} messages received after {timeout}s")
                self._lock.wait(remaining)
            return list(self.received)

    def __repr__(self) -> str:  # never shows passwords
        return f"<SmtpServer {self.mode} {self.host}:{self.port} users={sorted(self._users)}>"
