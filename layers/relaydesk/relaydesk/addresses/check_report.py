"""The live check's report: each step as it finished (name, ok, detail, elapsed, the server's reply) and the failure
in plain words with the fix. Written by `live_check_smtp`, read by the CLI, the API and rotation."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, Field

from relaydesk.credentials import TlsMode
from relaydesk.errors import (
    AuthenticationFailedError,
    CertificateVerificationError,
    SmtpDeliveryError,
    TlsRequiredError,
)

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

    def to_error(self, context: str = "") -> SmtpDeliveryError:
        """The typed error for a failed check, carrying the explanation and the fix; `context` goes first in its
        message (what the check was for)."""
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
        if context:
            message = f"{context}: {message}"
        return kind(message, smtp_code=step.smtp_code, enhanced_status=step.enhanced_status,
                    server_reply=step.detail, action=self.fix)
