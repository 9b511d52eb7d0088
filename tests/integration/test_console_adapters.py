"""The admin console's adapters against moto (template.yaml's resources): jobs in the directory table, the account's
users in the user pool, the console's files published to its bucket by the custom resource, and Lambda's Invoke API
on loopback starting a job asynchronously."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

import boto3
import pytest
from relaydesk import console_site
from relaydesk.errors import ConflictError
from relaydesk.jobs.model import MAX_STEPS, Job, JobKind, JobStatus, JobStep
from relaydesk.users import UserRole

from local.aws_resources import physical_name

SITE = Path(__file__).resolve().parents[2] / "console" / "dist"
CONFIG = {"region": "us-east-1", "userPoolId": "us-east-1_pool", "clientId": "client",
          "apiUrl": "https://api.example.test/", "cognitoEndpoint": "https://cognito-idp.us-east-1.amazonaws.com/",
          "uploadsUrl": "https://raw-mail.s3.us-east-1.amazonaws.com/", "environment": "sandbox"}


# --- jobs ---------------------------------------------------------------------------------------------------------

def test_a_job_grows_step_by_step_is_bounded_and_expires_with_the_tables_ttl(aws_stack):
    jobs = aws_stack.jobs
    job = Job(job_id="J1", account_id="A1", kind=JobKind.CONNECT, email="support@acme.test",
              planned_steps=["dns", "tcp"])
    jobs.create(job)

    jobs.add_step("A1", "J1", JobStep(name="dns", ok=True, detail="127.0.0.1", elapsed_ms=1.5))
    seen_mid_run = jobs.get("A1", "J1")
    for n in range(MAX_STEPS + 5):
        jobs.add_step("A1", "J1", JobStep(name=f"s{n}", ok=True))
    jobs.add_progress("A1", "J1", "x" * 10_000)
    jobs.finish("A1", "J1", JobStatus.FAILED, summary="refused", fix="check the password")

    assert [step.name for step in seen_mid_run.steps] == ["dns"] and seen_mid_run.status is JobStatus.RUNNING
    done = jobs.get("A1", "J1")
    assert len(done.steps) == MAX_STEPS  # the bound holds: later steps are dropped, not failures
    assert len(done.progress[0]) <= 2000
    assert (done.status, done.summary, done.fix) == (JobStatus.FAILED, "refused", "check the password")
    assert jobs.get("A2", "J1") is None  # another account's job does not exist for it
    item = boto3.resource("dynamodb").Table(aws_stack.settings.directory_table).get_item(
        Key={"pk": "JOBS#A1", "sk": "JOB#J1"})["Item"]
    assert int(item["expires_at"]) - time.time() == pytest.approx(86_400, abs=120)
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=aws_stack.settings.directory_table)
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    with pytest.raises(ConflictError):
        jobs.create(job)  # a job id is written once


# --- users --------------------------------------------------------------------------------------------------------

def test_an_account_lists_and_invites_only_its_own_users(aws_stack):
    users = aws_stack.users
    users.invite("A1", "ann@acme.test", UserRole.ADMIN)
    users.invite("A1", "bob@acme.test", UserRole.AGENT)
    users.invite("A2", "gary@globex.test", UserRole.ADMIN)

    listed = users.list_users("A1")

    assert sorted((u.email, u.role, u.status) for u in listed) == [
        ("ann@acme.test", UserRole.ADMIN, "FORCE_CHANGE_PASSWORD"), ("bob@acme.test", UserRole.AGENT,
                                                                     "FORCE_CHANGE_PASSWORD")]
    with pytest.raises(ConflictError) as refused:
        users.invite("A1", "gary@globex.test", UserRole.ADMIN)
    assert "A2" not in refused.value.message and "globex" not in refused.value.message.lower()
    cognito = boto3.client("cognito-idp")
    user = cognito.admin_get_user(UserPoolId=aws_stack.settings.user_pool_id, Username="bob@acme.test")
    assert {a["Name"]: a["Value"] for a in user["UserAttributes"]}["custom:account_id"] == "A1"


def test_an_invitation_stopped_before_its_group_is_completed_by_the_next_one(aws_stack):
    cognito = boto3.client("cognito-idp")
    pool = aws_stack.settings.user_pool_id
    cognito.admin_create_user(UserPoolId=pool, Username="ann@acme.test", MessageAction="SUPPRESS", UserAttributes=[
        {"Name": "email", "Value": "ann@acme.test"}, {"Name": "custom:account_id", "Value": "A1"}])

    user = aws_stack.users.invite("A1", "ann@acme.test", UserRole.AGENT)

    assert user.role is UserRole.AGENT
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool, Username="ann@acme.test")["Groups"]
    assert [g["GroupName"] for g in groups] == ["agent"]


# --- the console's files ------------------------------------------------------------------------------------------

class _CloudFormation(http.server.BaseHTTPRequestHandler):
    answers: list[dict] = []

    def do_PUT(self):
        self.answers.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def cloudformation():
    """A stand-in for CloudFormation's pre-signed response URL, on loopback."""
    _CloudFormation.answers = []
    server = http.server.HTTPServer(("127.0.0.1", 0), _CloudFormation)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/response", _CloudFormation.answers
    server.shutdown()
    server.server_close()


def custom_resource_event(kind: str, url: str, bucket: str) -> dict:
    return {"RequestType": kind, "ResponseURL": url, "StackId": "arn:aws:cloudformation:us-east-1:1:stack/s/1",
            "RequestId": "r1", "LogicalResourceId": "ConsoleSite", "ResourceType": "Custom::ConsoleSite",
            "ResourceProperties": {"Bucket": bucket, "Config": CONFIG, "Release": "3"}}


def test_the_custom_resource_publishes_the_console_then_empties_the_bucket(aws_stack, cloudformation, monkeypatch):
    url, answers = cloudformation
    bucket = physical_name("ConsoleBucket")
    s3 = boto3.client("s3")
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(SITE))

    console_site.handler(custom_resource_event("Create", url, bucket), None)
    keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    index = s3.get_object(Bucket=bucket, Key="index.html")
    script = next(key for key in keys if key.endswith(".js"))
    config = json.loads(s3.get_object(Bucket=bucket, Key="config.json")["Body"].read())
    script_cache = s3.get_object(Bucket=bucket, Key=script)["CacheControl"]
    console_site.handler(custom_resource_event("Delete", url, bucket), None)

    assert {"index.html", "config.json"} <= keys and "BUILD.json" not in keys
    page = index["Body"].read().decode()
    assert (index["ContentType"], index["CacheControl"]) == ("text/html; charset=utf-8", "no-cache")
    assert ("connect-src 'self' https://api.example.test https://cognito-idp.us-east-1.amazonaws.com "
            "https://raw-mail.s3.us-east-1.amazonaws.com;") in page  # the attachments' uploads, and nothing else
    assert script in page and script_cache.endswith("immutable")
    assert config == CONFIG
    assert [a["Status"] for a in answers] == ["SUCCESS", "SUCCESS"]
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_a_publication_that_fails_tells_cloudformation_why(aws_stack, cloudformation, monkeypatch):
    url, answers = cloudformation
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(SITE))
    event = custom_resource_event("Create", url, physical_name("ConsoleBucket"))
    del event["ResourceProperties"]["Config"]["apiUrl"]

    console_site.handler(event, None)

    assert answers[0]["Status"] == "FAILED" and "apiUrl" in answers[0]["Reason"]


# --- Lambda's Invoke API on loopback --------------------------------------------------------------------------------

def test_an_event_invocation_answers_at_once_and_runs_the_job_in_the_background(aws_stack, monkeypatch):
    from relaydesk.jobs import runner

    from local.lambda_invoke import LocalLambda

    ran = threading.Event()
    monkeypatch.setattr("local.lambdas.invoke", lambda directory, event: (time.sleep(0.3), ran.set(), {"ok": 1})[2])
    api = LocalLambda({"relaydesk-local-console-jobs-function": "console_jobs"}).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", api.url)
        launcher = type(aws_stack.launcher)(lambda: boto3.client("lambda"), "relaydesk-local-console-jobs-function")
        job = runner.start(aws_stack.__class__(**{**aws_stack.__dict__, "launcher": launcher}), "A1", JobKind.VERIFY,
                           "support@acme.test")
        assert not ran.is_set()  # the request did not wait for the job
        assert ran.wait(10)
        assert api.invocations == [("console_jobs", "Event")]
        assert aws_stack.jobs.get("A1", job.job_id).status is JobStatus.RUNNING  # the stub ran nothing
    finally:
        api.stop()
