"""SMTP submission to a customer's smarthost with aiosmtplib: TLS first (587 STARTTLS required, 465 implicit),
certificate verified, then AUTH (password or XOAUTH2, `outbound/auth.py`), then any number of mail transactions on
the one connection.

Every failure leaves as a typed error of `relaydesk.errors` with the server's code, enhanced status and text. The
password or access token is only ever sent over TLS and never appears in an error.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
from dataclasses import dataclass, field

import aiosmtplib

from relaydesk import destinations
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import (
    CertificateVerificationError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.oauth import AccessTokens, shared_tokens
from relaydesk.outbound.auth import authenticate
from relaydesk.outbound.policy import enhanced_status, error_for_reply
from relaydesk.outbound.tls import client_tls_context
from relaydesk.tickets.model import RecipientOutcome

LOST_AFTER_DATA = ("the connection was lost while the message was being sent or before the server answered its end "
                   "of data: the server may have accepted it; it is retried with the same Message-ID")


class NothingAcceptedError(TransientDeliveryError):
    """The connection failed before DATA: nothing of this transaction was accepted, so another connection may
    send it without any risk of a duplicate."""


SERVER_CLOSING = 421  # RFC 5321 3.8: the server is closing the transmission channel (e.g. an idle timeout)


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


def _certificate_error(error: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


class SmtpSubmission:
    """One authenticated connection to one smarthost with one login. Not thread-safe: one batch group uses it."""

    client_class: type[aiosmtplib.SMTP] = aiosmtplib.SMTP  # a subclass may speak through another protocol

    def __init__(self, credentials: SmtpCredentials, *, timeouts: Timeouts | None = None,
                 local_hostname: str = "relaydesk.invalid", tokens: AccessTokens | None = None) -> None:
        self._credentials = credentials
        self._tokens = tokens  # None: the warm container's shared token cache
        self._timeouts = timeouts or Timeouts()
        self._local_hostname = local_hostname
        self._smtp: aiosmtplib.SMTP | None = None

    @property
    def route(self) -> str:
        return f"connector:{self._credentials.host}:{self._credentials.port}"

    @property
    def connected(self) -> bool:
        return self._smtp is not None and self._smtp.is_connected

    async def open(self, *, fresh_token: bool = False) -> None:
        """Connect, secure, authenticate. Raises a typed error; on any failure the connection is closed.
        `fresh_token` (oauth2): a new access token rather than the cached one (the smarthost refused it)."""
        creds = self._credentials
        implicit = creds.tls_mode is TlsMode.IMPLICIT
        sock = await self._socket()  # to an address checked after resolution (relaydesk.destinations)
        smtp = self.client_class(hostname=creds.host, sock=sock, use_tls=implicit, start_tls=False,
                                 tls_context=client_tls_context(creds.ca_bundle_pem),
                                 timeout=self._timeouts.command, local_hostname=self._local_hostname)
        self._smtp = smtp
        try:
            # asyncio's transport owns the socket from here and closes it, also when the connection fails.
            await self._connect(smtp)
            await self._secure(smtp, implicit)
            await self._login(smtp, fresh_token=fresh_token)
        except BaseException:
            await self.close()
            raise

    async def _socket(self) -> socket.socket:
        try:
            return await destinations.open_socket(self._credentials.host, self._credentials.port,
                                                  self._timeouts.connect)
        except (OSError, TimeoutError) as error:
            raise TransientDeliveryError(f"could not connect to {self.route}: {type(error).__name__}") from None

    async def _connect(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.connect(timeout=self._timeouts.connect)
        except aiosmtplib.SMTPConnectResponseError as error:
            raise error_for_reply(error.code, error.message, f"the smarthost refused the connection: {error.code}") \
                from None
        except (aiosmtplib.SMTPException, OSError) as error:
            self._raise_if_certificate(error)
            raise TransientDeliveryError(f"could not connect to {self.route}: {type(error).__name__}") from None

    def _raise_if_certificate(self, error: BaseException) -> None:
        bad = _certificate_error(error)
        if bad is not None:
            raise CertificateVerificationError(
                f"the certificate of {self._credentials.host} did not verify: {bad.verify_message}") from None

    async def _secure(self, smtp: aiosmtplib.SMTP, implicit: bool) -> None:
        if not implicit:
            try:
                await smtp.ehlo()
                if not smtp.supports_extension("starttls"):
                    # RFC 3207 4: nothing further is sent in the clear, least of all the credentials.
                    raise TlsRequiredError(f"{self._credentials.host} did not offer STARTTLS; nothing was sent")
                await smtp.starttls(server_hostname=self._credentials.host)
            except aiosmtplib.SMTPResponseException as error:
                raise error_for_reply(error.code, error.message, f"STARTTLS failed: {error.code}") from None
            except (aiosmtplib.SMTPException, OSError) as error:
                self._raise_if_certificate(error)
                raise TransientDeliveryError(f"TLS with {self.route} failed: {type(error).__name__}") from None
        if smtp.get_transport_info("sslcontext") is None:
            raise TlsRequiredError(f"the connection to {self._credentials.host} is not encrypted; nothing was sent")
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPResponseException as error:
            raise error_for_reply(error.code, error.message, f"EHLO refused: {error.code}") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise TransientDeliveryError(f"EHLO with {self.route} failed: {type(error).__name__}") from None

    async def _login(self, smtp: aiosmtplib.SMTP, *, fresh_token: bool = False) -> None:
        await authenticate(smtp, self._credentials, self._tokens or shared_tokens(), fresh_token=fresh_token)

    async def send(self, envelope_from: str, recipients: list[str], data: bytes) -> Accepted:
        """One mail transaction with exactly `data` (already CRLF, signed). Raises a typed error; partial
        recipient refusals come back in `Accepted.refused`."""
        smtp = self._smtp
        if smtp is None or not smtp.is_connected:
            raise NothingAcceptedError(f"not connected to {self.route}")
        timeout = self._timeouts.command
        try:
            await smtp.mail(envelope_from, timeout=timeout)
        except aiosmtplib.SMTPResponseException as error:
            if error.code == SERVER_CLOSING:
                await self.close()
                raise NothingAcceptedError(f"MAIL FROM refused: {error.code} {error.message}", smtp_code=error.code,
                                           enhanced_status=enhanced_status(error.message),
                                           server_reply=f"{error.code} {error.message}") from None
            await self._reset()
            raise error_for_reply(error.code, error.message,
                                  f"MAIL FROM refused: {error.code} {error.message}") from None
        except aiosmtplib.SMTPTimeoutError:
            # A stalled server is not a closed one: not sent again at once (that would double the wait).
            raise TransientDeliveryError(f"MAIL FROM to {self.route} timed out") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise NothingAcceptedError(f"MAIL FROM to {self.route} failed: {type(error).__name__}") from None
        refused: list[RecipientOutcome] = []
        accepted: list[str] = []
        for recipient in recipients:
            try:
                await smtp.rcpt(recipient, timeout=timeout)
                accepted.append(recipient)
            except aiosmtplib.SMTPRecipientRefused as error:
                refused.append(RecipientOutcome(recipient=recipient, smtp_code=error.code,
                                                enhanced_status=enhanced_status(error.message),
                                                reply=f"{error.code} {error.message}"))
            except aiosmtplib.SMTPTimeoutError:
                raise TransientDeliveryError(f"RCPT TO to {self.route} timed out") from None
            except (aiosmtplib.SMTPException, OSError) as error:
                raise NothingAcceptedError(f"RCPT TO to {self.route} failed: {type(error).__name__}") from None
        if not accepted:
            await self._reset()
            # Every recipient refused: the mail's fate is the mildest refusal (a 4xx anywhere is worth a retry).
            mildest = min(refused, key=lambda r: r.smtp_code or 0)
            error = error_for_reply(mildest.smtp_code, mildest.reply.partition(" ")[2],
                               f"every recipient was refused: {mildest.reply}", recipient=mildest.recipient)
            error.refused = refused  # type: ignore[attr-defined]  # carried to the ticket record
            raise error
        try:
            reply = await smtp.data(data, timeout=self._timeouts.data)
        except aiosmtplib.SMTPResponseException as error:
            await self._reset()
            raise error_for_reply(error.code, error.message, f"the message was refused: {error.code} {error.message}") \
                from None
        except (aiosmtplib.SMTPException, OSError) as error:
            await self.close()
            raise TransientDeliveryError(f"{LOST_AFTER_DATA} ({type(error).__name__})") from None
        return Accepted(code=reply.code, reply=f"{reply.code} {reply.message}", refused=refused)

    async def _reset(self) -> None:
        if self._smtp is not None and self._smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._smtp.rset(timeout=self._timeouts.command)

    async def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if smtp.is_connected:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit(timeout=self._timeouts.command)
        smtp.close()
