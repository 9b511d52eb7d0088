"""The console's jobs in the directory table, and their launcher (Lambda's asynchronous invocation).

Items: pk `JOBS#<account id>`, sk `JOB#<job id>`; `doc` = the job without its steps and progress, which are list
attributes grown by one UpdateItem each (a poller sees a step the moment it is written); `expires_at` for the
table's TTL. No GSI attributes: jobs never show up in the account or address listings.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from relaydesk.store.dynamodb import _is_conditional_failure

if TYPE_CHECKING:
    from relaydesk.jobs.model import Job, JobStatus, JobStep


def _key(account_id: str, job_id: str) -> dict:
    return {"pk": f"JOBS#{account_id}", "sk": f"JOB#{job_id}"}


class DynamoJobs:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, job: Job) -> None:
        from relaydesk.jobs.model import KEEP_FOR

        doc = job.model_copy(update={"steps": [], "progress": []})
        self._table.put_item(Item={**_key(job.account_id, job.job_id), "doc": doc.model_dump_json(),
                                   "steps": [], "progress": [], "status": job.status.value,
                                   "expires_at": int((job.created_at + KEEP_FOR).timestamp())},
                             ConditionExpression="attribute_not_exists(pk)")

    def get(self, account_id: str, job_id: str) -> Job | None:
        from relaydesk.jobs.model import Job, JobStatus, JobStep

        item = self._table.get_item(Key=_key(account_id, job_id), ConsistentRead=True).get("Item")
        if not item:
            return None
        job = Job.model_validate_json(item["doc"])
        job.steps = [JobStep.model_validate_json(step) for step in item.get("steps") or []]
        job.progress = [str(line) for line in item.get("progress") or []]
        job.status = JobStatus(item.get("status", job.status.value))
        job.summary, job.fix = item.get("summary") or None, item.get("fix") or None
        if "updated_at" in item:
            job.updated_at = datetime.fromisoformat(item["updated_at"])
        return job

    def add_step(self, account_id: str, job_id: str, step: JobStep) -> None:
        from relaydesk.jobs.model import MAX_STEPS

        self._append(account_id, job_id, "steps", step.model_dump_json(), MAX_STEPS)

    def add_progress(self, account_id: str, job_id: str, line: str) -> None:
        from relaydesk.jobs.model import MAX_PROGRESS_LINES, bounded

        self._append(account_id, job_id, "progress", bounded(line), MAX_PROGRESS_LINES)

    def finish(self, account_id: str, job_id: str, status: JobStatus, *, summary: str | None = None,
               fix: str | None = None) -> None:
        from relaydesk.clock import utcnow
        from relaydesk.jobs.model import bounded

        self._table.update_item(
            Key=_key(account_id, job_id), ConditionExpression="attribute_exists(pk)",
            UpdateExpression="SET #status = :status, summary = :summary, fix = :fix, updated_at = :now",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":status": status.value, ":summary": bounded(summary or ""),
                                       ":fix": bounded(fix or ""), ":now": utcnow().isoformat()})

    def _append(self, account_id: str, job_id: str, attribute: str, value: str, limit: int) -> None:
        from relaydesk.clock import utcnow

        try:
            self._table.update_item(
                Key=_key(account_id, job_id),
                ConditionExpression=f"attribute_exists(pk) AND size({attribute}) < :limit",
                UpdateExpression=f"SET {attribute} = list_append({attribute}, :value), updated_at = :now",
                ExpressionAttributeValues={":value": [value], ":limit": limit, ":now": utcnow().isoformat()})
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            # A job past its bound (or deleted by its TTL) takes no more lines: the runner goes on regardless.


class LambdaJobLauncher:
    """`Event` invocation: Lambda queues it and answers at once; the jobs function records what happens."""

    def __init__(self, client: Any, function_name: str) -> None:
        self._client = client  # a function that returns the Lambda client (made at the first launch)
        self._function = function_name

    def launch(self, account_id: str, job_id: str) -> None:
        self._client().invoke(FunctionName=self._function, InvocationType="Event",
                              Payload=json.dumps({"account_id": account_id, "job_id": job_id}).encode())
