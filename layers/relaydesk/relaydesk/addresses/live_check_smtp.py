"""The live check's SMTP conversation (DNS, TCP, TLS, certificate, AUTH, sender), recorded step by step into a
`LiveCheckReport`; imported by `relaydesk.addresses.live_check` when a check runs (see its docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from typing import Any

import aiosmtplib

from relaydesk.addresses.explain import enhanced_status_of, explain_step
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport, Resolver, StepListener
from relaydesk.credentials import SmtpCredentials, TlsMode
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

    def _scrub(self, text: str) -> str:
        # A server never should echo the password; if one does, it still never reaches a report.
        return text.replace(self._password, "********") if self._password else text

    def record(self, name: str, ok: bool, detail: str, started: float, *, code: int | None = None,
               reply: str = "") -> None:
        detail = self._scrub(detail)
        step = CheckStep(name=name, ok=ok, detail=detail, elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                         smtp_code=code, enhanced_status=enhanced_status_of(reply) if reply else None)
        self.report.steps.append(step)
        if not ok:
            explanation = explain_step(name, code=code, reply=self._scrub(reply), error=detail,
                                       host=self.credentials.host, port=self.credentials.port,
                                       username=self.credentials.username)
            self.report.summary, self.report.fix = explanation
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
