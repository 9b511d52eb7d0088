"""The live check before credentials are saved: DNS, TCP, STARTTLS or implicit TLS, certificate, AUTH, step by step
(an OAuth 2.0 address also has a `token` step before AUTH: the app's access token is fetched, and AUTH is XOAUTH2).

Each step is reported as it finishes (name, ok, detail, elapsed) and a failure carries a plain-words explanation
with the fix. TLS is verified with the one client context and never downgraded; AUTH is only tried over TLS. The
password, the client secret and the access token never appear in a step, the report or an error. The SMTP
conversation itself is in `live_check_smtp`, imported when a check runs: rotation checks in one step of four and
the addresses API in a few operations, so their cold start skips aiosmtplib (about 6 ms; 20 ms with asyncio for
rotation: bench/bench_coldstart.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel, Field

from relaydesk.credentials import AuthKind, SmtpCredentials, TlsMode
from relaydesk.errors import (
    AuthenticationFailedError,
    CertificateVerificationError,
    SmtpDeliveryError,
    TlsRequiredError,
)

DEFAULT_TIMEOUT = 20.0  # seconds per network operation; Exchange Online can take several seconds to answer AUTH

Resolver = Callable[[str, int], list[str]]  # host, port -> IP addresses to try in order
StepListener = Callable[["CheckStep"], None]


class CheckStep(BaseModel):
    name: str  # dns, tcp, starttls | tls, certificate, token (oauth2), auth, sender
    ok: bool
    detail: str = ""
    elapsed_ms: float = 0.0
    smtp_code: int | None = None
    enhanced_status: str | None = None
    oauth_error: str | None = None  # token: the token endpoint refused the app (RFC 6749 5.2 `error`)
    aadsts: str | None = None  # token: Entra ID's error code, e.g. AADSTS7000215


class LiveCheckReport(BaseModel):
    host: str
    port: int
    tls_mode: TlsMode
    steps: list[CheckStep] = Field(default_factory=list)
    summary: str | None = None  # the failure in plain words
    fix: str | None = None  # what to do about it

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def failed_step(self) -> CheckStep | None:
        return next((step for step in self.steps if not step.ok), None)

    def to_error(self) -> SmtpDeliveryError:
        """The typed error for a failed check, carrying the explanation and the fix."""
        step = self.failed_step
        if step is None:
            raise ValueError("the live check passed; there is no error")
        kind: type[SmtpDeliveryError] = SmtpDeliveryError
        if (step.name == "auth" and step.smtp_code is not None) or (step.name == "token" and step.oauth_error):
            kind = AuthenticationFailedError  # a refused token is refused credentials, as a 535 is
        elif step.name == "certificate":
            kind = CertificateVerificationError
        elif step.name == "starttls" and "STARTTLS" in (self.summary or ""):
            kind = TlsRequiredError
        message = f"live check failed at {step.name}: {self.summary or step.detail}"
        return kind(message, smtp_code=step.smtp_code, enhanced_status=step.enhanced_status,
                    server_reply=step.detail, action=self.fix)


def planned_steps(credentials: SmtpCredentials, *, sender: bool = True) -> list[str]:
    """The steps a check of these credentials runs, in order, when every one passes (what a progress view lists)."""
    tls = ["tls"] if credentials.tls_mode is TlsMode.IMPLICIT else ["greeting", "starttls"]
    token = ["token"] if credentials.auth_kind is AuthKind.OAUTH2 else []
    return ["dns", "tcp", *tls, "certificate", *token, "auth", *(["sender"] if sender else [])]


async def live_check(credentials: SmtpCredentials, *, resolver: Resolver | None = None,
                     timeout: float = DEFAULT_TIMEOUT, sender: str | None = None,
                     on_step: StepListener | None = None) -> LiveCheckReport:
    """Run the check in the running event loop."""
    from relaydesk.addresses.live_check_smtp import Checker

    checker = Checker(credentials, resolver=resolver, timeout=timeout, sender=sender, on_step=on_step)
    return await checker.run()


def run_live_check(credentials: SmtpCredentials, *, resolver: Resolver | None = None,
                   timeout: float = DEFAULT_TIMEOUT, sender: str | None = None,
                   on_step: StepListener | None = None) -> LiveCheckReport:
    """Run the check to the end and return its report; `on_step` hears each step as it finishes."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    coroutine: Awaitable[LiveCheckReport] = live_check(credentials, resolver=resolver, timeout=timeout,
                                                       sender=sender, on_step=on_step)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    # Called from inside an event loop (a Lambda powered by asyncio, a test): run in a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]
