"""A job: one long admin operation (the wizard's live check and connect, a verification, a rotation), run outside the
HTTP request that started it, with every step recorded as it finishes so that the console shows it without a reload.

API Gateway's HTTP APIs cannot stream a response and end a request after 30 seconds: a verification waits minutes for
its test mails, so the request only starts the job (`JobLauncher`), and the console polls it."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from relaydesk.clock import utcnow

MAX_STEPS = 32  # a live check has at most 8 steps; a bound on what one job item can grow to
MAX_PROGRESS_LINES = 200  # a verification reports every 10 s for at most two waits of 135 s, plus its phases
MAX_TEXT = 2000  # one step's detail or one progress line: a server's reply can be long, the item cannot
KEEP_FOR = timedelta(days=1)  # then DynamoDB's TTL removes the job


class JobKind(StrEnum):
    CONNECT = "connect"  # live check of staged credentials, then the connector address is created
    VERIFY = "verify"  # forwarding, then outbound verification, waiting for the test mails
    ROTATE = "rotate"  # the staged credentials are tested by the rotation and promoted (or refused)


class JobStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


# How long each kind may run before a job still marked running is reported lost (its runner died): a little more
# than the runner's own limit (template.yaml's ConsoleJobsFunction Timeout, 300 s), which no job outlives.
DEADLINES = {JobKind.CONNECT: timedelta(minutes=5, seconds=30), JobKind.VERIFY: timedelta(minutes=5, seconds=30),
             JobKind.ROTATE: timedelta(minutes=5, seconds=30)}


class JobStep(BaseModel):
    """One finished step of a live check, as `CheckStep` reports it (never a credential: the check scrubs them)."""

    name: str
    ok: bool
    detail: str = Field(default="", max_length=MAX_TEXT)
    elapsed_ms: float = 0.0


class Job(BaseModel):
    job_id: str
    account_id: str
    kind: JobKind
    email: str
    name: str = ""  # connect: the address's display name
    token: str | None = None  # rotate: the staged secret version
    provider: str | None = None  # connect: the sending limits' profile the wizard's preset names (None: by the host)
    status: JobStatus = JobStatus.RUNNING
    planned_steps: list[str] = Field(default_factory=list)  # what the live check will run, in order
    steps: list[JobStep] = Field(default_factory=list)
    progress: list[str] = Field(default_factory=list)
    summary: str | None = None  # the failure in plain words
    fix: str | None = None  # what to do about it
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def deadline(self) -> datetime:
        return self.created_at + DEADLINES[self.kind]

    def lost(self, now: datetime) -> bool:
        """Still running past its deadline: its runner was killed (timeout, crash) before it could finish."""
        return self.status is JobStatus.RUNNING and now > self.deadline


def bounded(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
