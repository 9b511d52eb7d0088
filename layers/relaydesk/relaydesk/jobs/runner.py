"""Starting a job (in the request) and running it (in the jobs function): each kind is one domain call whose steps
and progress are written to the job as they happen; its end is `succeeded` or `failed` with the plain-words summary
and the fix. A runner killed half-way leaves the job `running` past its deadline, which readers report as lost."""

from __future__ import annotations

import logging
from collections.abc import Callable

from relaydesk.addresses import connection, lifecycle, state, verification
from relaydesk.addresses.diagnosis import split_explanation
from relaydesk.addresses.limits import set_limits
from relaydesk.addresses.live_check import CheckStep
from relaydesk.addresses.rotation import Outcome as Rotated
from relaydesk.addresses.rotation import default_starter, wait_for_rotation
from relaydesk.errors import ConfigurationError, RelaydeskError
from relaydesk.ids import new_id
from relaydesk.jobs.model import Job, JobKind, JobStatus, JobStep, bounded
from relaydesk.store.ports import JobStore, Stores

logger = logging.getLogger(__name__)

ROTATION_WAIT_SECONDS = 240.0  # the rotation function's test is one live check (20 s per operation at most)
ROTATION_POLL_SECONDS = 2.0
# Per test mail: both waits and their sending fit the jobs function's 300 s (template.yaml); a mail later than that
# is usually greylisting, which the failure's hint names, and "Verify again" starts a new wait.
VERIFY_WAIT_SECONDS = 135.0


def job_store(stores: Stores) -> JobStore:
    if stores.jobs is None:
        raise ConfigurationError("no job store is configured (Stores.jobs)")
    return stores.jobs


def start(stores: Stores, account_id: str, kind: JobKind, email: str, *, name: str = "", token: str | None = None,
          planned_steps: list[str] | None = None, provider: str | None = None) -> Job:
    """Record the job, then ask for its runner; the caller answers the browser at once with the job."""
    if stores.launcher is None:
        raise ConfigurationError("no job runner is configured (RELAYDESK_CONSOLE_JOBS_FUNCTION)")
    job = Job(job_id=new_id("J"), account_id=account_id, kind=kind, email=email, name=name, token=token,
              planned_steps=planned_steps or [], provider=provider)
    job_store(stores).create(job)
    stores.launcher.launch(account_id, job.job_id)
    return job


def run(stores: Stores, account_id: str, job_id: str) -> Job | None:
    """Run one job to its end; a job that is unknown or already finished is left alone (a repeated invocation)."""
    jobs = job_store(stores)
    job = jobs.get(account_id, job_id)
    if job is None or job.status is not JobStatus.RUNNING:
        return job
    try:
        status, summary, fix = RUNNERS[job.kind](stores, job)
    except RelaydeskError as error:
        status, summary, fix = JobStatus.FAILED, error.message, error.action or None
    except Exception:
        logger.exception("console job failed", extra={"job_id": job_id, "kind": job.kind.value})
        status, summary, fix = (JobStatus.FAILED, "the job failed on our side",
                                "Try again; if it keeps failing, give the operator the time it happened.")
    jobs.finish(account_id, job_id, status, summary=summary, fix=fix)
    return jobs.get(account_id, job_id)


Outcome = tuple[JobStatus, str | None, str | None]


def _record_step(jobs: JobStore, job: Job) -> Callable[[CheckStep], None]:
    def record(step: CheckStep) -> None:
        jobs.add_step(job.account_id, job.job_id, JobStep(name=step.name, ok=step.ok, detail=bounded(step.detail),
                                                          elapsed_ms=step.elapsed_ms))
    return record


def _connect(stores: Stores, job: Job) -> Outcome:
    address, report = connection.complete(stores, job.account_id, job.email, job.name,
                                          on_step=_record_step(job_store(stores), job))
    if address is None:
        return JobStatus.FAILED, report.summary, report.fix
    if job.provider:  # as the CLI's --preset: the provider's sending limits, whatever the host is called
        set_limits(stores.directory, address.account_id, address.email, provider=job.provider)
    return (JobStatus.SUCCEEDED, f"{address.email} is connected; its connector is pending until verified",
            "Set up the forward on your mail server, then verify the address.")


def _verify(stores: Stores, job: Job) -> Outcome:
    jobs = job_store(stores)
    was_held = state.is_held(lifecycle.get_address(stores, job.account_id, job.email))
    address = verification.verify(stores, job.account_id, job.email, timeout=VERIFY_WAIT_SECONDS,
                                   on_progress=lambda line: jobs.add_progress(job.account_id, job.job_id, line))
    if verification.is_verified(address):
        ended = "; the hold has ended and the notifications it held are on their way" if was_held else ""
        return JobStatus.SUCCEEDED, f"{address.email}: forwarding and outbound verified{ended}", None
    failed = [f"{direction}: {check.error}" for direction, check in (("forwarding", address.forwarding),
                                                                      ("outbound", address.outbound))
              if check.error and check.status.value == "failed"]
    summary = "; ".join(failed) or "verification did not finish"
    if state.is_held(address):
        assert address.connector is not None
        summary += f"; the hold stays ({address.connector.state.value}): its notifications keep waiting"
    return JobStatus.FAILED, summary, "Fix the cause, then press Verify again."


def _rotate(stores: Stores, job: Job) -> Outcome:
    jobs = job_store(stores)
    address = lifecycle.get_address(stores, job.account_id, job.email)
    if address.connector is None or job.token is None:
        return JobStatus.FAILED, f"{job.email} has no connector credentials to change", None
    secret_id = address.connector.secret_arn
    jobs.add_progress(job.account_id, job.job_id, f"testing the new settings against {address.connector.host} "
                                                  "(a real sign-in and MAIL FROM)")
    default_starter(stores)(secret_id, job.token)
    outcome = wait_for_rotation(stores, secret_id, job.token, timeout=ROTATION_WAIT_SECONDS,
                                poll=ROTATION_POLL_SECONDS)
    if outcome is Rotated.PROMOTED:
        return (JobStatus.SUCCEEDED, "the smarthost accepted the new settings; they are in use now, and held "
                                     "notifications were released", None)
    if outcome is Rotated.RUNNING:
        return JobStatus.FAILED, "the rotation did not finish in time", "Look at the address again in a minute."
    fresh = lifecycle.get_address(stores, job.account_id, job.email)
    summary, fix = split_explanation(fresh.last_error or "the smarthost refused the new settings")
    return JobStatus.FAILED, summary, fix


RUNNERS: dict[JobKind, Callable[[Stores, Job], Outcome]] = {
    JobKind.CONNECT: _connect, JobKind.VERIFY: _verify, JobKind.ROTATE: _rotate,
}


def run_event(event: object, stores_for: Callable[[str], Stores]) -> dict:
    """The jobs function's event `{"account_id", "job_id"}` (only the tenant API sends it); the stores act for that
    account (its connector secrets through the account-tagged role)."""
    from relaydesk.api.identity import ACCOUNT_ID_PATTERN

    account_id = event.get("account_id") if isinstance(event, dict) else None
    job_id = event.get("job_id") if isinstance(event, dict) else None
    if not isinstance(account_id, str) or not ACCOUNT_ID_PATTERN.match(account_id) or not isinstance(job_id, str) \
            or not job_id.isalnum() or len(job_id) > 40:
        logger.warning("not a job event; nothing run")
        return {"status": "ignored"}
    job = run(stores_for(account_id), account_id, job_id)
    return {"job_id": job_id, "status": job.status.value if job else "unknown"}
