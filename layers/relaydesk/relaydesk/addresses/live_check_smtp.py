"""The live check's SMTP conversation (DNS, TCP, TLS, certificate, OAuth token, AUTH, sender), recorded step by step
into a `LiveCheckReport`; imported by `relaydesk.addresses.live_check` when a check runs (see its docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
import time
from typing import Any

import aiosmtplib

from relaydesk import destinations, oauth
from relaydesk.addresses.explain import (
    Explanation,
    enhanced_status_of,
    explain_google_token_error,
    explain_step,
    explain_token_error,
)
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport, Resolver, StepListener
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials, TlsMode
from relaydesk.errors import AuthenticationFailedError, OAuthTokenError, RelaydeskError, SmtpDeliveryError
from relaydesk.oauth import AccessTokens, Response
from relaydesk.outbound.auth import authenticate
from relaydesk.outbound.tls import client_tls_context

EHLO_NAME = "relaydesk-connector"


class _StepFailed(Exception):
    """Internal: ends the check after a failed step has been recorded."""


class Checker:
    def __init__(self, credentials: SmtpCredentials, *, resolver: Resolver | None, timeout: float,
                 sender: str | None, on_step: StepListener | None) -> None:
        self.credentials = credentials
        self.resolver = resolver or _system_resolver
        self.timeout = timeout
        self.sender = sender
        self.on_step = on_step
        self.report = LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode)
        self._password = credentials.password.get_secret_value()
        self._oauth = credentials.auth_kind is AuthKind.OAUTH2
        self._google = self._oauth and credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
        client_secret = credentials.oauth_client_secret
        key = credentials.oauth_signing_key
        # The private key whole and line by line (a server quoting part of it is scrubbed too).
        key_lines = [line for line in key.splitlines() if len(line) >= 16 and "-----" not in line]
        self._secrets = [s for s in (self._password, client_secret.get_secret_value() if client_secret else "", key,
                                     *key_lines) if s]
        # A token cache of this check only: the token step always asks the endpoint (a real fetch), and the auth
        # step reuses that token rather than a cached one that could hide a changed client secret.
        self._expires_in: int | None = None
        self._tokens = AccessTokens(fetch=self._fetch_recording_expiry)

    def _scrub(self, text: str) -> str:
        # A server never should echo the password, the client secret or the token; if one does, it still never
        # reaches a report.
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def record(self, name: str, ok: bool, detail: str, started: float, *, code: int | None = None,
               reply: str = "", explanation: Explanation | None = None, **fields: str | None) -> None:
        detail = self._scrub(detail)
        step = CheckStep(name=name, ok=ok, detail=detail, elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                         smtp_code=code, enhanced_status=enhanced_status_of(reply) if reply else None, **fields)
        self.report.steps.append(step)
        if not ok:
            explanation = explanation or explain_step(
                name, code=code, reply=self._scrub(reply), error=detail, host=self.credentials.host,
                port=self.credentials.port, username=self.credentials.username, oauth=self._oauth,
                google=self._google)
            self.report.summary, self.report.fix = (self._scrub(part) for part in explanation)
        if self.on_step is not None:
            self.on_step(step)
        if not ok:
            raise _StepFailed(name)

    async def run(self) -> LiveCheckReport:
        smtp: aiosmtplib.SMTP | None = None
        sock: socket.socket | None = None
        try:
            addresses = await self._dns()
            sock = await self._tcp(addresses)
            smtp = aiosmtplib.SMTP(hostname=self.credentials.host, sock=sock, timeout=self.timeout,
                                   use_tls=self.credentials.tls_mode is TlsMode.IMPLICIT, start_tls=False,
                                   tls_context=client_tls_context(self.credentials.ca_bundle_pem),
                                   local_hostname=EHLO_NAME)
            if self.credentials.tls_mode is TlsMode.IMPLICIT:
                await self._implicit_tls(smtp)
            else:
                await self._starttls(smtp)
            self._certificate(smtp)
            if self._oauth:
                await self._token()
                await self._xoauth2(smtp)
            else:
                await self._auth(smtp)
            if self.sender:
                await self._sender(smtp)
        except _StepFailed:
            pass
        finally:
            if smtp is not None and smtp.is_connected:
                with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()
            if smtp is not None:
                smtp.close()
            if sock is not None:
                sock.close()  # a no-op when the SMTP transport has closed it already
        return self.report

    async def _dns(self) -> list[str]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        try:
            addresses = await asyncio.wait_for(
                loop.run_in_executor(None, self.resolver, self.credentials.host, self.credentials.port),
                self.timeout)
        except (OSError, TimeoutError) as error:
            self.record("dns", False, f"{self.credentials.host}: {_describe(error)}", started)
        if not addresses:
            self.record("dns", False, f"{self.credentials.host} has no address records", started)
        try:
            destinations.check(self.credentials.host, addresses)  # the TCP step connects to exactly these
        except destinations.DestinationRefused as refused:
            self.record("dns", False, refused.message, started)
        self.record("dns", True, f"{self.credentials.host} -> {', '.join(addresses)}", started)
        return addresses

    async def _tcp(self, addresses: list[str]) -> socket.socket:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        errors = []
        for address in addresses:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, (address, self.credentials.port)), self.timeout)
            except (OSError, TimeoutError) as error:
                sock.close()
                errors.append(f"{address}: {_describe(error)}")
                continue
            self.record("tcp", True, f"connected to {address} port {self.credentials.port}", started)
            return sock
        self.record("tcp", False, "; ".join(errors), started)
        raise AssertionError("unreachable")  # record() raised

    async def _connect(self, smtp: aiosmtplib.SMTP, tls_step: str | None) -> str:
        """Connect and read the greeting; with implicit TLS the handshake happens here too."""
        started = time.perf_counter()
        try:
            greeting = await smtp.connect()
        except aiosmtplib.SMTPConnectResponseError as error:
            self.record("greeting", False, f"{error.code} {error.message}", started, code=error.code,
                        reply=error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            self._tls_failure(tls_step or "greeting", error, started)
        if tls_step is None:
            self.record("greeting", True, f"{greeting.code} {greeting.message}", started)
        return f"{greeting.code} {greeting.message}"

    def _tls_failure(self, step: str, error: BaseException, started: float) -> None:
        verify = _certificate_error(error)
        if verify is not None:
            if step == "starttls":
                self.record("starttls", True, "STARTTLS accepted; handshake stopped at the certificate", started)
            self.record("certificate", False, verify, started)
        self.record(step, False, _describe(error), started)

    async def _implicit_tls(self, smtp: aiosmtplib.SMTP) -> None:
        started = time.perf_counter()
        greeting = await self._connect(smtp, "tls")
        self.record("tls", True, f"implicit TLS ({_tls_version(smtp)}); greeting: {greeting}", started)

    async def _starttls(self, smtp: aiosmtplib.SMTP) -> None:
        await self._connect(smtp, None)
        started = time.perf_counter()
        try:
            await smtp.ehlo()
        except aiosmtplib.SMTPResponseException as error:
            self.record("starttls", False, error.message, started, code=error.code, reply=error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            self.record("starttls", False, _describe(error), started)
        if not smtp.supports_extension("starttls"):
            self.record("starttls", False, "STARTTLS extension not supported by server", started)
        try:
            await smtp.starttls(server_hostname=self.credentials.host)
        except aiosmtplib.SMTPResponseException as error:
            self.record("starttls", False, error.message, started, code=error.code, reply=error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            self._tls_failure("starttls", error, started)
        self.record("starttls", True, f"STARTTLS ({_tls_version(smtp)})", started)

    def _certificate(self, smtp: aiosmtplib.SMTP) -> None:
        started = time.perf_counter()
        cert = smtp.get_transport_info("peercert") or {}
        subject = _name(cert.get("subject", ()))
        issuer = _name(cert.get("issuer", ()))
        until = cert.get("notAfter", "?")
        self.record("certificate", True,
                    f"valid for {self.credentials.host}: subject {subject}, issuer {issuer}, expires {until}", started)

    async def _auth(self, smtp: aiosmtplib.SMTP) -> None:
        started = time.perf_counter()
        try:
            await smtp.ehlo()
            if not smtp.supports_extension("auth"):
                self.record("auth", False, "The SMTP AUTH extension is not supported by this server", started)
            reply = await smtp.login(self.credentials.username, self._password)
        except aiosmtplib.SMTPResponseException as error:
            self.record("auth", False, error.message, started, code=error.code, reply=error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            self.record("auth", False, _describe(error), started)
        self.record("auth", True, f"{reply.code} {reply.message} (as {self.credentials.username})", started)

    async def _token(self) -> None:
        """The grant at the token endpoint (client credentials, or a service account's JWT bearer grant); reports
        when the token expires, never the token."""
        started = time.perf_counter()
        creds = self.credentials
        try:
            token = await asyncio.wait_for(asyncio.to_thread(self._tokens.token, creds, fresh=True), self.timeout)
        except OAuthTokenError as error:
            refused = not error.transient
            explanation = self._explain_refusal(error) if refused else None
            if explanation is None:
                explanation = Explanation(f"The token endpoint could not be used: {error.message}",
                                          error.action or "Try again in a few minutes.")
            self.record("token", False, error.message, started, explanation=explanation,
                        oauth_error=(error.oauth_error or "refused") if refused else None, aadsts=error.aadsts)
        except TimeoutError:
            self.record("token", False, f"the token endpoint {creds.token_url} did not answer in time", started,
                        explanation=Explanation("The token endpoint did not answer in time.",
                                                "Try again; check that Relaydesk can reach it over HTTPS."))
        self._secrets.append(token)
        lifetime = self._expires_in
        expiry = f"expires in {lifetime // 60} min" if lifetime else "no expiry given"
        who = (f"service account {creds.oauth_service_account} as {creds.username}" if self._google else
               f"app {creds.oauth_client_id}" + (" (certificate)" if creds.oauth_grant is
                                                 OAuthGrant.CLIENT_CERTIFICATE else ""))
        self.record("token", True, f"access token for {who} from {creds.token_url} ({expiry})", started)

    def _explain_refusal(self, error: OAuthTokenError) -> Explanation:
        creds = self.credentials
        if error.oauth_error == "invalid_private_key":  # refused here, before any request: the error says why
            return Explanation(error.message, error.action or "Store the key again.")
        if self._google:
            return explain_google_token_error(error.oauth_error or "", error.description or "",
                                              service_account=creds.oauth_service_account or "",
                                              client_id=creds.oauth_client_id or "", mailbox=creds.username)
        return explain_token_error(error.oauth_error or "", error.message, aadsts=error.aadsts,
                                   tenant_id=creds.oauth_tenant_id or "", client_id=creds.oauth_client_id or "")

    def _fetch_recording_expiry(self, url: str, body: bytes, creds: SmtpCredentials, timeout: float) -> Response:
        """oauth's own HTTPS POST, keeping `expires_in` of a granted token for the report (AccessTokens.token
        returns the token only)."""
        response = oauth.post_form(url, body, creds, timeout)
        if response.status == 200:
            with contextlib.suppress(ValueError, TypeError, AttributeError):
                self._expires_in = int(json.loads(response.body).get("expires_in"))
        return response

    async def _xoauth2(self, smtp: aiosmtplib.SMTP) -> None:
        """AUTH XOAUTH2 as the mailbox with the token the token step fetched, through the relay's own `authenticate`."""
        started = time.perf_counter()
        try:
            await smtp.ehlo()
            if "xoauth2" not in smtp.server_auth_methods:
                self.record("auth", False, "AUTH XOAUTH2 is not supported by this server", started)
            await authenticate(smtp, self.credentials, self._tokens)
        except aiosmtplib.SMTPResponseException as error:
            self.record("auth", False, error.message, started, code=error.code, reply=error.message)
        except AuthenticationFailedError as error:
            reply = error.server_reply or error.message
            self.record("auth", False, reply, started, code=error.smtp_code, reply=reply)
        except SmtpDeliveryError as error:
            self.record("auth", False, error.server_reply or error.message, started, code=error.smtp_code,
                        reply=error.server_reply)
        except RelaydeskError as error:
            self.record("auth", False, error.message, started)
        except (aiosmtplib.SMTPException, OSError) as error:
            self.record("auth", False, _describe(error), started)
        self.record("auth", True, f"XOAUTH2 accepted (as {self.credentials.username})", started)

    async def _sender(self, smtp: aiosmtplib.SMTP) -> None:
        started = time.perf_counter()
        assert self.sender is not None
        try:
            await smtp.mail(self.sender)
        except aiosmtplib.SMTPResponseException as error:
            self.record("sender", False, error.message, started, code=error.code, reply=error.message)
        except (aiosmtplib.SMTPException, OSError) as error:
            self.record("sender", False, _describe(error), started)
        with contextlib.suppress(aiosmtplib.SMTPException, OSError):
            await smtp.rset()
        self.record("sender", True, f"MAIL FROM:<{self.sender}> accepted", started)


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # IPv4 first: Lambda has no IPv6 egress outside a dual-stack VPC, and a black-holed address costs a timeout.
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    seen: list[str] = []
    for info in infos:
        address = str(info[4][0])
        if address not in seen:
            seen.append(address)
    return seen


def _certificate_error(error: BaseException | None) -> str | None:
    """The certificate verification message somewhere in the exception chain, if the handshake failed on it."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, ssl.SSLCertVerificationError):
            return error.verify_message or str(error)
        error = error.__cause__ or error.__context__
        seen += 1
    return None


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _tls_version(smtp: aiosmtplib.SMTP) -> str:
    ssl_object = smtp.get_transport_info("ssl_object")
    return ssl_object.version() if ssl_object is not None else "TLS"


def _name(parts: Any) -> str:
    return ", ".join(f"{key}={value}" for rdn in parts for key, value in rdn) or "?"
