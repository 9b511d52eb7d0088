"""The live check's report: each step as it finished (name, ok, detail, elapsed, the server's reply) and the failure
in plain words with the fix. Written by `live_check_smtp`, read by the CLI, the API and rotation."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from relaydesk.credentials import TlsMode
from relaydesk.errors import OAuthTokenRefusedError, OAuthTokenUnavailableError, SmtpDeliveryError

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
    model_config = ConfigDict(arbitrary_types_allowed=True)

    host: str
    port: int
    tls_mode: TlsMode
    steps: list[CheckStep] = Field(default_factory=list)
    summary: str | None = None  # the failure in plain words
    fix: str | None = None  # what to do about it
    # The typed error that ended the check, as the step raised it (the relay's own error model); never serialized.
    error: SmtpDeliveryError | None = Field(default=None, exclude=True, repr=False)

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
        message = f"live check failed at {step.name}: {self.summary or step.detail}"
        if context:
            message = f"{context}: {message}"
        kept = self.error
        if isinstance(kept, OAuthTokenRefusedError | OAuthTokenUnavailableError):
            return type(kept)(kept.token_error, message=message, action=self.fix)
        kind = type(kept) if kept is not None else SmtpDeliveryError
        return kind(message, smtp_code=step.smtp_code, enhanced_status=step.enhanced_status,
                    server_reply=kept.server_reply if kept is not None else step.detail, action=self.fix)
