"""The SMTP client layer, written once: the relay's submissions and the live check speak through `SmtpSubmission`.

One `SmtpSubmission` owns one connection to one smarthost and its state: connected, TLS (version, the server's
certificate), the server's capabilities (its EHLO keywords and AUTH mechanisms), authenticated (as whom, with which
mechanism) and the secret version it authenticated with. It speaks the conversation step by step (`connect`,
`secure`, `authenticate`, `check_sender`, `send`), or `open` for the first three in a row. TLS first (587 STARTTLS
required, 465 implicit), certificate verified, then one AUTH attempt with one mechanism (`outbound/auth.py`).

Every failure leaves as a typed error of `relaydesk.errors` with the server's code, enhanced status and text (one
error model for the relay and the live check). The password or access token is only ever sent over TLS and never
appears in an error.

A mail transaction is an `Outgoing` message (`outbound/envelope.py`) handed to the session's `Transaction`:
`one_command_at_a_time` (MAIL, each RCPT, DATA, each waiting for its reply) unless another is plugged in. The RFC
2920 pipelining client (`outbound/pipelined.py`'s `PipelinedSubmission`) is this session with a pipelining protocol
(`client_class`) and its own `send`; connecting, TLS, AUTH and the error model stay this module's.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiosmtplib

from relaydesk import destinations
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import (
    CertificateVerificationError,
    NothingAcceptedError,
    ReplyCode,
    SmtpDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.oauth import AccessTokens, shared_tokens
from relaydesk.outbound.auth import authenticate
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.policy import enhanced_status, error_for_reply
from relaydesk.outbound.tls import client_tls_context
from relaydesk.tickets.model import RecipientOutcome

LOST_AFTER_DATA = ("the connection was lost while the message was being sent or before the server answered its end "
                   "of data: the server may have accepted it; it is retried with the same Message-ID")
OUT_OF_TIME = ("not sent: the invocation would end before the server could answer the end of data; retried later "
               "(the message was not transmitted)")


@dataclass(frozen=True)
class Timeouts:
    """Seconds. Kept under the relay's Lambda timeout (60 s): a stalled server must not eat a whole batch."""

    connect: float = 10.0
    command: float = 15.0
    data: float = 20.0  # end of data: the server may scan the message before it answers


@dataclass(frozen=True)
class Accepted:
    """The server's 2xx answer to the end of data (it usually names its queue id) and any refused recipients."""

    code: int
    reply: str
    refused: list[RecipientOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class Capabilities:
    """What the server's last EHLO offered (keywords lower-case, AUTH mechanisms upper-case)."""

    keywords: frozenset[str] = frozenset()
    auth_mechanisms: tuple[str, ...] = ()

    @property
    def starttls(self) -> bool:
        return "starttls" in self.keywords

    @property
    def pipelining(self) -> bool:
        return "pipelining" in self.keywords  # RFC 2920


@dataclass(frozen=True)
class TlsState:
    version: str
    peer_certificate: dict[str, Any]


Transaction = Callable[["SmtpSubmission", Outgoing], Awaitable[Accepted]]


def _certificate_error(error: BaseException | None) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure somewhere in the exception chain, if the handshake failed on it."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ssl.SSLCertVerificationError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


class SmtpSubmission:
    """One connection to one smarthost with one login (see the module docstring). Not thread-safe: one batch group
    (or one live check) uses it, on one event loop."""

    client_class: type[aiosmtplib.SMTP] = aiosmtplib.SMTP  # a subclass may speak through another protocol

    def __init__(self, credentials: SmtpCredentials, *, version_id: str | None = None,
                 timeouts: Timeouts | None = None, local_hostname: str = "relaydesk.invalid",
                 tokens: AccessTokens | None = None, transaction: Transaction | None = None) -> None:
        self._credentials = credentials
        self.credential_version = version_id  # the secret version these credentials are (None: not from a secret)
        self._tokens = tokens  # None: the warm container's shared token cache
        self._timeouts = timeouts or Timeouts()
        self._local_hostname = local_hostname
        self._mail_transaction = transaction or one_command_at_a_time
        self._smtp: aiosmtplib.SMTP | None = None
        self.greeting = ""
        self.capabilities = Capabilities()
        self.tls: TlsState | None = None
        self.authenticated_as: str | None = None
        self.mechanism: str | None = None

    # --- state ------------------------------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._credentials.host

    @property
    def route(self) -> str:
        return f"connector:{self._credentials.host}:{self._credentials.port}"

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    @property
    def authenticated(self) -> bool:
        return self.connected and self.authenticated_as is not None

    @property
    def client(self) -> aiosmtplib.SMTP:
        """The connection's aiosmtplib client, for a `Transaction`; NothingAcceptedError when there is none."""
        if self._smtp is None or not self._smtp.is_connected:
            raise NothingAcceptedError(f"not connected to {self.route}")
        return self._smtp

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    # --- the conversation, step by step -------------------------------------------------------------------------

    async def open(self, *, fresh_token: bool = False) -> None:
        """Connect, secure, authenticate. Raises a typed error; on any failure the connection is closed.
        `fresh_token` (oauth2): a new access token rather than the cached one (the smarthost refused it)."""
        try:
            await self.connect()
            await self.secure()
            await self.authenticate(fresh_token=fresh_token)
        except BaseException:
            await self.close()
            raise

    async def connect(self, *, sock: socket.socket | None = None) -> None:
        """TCP to an address checked after resolution (`relaydesk.destinations`), or the connected `sock` the live
        check opened (it checks the same at its dns step); the implicit TLS handshake on port 465; the greeting.
        TransientDeliveryError, DestinationRefused, CertificateVerificationError, or the refusing greeting's error."""
        creds = self._credentials
        implicit = creds.tls_mode is TlsMode.IMPLICIT
        sock = sock or await self._socket()
        # asyncio's transport owns the socket from here and closes it, also when the connection fails.
        self._smtp = self.client_class(hostname=creds.host, sock=sock, use_tls=implicit, start_tls=False,
                                       tls_context=client_tls_context(creds.ca_bundle_pem),
                                       timeout=self._timeouts.command, local_hostname=self._local_hostname)
        try:
            reply = await self._smtp.connect(timeout=self._timeouts.connect)
        except aiosmtplib.SMTPConnectResponseError as error:
            raise error_for_reply(error.code, error.message,
                                  f"{creds.host} refused the connection: {error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            self._raise_if_certificate(error)
            raise TransientDeliveryError(f"could not connect to {self.route}: {_describe(error)}") from error
        self.greeting = f"{reply.code} {reply.message}"
        if implicit:
            self._note_tls()

    async def secure(self) -> None:
        """STARTTLS (required: RFC 3207 4, nothing further is sent in the clear) unless TLS is implicit, then EHLO
        over TLS. TlsRequiredError when the server does not offer it; CertificateVerificationError."""
        smtp = self.client
        if self._credentials.tls_mode is not TlsMode.IMPLICIT:
            await self._ehlo(smtp)
            if not self.capabilities.starttls:
                raise TlsRequiredError(f"{self.host} did not offer STARTTLS; nothing was sent")
            try:
                await smtp.starttls(server_hostname=self.host)
            except aiosmtplib.SMTPResponseException as error:
                raise error_for_reply(error.code, error.message, f"STARTTLS failed: {error.code} {error.message}") \
                    from error
            except (aiosmtplib.SMTPException, OSError) as error:
                self._raise_if_certificate(error)
                raise TransientDeliveryError(f"TLS with {self.route} failed: {_describe(error)}") from error
            self._note_tls()
        if smtp.get_transport_info("sslcontext") is None:
            raise TlsRequiredError(f"the connection to {self.host} is not encrypted; nothing was sent")
        await self._ehlo(smtp)

    async def authenticate(self, *, fresh_token: bool = False) -> None:
        """One AUTH attempt with one mechanism (`outbound/auth.py`); AuthenticationFailedError on a refusal."""
        self.mechanism = await authenticate(self.client, self._credentials, self._tokens or shared_tokens(),
                                            offered=self.capabilities.auth_mechanisms, fresh_token=fresh_token)
        self.authenticated_as = self._credentials.username

    async def _socket(self) -> socket.socket:
        try:
            return await destinations.open_socket(self._credentials.host, self._credentials.port,
                                                  self._timeouts.connect)
        except (OSError, TimeoutError) as error:
            raise TransientDeliveryError(f"could not connect to {self.route}: {_describe(error)}") from error

    async def check_sender(self, sender: str) -> None:
        """MAIL FROM as `sender`, then RSET: would the server let this login send as the address?"""
        smtp = self.client
        try:
            await smtp.mail(sender, timeout=self._timeouts.command)
        except aiosmtplib.SMTPResponseException as error:
            raise error_for_reply(error.code, error.message, f"MAIL FROM refused: {error.code} {error.message}") \
                from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(f"MAIL FROM to {self.route} failed: {_describe(error)}") from error
        await self.reset()

    async def send(self, envelope_from: str, recipients: list[str], data: bytes, *,
                   deadline: float | None = None) -> Accepted:
        """One mail transaction with exactly `data` (already CRLF, signed). Raises a typed error; partial
        recipient refusals come back in `Accepted.refused`. `deadline` (`time.monotonic()`): the answer to the end
        of data must come by then, so the end of data is not sent when the data timeout would pass it."""
        return await self._mail_transaction(self, Outgoing(envelope_from, tuple(recipients), data, deadline=deadline))

    async def reset(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.rset(timeout=self._timeouts.command)

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        self.authenticated_as = None
        if smtp is None:
            return
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit(timeout=self._timeouts.command)
        smtp.close()

    # --- helpers ------------------------------------------------------------------------------------------------

    async def _ehlo(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPResponseException as error:
            raise error_for_reply(error.code, error.message, f"EHLO refused: {error.code} {error.message}") \
                from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(f"EHLO with {self.route} failed: {_describe(error)}") from error
        self.capabilities = Capabilities(
            keywords=frozenset(smtp.esmtp_extensions),
            auth_mechanisms=tuple(method.upper() for method in smtp.server_auth_methods))

    def _note_tls(self) -> None:
        smtp = self._smtp
        assert smtp is not None
        ssl_object = smtp.get_transport_info("ssl_object")
        self.tls = TlsState(version=ssl_object.version() if ssl_object is not None else "TLS",
                            peer_certificate=smtp.get_transport_info("peercert") or {})

    def _raise_if_certificate(self, error: BaseException) -> None:
        bad = _certificate_error(error)
        if bad is not None:
            raise CertificateVerificationError(
                f"the certificate of {self.host} did not verify: {bad.verify_message or bad}") from error


async def one_command_at_a_time(session: SmtpSubmission, envelope: Outgoing) -> Accepted:
    """MAIL, each RCPT and DATA, each waiting for its reply (RFC 5321 3.3). A refusal before DATA leaves nothing
    accepted (NothingAcceptedError when another connection may send it at once); after DATA's bytes went out, a
    lost connection may have delivered it (TransientDeliveryError with LOST_AFTER_DATA)."""
    smtp = session.client
    timeout = session.timeouts.command
    try:
        await smtp.mail(envelope.envelope_from, timeout=timeout)
    except aiosmtplib.SMTPResponseException as error:
        if error.code == ReplyCode.SERVICE_CLOSING:
            await session.close()
            raise NothingAcceptedError(f"MAIL FROM refused: {error.code} {error.message}", smtp_code=error.code,
                                       enhanced_status=enhanced_status(error.message),
                                       server_reply=f"{error.code} {error.message}") from error
        await session.reset()
        raise error_for_reply(error.code, error.message, f"MAIL FROM refused: {error.code} {error.message}") \
            from error
    except aiosmtplib.SMTPTimeoutError as error:
        # A stalled server is not a closed one: not sent again at once (that would double the wait).
        raise TransientDeliveryError(f"MAIL FROM to {session.route} timed out") from error
    except (aiosmtplib.SMTPException, OSError) as error:
        raise NothingAcceptedError(f"MAIL FROM to {session.route} failed: {_describe(error)}") from error
    refused: list[RecipientOutcome] = []
    accepted: list[str] = []
    for recipient in envelope.recipients:
        try:
            await smtp.rcpt(recipient, timeout=timeout)
            accepted.append(recipient)
        except aiosmtplib.SMTPRecipientRefused as error:
            refused.append(RecipientOutcome(recipient=recipient, smtp_code=error.code,
                                            enhanced_status=enhanced_status(error.message),
                                            reply=f"{error.code} {error.message}"))
        except aiosmtplib.SMTPTimeoutError as error:
            raise TransientDeliveryError(f"RCPT TO to {session.route} timed out") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise NothingAcceptedError(f"RCPT TO to {session.route} failed: {_describe(error)}") from error
    if not accepted:
        await session.reset()
        raise every_recipient_refused(refused)
    if envelope.deadline is not None and time.monotonic() + session.timeouts.data > envelope.deadline:
        await session.reset()  # nothing was sent after RCPT: the server drops the transaction
        raise TransientDeliveryError(OUT_OF_TIME)
    try:
        reply = await smtp.data(envelope.data, timeout=session.timeouts.data)
    except aiosmtplib.SMTPResponseException as error:
        await session.reset()
        raise error_for_reply(error.code, error.message, f"the message was refused: {error.code} {error.message}") \
            from error
    except (aiosmtplib.SMTPException, OSError) as error:
        await session.close()
        raise TransientDeliveryError(f"{LOST_AFTER_DATA} ({_describe(error)})") from error
    return Accepted(code=reply.code, reply=f"{reply.code} {reply.message}", refused=refused)


def every_recipient_refused(refused: list[RecipientOutcome]) -> SmtpDeliveryError:
    """The mail's fate when no recipient took it: the mildest refusal (a 4xx anywhere is worth a retry), with every
    recipient's reply for the ticket record."""
    mildest = min(refused, key=lambda r: r.smtp_code or 0)
    return error_for_reply(mildest.smtp_code, mildest.reply.partition(" ")[2],
                           f"every recipient was refused: {mildest.reply}", recipient=mildest.recipient,
                           refused=refused)


def _describe(error: BaseException) -> str:
    """The failure in a few words: a timeout as such, else the exception's own text (never a secret: no step that
    carries credentials describes its error with this)."""
    if isinstance(error, TimeoutError):
        return "timed out"
    return str(error) or type(error).__name__
