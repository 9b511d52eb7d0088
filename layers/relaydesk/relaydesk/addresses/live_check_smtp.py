"""The live check's steps (DNS, TCP, greeting, TLS, certificate, OAuth token, AUTH, sender), each recorded into a
`LiveCheckReport` as it finishes. The SMTP steps are the relay's own (`outbound/smtp.py`'s `SmtpSubmission`: one
AUTH attempt with one mechanism); the typed error that ended the check is kept on the report. Imported by
`relaydesk.addresses.live_check` when a check runs (see its docstring)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from relaydesk import destinations, oauth
from relaydesk.addresses.check_report import CheckStep, LiveCheckReport, Resolver, StepListener
from relaydesk.addresses.explain import (
    Explanation,
    enhanced_status_of,
    explain_google_token_error,
    explain_step,
    explain_token_error,
)
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials, TlsMode
from relaydesk.errors import (
    AuthMechanismUnavailableError,
    CertificateVerificationError,
    DestinationRefused,
    OAuthTokenError,
    OAuthTokenRefusedError,
    OAuthTokenUnavailableError,
    SmtpDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.oauth import AccessTokens, Response
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts

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
        self._oauth = credentials.auth_kind is AuthKind.OAUTH2
        self._google = self._oauth and credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
        client_secret = credentials.oauth_client_secret
        key = credentials.oauth_signing_key
        # The private key whole and line by line (a server quoting part of it is scrubbed too).
        key_lines = [line for line in key.splitlines() if len(line) >= 16 and "-----" not in line]
        self._secrets = [s for s in (credentials.password.get_secret_value(),
                                     client_secret.get_secret_value() if client_secret else "", key, *key_lines) if s]
        # A token cache of this check only: the token step always asks the endpoint (a real fetch), and the auth
        # step reuses that token rather than a cached one that could hide a changed client secret.
        self._expires_in: int | None = None
        self._tokens = AccessTokens(fetch=self._fetch_recording_expiry)
        self.session = SmtpSubmission(credentials, timeouts=Timeouts(connect=timeout, command=timeout, data=timeout),
                                      local_hostname=EHLO_NAME, tokens=self._tokens)

    def _scrub(self, text: str) -> str:
        # A server never should echo the password, the client secret or the token; if one does, it still never
        # reaches a report.
        for secret in self._secrets:
            text = text.replace(secret, "********")
        return text

    def record(self, name: str, started: float, detail: str, *, error: SmtpDeliveryError | None = None,
               explanation: Explanation | None = None, **fields: str | None) -> None:
        """One finished step: passed without `error`, else failed with it (the check ends with that error)."""
        detail = self._scrub(detail)
        reply = self._scrub(error.server_reply) if error is not None else ""
        step = CheckStep(name=name, ok=error is None, detail=detail,
                         elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
                         smtp_code=error.smtp_code if error is not None else None,
                         enhanced_status=enhanced_status_of(reply) if reply else None, **fields)
        self.report.steps.append(step)
        if error is not None:
            explanation = explanation or explain_step(
                name, code=error.smtp_code, reply=_reply_text(reply), error=detail, host=self.credentials.host,
                port=self.credentials.port, username=self.credentials.username, oauth=self._oauth,
                google=self._google)
            self.report.summary, self.report.fix = (self._scrub(part) for part in explanation)
            self.report.error = error
        if self.on_step is not None:
            self.on_step(step)
        if error is not None:
            raise _StepFailed(name)

    def fail(self, name: str, started: float, error: SmtpDeliveryError, **kwargs: Any) -> None:
        self.record(name, started, _reply_text(error.server_reply) or error.message, error=error, **kwargs)

    async def run(self) -> LiveCheckReport:
        sock: socket.socket | None = None
        try:
            addresses = await self._dns()
            sock = await self._tcp(addresses)
            if self.credentials.tls_mode is TlsMode.IMPLICIT:
                await self._implicit_tls(sock)
            else:
                await self._starttls(sock)
            self._certificate()
            if self._oauth:
                await self._token()
            await self._auth()
            if self.sender:
                await self._sender()
        except _StepFailed:
            pass
        finally:
            await self.session.close()
            if sock is not None:
                sock.close()  # a no-op when the SMTP transport has closed it already
        return self.report

    async def _dns(self) -> list[str]:
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        host = self.credentials.host
        try:
            addresses = await asyncio.wait_for(
                loop.run_in_executor(None, self.resolver, host, self.credentials.port), self.timeout)
        except (OSError, TimeoutError) as error:
            self.record("dns", started, f"{host}: {_describe(error)}",
                        error=TransientDeliveryError(f"{host} does not resolve: {_describe(error)}"))
        if not addresses:
            self.record("dns", started, f"{host} has no address records",
                        error=TransientDeliveryError(f"{host} has no address records"))
        try:
            destinations.check(host, addresses)  # the TCP step connects to exactly these
        except DestinationRefused as refused:
            self.record("dns", started, refused.message, error=refused)
        self.record("dns", started, f"{host} -> {', '.join(addresses)}")
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
            self.record("tcp", started, f"connected to {address} port {self.credentials.port}")
            return sock
        said = "; ".join(errors)
        self.record("tcp", started, said, error=TransientDeliveryError(f"could not connect: {said}"))
        raise AssertionError("unreachable")  # record() raised

    async def _implicit_tls(self, sock: socket.socket) -> None:
        started = time.perf_counter()
        try:
            await self.session.connect(sock=sock)
        except CertificateVerificationError as error:
            self.record("certificate", started, _certificate_detail(error), error=error)
        except SmtpDeliveryError as error:
            self.fail("greeting" if error.smtp_code else "tls", started, error)
        try:
            await self.session.secure()  # EHLO over the TLS connection: what the server offers
        except SmtpDeliveryError as error:
            self.fail("tls", started, error)
        tls = self.session.tls
        self.record("tls", started, f"implicit TLS ({tls.version if tls else 'TLS'}); greeting: "
                                    f"{self.session.greeting}")

    async def _starttls(self, sock: socket.socket) -> None:
        started = time.perf_counter()
        try:
            await self.session.connect(sock=sock)
        except SmtpDeliveryError as error:
            self.fail("greeting", started, error)
        self.record("greeting", started, self.session.greeting)
        started = time.perf_counter()
        try:
            await self.session.secure()
        except TlsRequiredError as error:
            self.record("starttls", started, "STARTTLS extension not supported by server", error=error)
        except CertificateVerificationError as error:
            self.record("starttls", started, "STARTTLS accepted; handshake stopped at the certificate")
            self.record("certificate", started, _certificate_detail(error), error=error)
        except SmtpDeliveryError as error:
            self.fail("starttls", started, error)
        tls = self.session.tls
        self.record("starttls", started, f"STARTTLS ({tls.version if tls else 'TLS'})")

    def _certificate(self) -> None:
        started = time.perf_counter()
        cert = self.session.tls.peer_certificate if self.session.tls else {}
        subject = _name(cert.get("subject", ()))
        issuer = _name(cert.get("issuer", ()))
        until = cert.get("notAfter", "?")
        self.record("certificate", started,
                    f"valid for {self.credentials.host}: subject {subject}, issuer {issuer}, expires {until}")

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
            if explanation is None:  # the error's own action speaks of the relay's retries: not this check's
                host = urlsplit(creds.token_url).hostname or creds.token_url
                fix = error.action if refused and error.action else (
                    f"Run the check again in a few minutes; if it keeps failing, check that Relaydesk can reach "
                    f"{host} over HTTPS.")
                explanation = Explanation(f"The token endpoint could not be used: {error.message}", fix)
            typed = OAuthTokenRefusedError(error) if refused else OAuthTokenUnavailableError(error)
            self.record("token", started, error.message, error=typed, explanation=explanation,
                        oauth_error=(error.oauth_error or "refused") if refused else None, aadsts=error.aadsts)
        except TimeoutError:
            self.record("token", started, f"the token endpoint {creds.token_url} did not answer in time",
                        error=TransientDeliveryError("the token endpoint did not answer in time"),
                        explanation=Explanation("The token endpoint did not answer in time.",
                                                "Try again; check that Relaydesk can reach it over HTTPS."))
        self._secrets.append(token)
        lifetime = self._expires_in
        expiry = f"expires in {lifetime // 60} min" if lifetime else "no expiry given"
        who = (f"service account {creds.oauth_service_account} as {creds.username}" if self._google else
               f"app {creds.oauth_client_id}" + (" (certificate)" if creds.oauth_grant is
                                                 OAuthGrant.CLIENT_CERTIFICATE else ""))
        self.record("token", started, f"access token for {who} from {creds.token_url} ({expiry})")

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

    async def _auth(self) -> None:
        """The relay's AUTH: one attempt with one mechanism (XOAUTH2 with the token step's token)."""
        started = time.perf_counter()
        try:
            await self.session.authenticate()
        except AuthMechanismUnavailableError as error:
            mechanism = "AUTH XOAUTH2" if self._oauth else "The SMTP AUTH extension"
            self.record("auth", started, f"{mechanism} is not supported by this server ({error.message})",
                        error=error)
        except SmtpDeliveryError as error:
            self.fail("auth", started, error)
        how = "XOAUTH2 accepted" if self._oauth else f"AUTH {self.session.mechanism} accepted"
        self.record("auth", started, f"{how} (as {self.credentials.username})")

    async def _sender(self) -> None:
        started = time.perf_counter()
        assert self.sender is not None
        try:
            await self.session.check_sender(self.sender)
        except SmtpDeliveryError as error:
            self.fail("sender", started, error)
        self.record("sender", started, f"MAIL FROM:<{self.sender}> accepted")


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


def _reply_text(reply: str) -> str:
    """The text of a server reply without its code (what the explanations match against)."""
    code, _, text = reply.partition(" ")
    return text if code.isdigit() else reply


def _certificate_detail(error: CertificateVerificationError) -> str:
    return error.message.partition("did not verify: ")[2] or error.message


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    text = str(error) or type(error).__name__
    cause = error.__cause__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text} ({cause})"
    return text


def _name(parts: Any) -> str:
    return ", ".join(f"{key}={value}" for rdn in parts for key, value in rdn) or "?"
