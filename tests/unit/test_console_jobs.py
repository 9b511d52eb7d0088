"""The console's jobs without AWS: a repeated or malformed invocation runs nothing, an unexpected failure ends the job
with words (its details stay in the log), and a last error reads as what happened and what to do."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from relaydesk.addresses.diagnosis import explain_last_error, split_explanation
from relaydesk.jobs import runner
from relaydesk.jobs.model import Job, JobKind, JobStatus
from relaydesk.store.memory import MemoryJobs, MemoryLauncher


@pytest.fixture
def stores(memory_stores):
    return replace(memory_stores, jobs=MemoryJobs(), launcher=MemoryLauncher())


def test_a_finished_job_is_not_run_again(stores, monkeypatch):
    ran = []
    monkeypatch.setitem(runner.RUNNERS, JobKind.VERIFY, lambda stores, job: ran.append(job) or (
        JobStatus.SUCCEEDED, "done", None))
    job = runner.start(stores, "A1", JobKind.VERIFY, "support@acme.test")

    runner.run(stores, "A1", job.job_id)
    runner.run(stores, "A1", job.job_id)  # Lambda may deliver an asynchronous event twice

    assert len(ran) == 1 and stores.jobs.get("A1", job.job_id).status is JobStatus.SUCCEEDED
    assert runner.run(stores, "A2", job.job_id) is None  # another account's job is not found


def test_an_unexpected_failure_ends_the_job_in_words_without_its_details(stores, monkeypatch, caplog):
    def broken(stores, job):
        raise KeyError("internal-detail-xyz")
    monkeypatch.setitem(runner.RUNNERS, JobKind.CONNECT, broken)
    job = runner.start(stores, "A1", JobKind.CONNECT, "support@acme.test")

    finished = runner.run(stores, "A1", job.job_id)

    assert (finished.status, finished.summary) == (JobStatus.FAILED, "the job failed on our side")
    assert "internal-detail-xyz" not in (finished.summary or "") + (finished.fix or "")
    assert "internal-detail-xyz" in caplog.text  # for the operator


@pytest.mark.parametrize("event", [None, [], {}, {"account_id": "A1"}, {"account_id": "../x", "job_id": "J1"},
                                   {"account_id": "A1", "job_id": "J1; drop"},
                                   {"account_id": "A1", "job_id": "J" * 99}])
def test_an_event_that_is_not_a_job_runs_nothing(stores, event):
    assert runner.run_event(event, lambda account_id: stores) == {"status": "ignored"}


def test_a_job_past_its_deadline_is_lost():
    job = Job(job_id="J1", account_id="A1", kind=JobKind.CONNECT, email="a@b.c")

    assert not job.lost(job.deadline) and job.lost(job.deadline + timedelta(seconds=1))
    job.status = JobStatus.FAILED
    assert not job.lost(job.deadline + timedelta(days=1))  # a finished job is never lost


@pytest.mark.parametrize("text, summary, fix", [
    ("auth_failed: smtp.acme.com refused the credentials (535 5.7.3). Notifications are held until the credentials "
     "change. What to do: Check the password.", "smtp.acme.com refused the credentials (535 5.7.3). Notifications "
     "are held until the credentials change.", "Check the password."),
    ("credential rotation failed at auth; the server replied: 535 5.7.139 Authentication unsuccessful, "
     "SmtpClientAuthentication is disabled", None, "Set-CASMailbox"),
    ("forwarding verification failed: no test mail came back within 300 s.", None, None),
])
def test_a_last_error_is_split_into_what_happened_and_what_to_do(text, summary, fix):
    said, todo = split_explanation(text)

    assert said == (summary or text)
    assert (todo is None) if fix is None else (fix in todo)
    assert explain_last_error(None) is None
