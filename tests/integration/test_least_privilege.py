"""Each function's IAM policy in template.yaml allows exactly what its code calls, no more and no less.

What the code needs is recorded, not listed by hand: every function's real handler runs its jobs against moto
(built from template.yaml) while every AWS call it makes is recorded as (IAM action, resource). To that come the
KMS calls AWS makes on the function's behalf for the encrypted resources it uses, and what the platform does with the
function's role (the SQS event source mapping, the on-failure destination). The template's policy statements are
read as (action, resource) pairs too, and the two sets must be equal: an action the code never makes, or a resource
wider than the one it uses, fails this test with the pair named.
"""

from __future__ import annotations

import contextvars
import json
import re
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.client import BaseClient
from pydantic import SecretStr
from relaydesk.accounts import Account, Brand
from relaydesk.addresses import lifecycle, rotation, state
from relaydesk.addresses.limits import set_limits
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.addresses.providers import LimitOverrides
from relaydesk.attachments.links import sign_link
from relaydesk.clock import utcnow
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.dkim import domains
from relaydesk.ids import new_id
from relaydesk.notification import Notification, NotificationKind
from relaydesk.store.s3 import S3Blobs
from relaydesk.tickets.model import Ticket

from local.aws_resources import load_template
from local.lambdas import LambdaContext, load, unload_all
from local.sqs_events import sqs_event
from tests.integration.relay_harness import FAST_SMTP
from tests.unit.api_client import http_event, jwt_authorizer

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
# Every function of the template, so a new one fails here until its jobs run below and its policy is written out.
FUNCTIONS = {name: Path(resource["Properties"]["CodeUri"]).name
             for name, resource in load_template(TEMPLATE)["Resources"].items()
             if resource["Type"] == "AWS::Serverless::Function"}
UPLOAD_KEY = re.compile(r"^attachments/(?P<account>[^/]+)/uploads/")
ROLES = ("TenantSecretsRole", "TenantUploadsRole")  # roles the code assumes (with session tags) to act for one account
ACCOUNT_TAG_VARIABLE = "${aws:PrincipalTag/relaydesk:account-id}"  # as a role's policy names the session's account
ACCOUNT = "A01LEASTPRIVILEGE1"
SUPPORT = "support@acme.test"
BASE_URL = "https://attachments.lambda-url.us-east-1.on.aws/"
CURRENT = contextvars.ContextVar("function", default=None)

# Encrypted with the stack's DataKey; AWS calls KMS with the caller's credentials when they are used (AWS docs:
# SQS SSE "producer: kms:GenerateDataKey and kms:Decrypt, consumer: kms:Decrypt"; S3 SSE-KMS; Secrets Manager).
KMS_FOR = {("sqs", "SendMessage"): {"kms:GenerateDataKey", "kms:Decrypt"},
           ("sqs", "ReceiveMessage"): {"kms:Decrypt"},
           ("s3", "GetObject"): {"kms:Decrypt"}, ("s3", "PutObject"): {"kms:GenerateDataKey"},
           ("secretsmanager", "GetSecretValue"): {"kms:Decrypt"},
           ("secretsmanager", "PutSecretValue"): {"kms:GenerateDataKey"},
           ("secretsmanager", "CreateSecret"): {"kms:GenerateDataKey"}}
IAM_NAME = {("s3", "HeadObject"): "s3:GetObject",  # HEAD is authorized as GetObject
            ("s3", "ListObjectsV2"): "s3:ListBucket", ("s3", "DeleteObjects"): "s3:DeleteObject",
            ("lambda", "Invoke"): "lambda:InvokeFunction",
            # SQS authorizes a batch as its single action (SQS Developer Guide, "Amazon SQS API permissions").
            ("sqs", "SendMessageBatch"): "sqs:SendMessage"}
UNENCRYPTED_BY_THE_DATA_KEY = ("ConsoleBucket",)  # SSE-S3: CloudFront's origin access control reads it
TRANSACT_ACTION = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
                   "ConditionCheck": "dynamodb:ConditionCheckItem"}  # what IAM checks for each part of a transaction
SERVICE_PREFIX = {"cognito-idp": "cognito-idp", "secretsmanager": "secretsmanager", "sts": "sts", "ses": "ses",
                  "sqs": "sqs", "s3": "s3", "dynamodb": "dynamodb", "lambda": "lambda"}


# --- recording ------------------------------------------------------------------------------------------------------

class Recorder:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names  # physical name or ARN -> the template's logical id
        self.needed: dict[str, set[tuple[str, str]]] = defaultdict(set)
        self.sessions: dict[str, str] = {}  # access key of an assumed role's session -> the role's logical id
        self.session_accounts: dict[str, str] = {}  # access key of a session -> the account it is tagged with

    def record(self, service: str, operation: str, params: dict, access_key: str | None = None) -> None:
        function = CURRENT.get()
        if function is None:
            return  # the test's own set-up
        function = self.sessions.get(access_key or "", function)  # a role session acts as its role
        pairs = self.actions(service, operation, params, self.session_accounts.get(access_key or ""))
        for action, resource in pairs:
            self.needed[function].add((action, resource))
        # Every queue, the raw mail bucket and every secret of the stack are encrypted with its DataKey.
        if not all(resource.startswith(UNENCRYPTED_BY_THE_DATA_KEY) for _, resource in pairs):
            self.needed[function] |= {(kms, "DataKey") for kms in KMS_FOR.get((service, operation), ())}

    def actions(self, service: str, operation: str, params: dict,
                session_account: str | None = None) -> list[tuple[str, str]]:
        if service == "dynamodb" and operation == "TransactWriteItems":
            return [(TRANSACT_ACTION[kind], self.names[item[kind]["TableName"]])
                    for item in params["TransactItems"] for kind in item]
        if service == "dynamodb" and operation in ("BatchGetItem", "BatchWriteItem"):  # authorized per table
            return [(f"dynamodb:{operation}", self.names[table]) for table in params["RequestItems"]]
        action = IAM_NAME.get((service, operation), f"{SERVICE_PREFIX[service]}:{operation}")
        pairs = [(action, self.resource(service, params, session_account))]
        if (service, operation) == ("secretsmanager", "CreateSecret") and params.get("Tags"):
            pairs.append(("secretsmanager:TagResource", pairs[0][1]))  # tags given at creation need it too
        if (service, operation) == ("sts", "AssumeRole") and params.get("Tags"):
            pairs.append(("sts:TagSession", self.resource(service, params)))
        if service == "ses" and params.get("ConfigurationSetName"):  # authorized on the set as well
            pairs.append((action, "ses:configuration-set"))
        return pairs

    def resource(self, service: str, params: dict, session_account: str | None = None) -> str:
        if service == "dynamodb":
            table = self.names[params["TableName"]]
            return f"{table}/index/{params['IndexName']}" if params.get("IndexName") else table
        if service == "s3":
            key = params.get("Key")
            if key is None:  # a call on the bucket itself (ListObjectsV2, DeleteObjects)
                return self.names[params["Bucket"]] + ("/*" if "Delete" in params else "")
            upload = UPLOAD_KEY.match(key)
            if upload and session_account is not None and upload["account"] == session_account:
                # the session's own account, which is what the role's policy variable allows
                return f"{self.names[params['Bucket']]}/attachments/{ACCOUNT_TAG_VARIABLE}/uploads/*"
            if upload:  # an agent's upload, under its account's uploads prefix
                return f"{self.names[params['Bucket']]}/attachments/*/uploads/*"
            return f"{self.names[params['Bucket']]}/{key.split('/', 1)[0] + '/' if '/' in key else ''}*"
        if service == "sqs":
            return self.names[params["QueueUrl"]]
        if service == "secretsmanager":
            secret = params.get("SecretId") or params.get("Name")
            if secret in self.names:
                return self.names[secret]
            name = re.sub(r"^arn:[^:]+:secretsmanager:[^:]*:[^:]*:secret:", "", secret)
            return "secret:" + name.split("/", 2)[0] + "/" + name.split("/", 2)[1] + "/*"
        if service == "sts":
            return self.names[params["RoleArn"]]
        if service == "ses":
            return "ses:identity"
        if service == "lambda":
            return self.names[params["FunctionName"]]
        if service == "cognito-idp":
            return "UserPool"
        raise AssertionError(f"no resource rule for {service}")


@pytest.fixture
def recorder(aws_stack_env, monkeypatch):
    """Every AWS call made while a function's handler runs, attributed to that function (its threads included)."""
    names = physical_names(aws_stack_env)
    recorder = Recorder(names)
    make_call = BaseClient._make_api_call

    def recording(client, operation, params):
        credentials = client._request_signer._credentials
        recorder.record(client.meta.service_model.service_name, operation, params,
                        credentials.access_key if credentials else None)
        reply = make_call(client, operation, params)
        if operation == "AssumeRole":
            key = reply["Credentials"]["AccessKeyId"]
            recorder.sessions[key] = recorder.names[params["RoleArn"]]
            tags = {tag["Key"]: tag["Value"] for tag in params.get("Tags", [])}
            if "relaydesk:account-id" in tags:
                recorder.session_accounts[key] = tags["relaydesk:account-id"]
        return reply

    submit = ThreadPoolExecutor.submit

    def submit_in_context(pool, fn, /, *args, **kwargs):  # the relay's smarthost threads act for the function too
        return submit(pool, contextvars.copy_context().run, fn, *args, **kwargs)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)
    monkeypatch.setattr(S3Blobs, "presigned_post", signing_uploads(recorder, S3Blobs.presigned_post))
    monkeypatch.setattr(ThreadPoolExecutor, "submit", submit_in_context)
    return recorder


def signing_uploads(recorder: Recorder, presigned_post):
    """A presigned POST makes no AWS call, but S3 authorizes the upload as the role that signed it: PutObject on the
    key, and the bucket's KMS key for the new object."""
    def signed(blobs, key, *args, **kwargs):
        credentials = blobs._client._request_signer._credentials
        recorder.record("s3", "PutObject", {"Bucket": blobs._bucket, "Key": key},
                        credentials.access_key if credentials else None)
        return presigned_post(blobs, key, *args, **kwargs)

    return signed


def physical_names(env: dict[str, str]) -> dict[str, str]:
    """What moto calls each resource -> its logical id in template.yaml."""
    names = {}
    for logical_id, resource in load_template(TEMPLATE)["Resources"].items():
        physical = "relaydesk-local-" + re.sub(r"(?<!^)(?=[A-Z])", "-", logical_id).lower()
        names[physical] = logical_id
        if resource["Type"] == "AWS::SQS::Queue":
            names[f"https://sqs.us-east-1.amazonaws.com/123456789012/{physical}"] = logical_id
            names[boto3.client("sqs").get_queue_url(QueueName=physical)["QueueUrl"]] = logical_id
    names[env["RELAYDESK_LINK_SIGNING_SECRET_ID"]] = "LinkSigningSecret"
    names[env["RELAYDESK_TENANT_SECRETS_ROLE_ARN"]] = "TenantSecretsRole"
    names[env["RELAYDESK_TENANT_UPLOADS_ROLE_ARN"]] = "TenantUploadsRole"
    names[OTHER_TABLE] = "OtherEnvironmentDirectoryTableArn"
    return names


def acting(function: str):
    class _Acting:
        def __enter__(self):
            self.token = CURRENT.set(function)

        def __exit__(self, *exc):
            CURRENT.reset(self.token)

    return _Acting()


# --- what the template allows ---------------------------------------------------------------------------------------

def template_resource(value) -> str:
    """A policy resource as the recorder names it."""
    template = load_template(TEMPLATE)
    if "Fn::If" in value:  # a conditional resource, as if its condition held
        return template_resource(value["Fn::If"][1])
    if "Fn::GetAtt" in value:
        return value["Fn::GetAtt"][0]
    if "Ref" in value:
        return value["Ref"]
    text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
    for name, variable in variables.items():
        mapping, top, second = variable["Fn::FindInMap"]
        text = text.replace("${" + name + "}", template["Mappings"][mapping][top][second])
    if ":secret:" in text:
        return "secret:" + text.rsplit(":secret:", 1)[1]
    if ":identity/" in text:
        return "ses:identity"
    if ":configuration-set/" in text:
        return "ses:configuration-set"
    text = text.replace("${!aws:", "${aws:")  # a policy variable, written escaped in Fn::Sub
    match = re.fullmatch(r"\$\{(\w+)(?:\.Arn)?\}(.*)", text)
    assert match, f"a resource this test cannot read: {text}"
    return match.group(1) + match.group(2)


def allowed(function: str) -> set[tuple[str, str]]:
    """A function's Policies, or a role's inline policies' documents."""
    pairs = set()
    for policy in load_template(TEMPLATE)["Resources"][function]["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            policy = policy["Fn::If"][1]
        policy = policy.get("PolicyDocument", policy)
        assert "Statement" in policy, f"{function}: a SAM policy template; write the statement out"
        for statement in policy["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            pairs |= {(action, template_resource(resource)) for action in actions for resource in resources}
    return pairs


def platform_needs(function: str) -> set[tuple[str, str]]:
    """What AWS does with the function's role besides its code: poll its SQS queue or read its DynamoDB stream,
    and send what failed to the on-failure queue (encrypted with the DataKey)."""
    pairs = set()
    for resource in load_template(TEMPLATE)["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] != "AWS::Lambda::EventSourceMapping" or props["FunctionName"] != {"Ref": function}:
            continue
        source, attribute = props["EventSourceArn"]["Fn::GetAtt"]
        if attribute == "StreamArn":
            pairs |= {(a, f"{source}/stream/*") for a in ("dynamodb:DescribeStream", "dynamodb:GetRecords",
                                                           "dynamodb:GetShardIterator", "dynamodb:ListStreams")}
        else:
            pairs |= {(a, source) for a in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")}
            pairs.add(("kms:Decrypt", "DataKey"))
        failure = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
        if failure:
            pairs |= {("sqs:SendMessage", failure["Fn::GetAtt"][0]), ("kms:GenerateDataKey", "DataKey"),
                      ("kms:Decrypt", "DataKey")}
    events = load_template(TEMPLATE)["Resources"][function]["Properties"].get("EventInvokeConfig") or {}
    if events.get("DestinationConfig", {}).get("OnFailure", {}).get("Type") == "SQS":
        pairs |= {("kms:GenerateDataKey", "DataKey"), ("kms:Decrypt", "DataKey")}  # SAM grants the SendMessage
    return pairs


# --- the jobs of each function --------------------------------------------------------------------------------------

OTHER_TABLE = "relaydesk-other-environment-directory"


@pytest.fixture
def world(recorder, aws_stack_env, monkeypatch, smarthost):
    from relaydesk.config import get_settings
    from relaydesk.outbound import dkim as outbound_dkim
    from relaydesk.wiring import aws_stores

    client = boto3.client("dynamodb")
    client.create_table(TableName=OTHER_TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk")],
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}])
    for name, value in {**FAST_SMTP, "RELAYDESK_ATTACHMENTS_BASE_URL": BASE_URL,
                        "RELAYDESK_OTHER_ENVIRONMENT_DIRECTORY_TABLE": OTHER_TABLE}.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws_stores.cache_clear()
    outbound_dkim.clear_cache()
    unload_all()
    stores = aws_stores()
    stores.directory.create_account(Account(account_id=ACCOUNT, subdomain="acme", name="Acme",
                                            brands=[Brand(brand_id="B1", name="Acme Help")]))
    stores.directory.create_address(SupportAddress(email="support@acme.mail.relaydesk.test", account_id=ACCOUNT,
                                                   kind=AddressKind.SYSTEM, is_default=True,
                                                   forwarding=Verification(status=VerificationStatus.VERIFIED)))
    yield stores
    for built in getattr(load("relay"), "_built", []):
        built[1].close()
    unload_all()


def invoke(function: str, event: dict):
    with acting(FUNCTIONS_BY_DIR[function]):
        return load(function).handler(event, LambdaContext(function_name=f"relaydesk-{function}",
                                                           timeout_seconds=60))


FUNCTIONS_BY_DIR = {directory: logical for logical, directory in FUNCTIONS.items()}


def connect(stores, smarthost, email: str) -> SupportAddress:
    credentials = SmtpCredentials(host="127.0.0.1", port=smarthost.port, tls_mode=TlsMode.STARTTLS,
                                  username=smarthost.username, password=smarthost.password,
                                  ca_bundle_pem=smarthost.ca_pem)
    secret = stores.secrets.create(f"{stores.settings.secret_prefix}{ACCOUNT}/{email}",
                                   credentials.to_secret_string(), {lifecycle.TAG_ACCOUNT: ACCOUNT})
    address = SupportAddress(email=email, account_id=ACCOUNT, brand_id="B1", kind=AddressKind.SMTP_CONNECTOR,
                             connector=Connector(host="127.0.0.1", port=smarthost.port, secret_arn=secret,
                                                 state=ConnectorState.ACTIVE),
                             forwarding=Verification(status=VerificationStatus.VERIFIED),
                             outbound=Verification(status=VerificationStatus.VERIFIED))
    stores.directory.create_address(address)
    return address


def ses_record(message_id: str) -> dict:
    event = json.loads((ROOT / "events" / "inbound_ses.json").read_text())
    event["Records"][0]["ses"]["mail"]["messageId"] = message_id
    event["Records"][0]["ses"]["receipt"]["recipients"] = ["support@acme.mail.relaydesk.test"]
    return event


def inbound_jobs(stores) -> Ticket:
    """A forwarded request with an attachment (ticket, attachment, notification, flood counter, ledger), then the
    forwarding verification mail of a new address (consumed; the address owned)."""
    raw = (ROOT / "tests" / "data" / "inbound" / "apple_mail_pdf_postfix_forward.eml").read_bytes()
    stores.blobs.put("inbound/mail-1", raw)
    result = invoke("inbound", ses_record("mail-1"))["results"][0]
    assert result["outcome"] == "new_ticket"
    ticket = stores.tickets.get_ticket(result["ticket_id"])
    reply = (f"From: {ticket.requester}\r\nTo: support@acme.test\r\nSubject: Re: {ticket.subject} "
             f"[RD#{ticket.ticket_id}]\r\nMessage-ID: <reply-1@example.net>\r\n"
             f"Date: Mon, 7 Dec 2026 10:00:00 +0000\r\n\r\nThank you!\r\n").encode()
    stores.blobs.put("inbound/mail-3", reply)
    assert invoke("inbound", ses_record("mail-3"))["results"][0]["outcome"] == "comment"
    lifecycle.add_forwarding_address(stores, ACCOUNT, "help@acme.test")
    sent = []
    from relaydesk.addresses import verification

    verification.start_forwarding(stores, ACCOUNT, "help@acme.test", sender=sent.append)
    stores.blobs.put("inbound/mail-2", sent[0].as_bytes())
    invoke("inbound", ses_record("mail-2"))
    assert stores.directory.owner_of("help@acme.test") == ACCOUNT
    return stores.tickets.get_ticket(result["ticket_id"])


def relay_batch(stores, *notifications: Notification, receive_count: int | None = None) -> dict:
    sqs = boto3.client("sqs")
    url = stores.settings.notifications_queue_url
    for notification in notifications:
        stores.queue.send(notification)
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                   AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
    for message in messages if receive_count else []:  # as if received that often (its last attempt)
        message["Attributes"]["ApproximateReceiveCount"] = str(receive_count)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    response = invoke("relay", sqs_event(messages, queue_arn=arn, region="us-east-1"))
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return response


def relay_jobs(stores, smarthost, ticket: Ticket, monkeypatch) -> None:
    """Through the connector (DKIM-signed, an attachment as a signed link), through SES, deferred by a 451, held by
    a refused password and released by the next secret version, and a refused verification mail noted."""
    address = connect(stores, smarthost, SUPPORT)
    domains.setup(stores, "acme.test")
    domains.set_signing(stores, "acme.test", True)
    account = stores.directory.get_account(ACCOUNT)
    attachment = ticket.comments[0].attachments[0]

    def notification(**overrides) -> Notification:
        values = dict(notification_id=new_id("N"), account_id=ACCOUNT, ticket_id=ticket.ticket_id,
                      support_address=SUPPORT, recipients=["jane@example.net"], subject="Printer jammed",
                      text_body="We are on it.")
        return Notification(**{**values, **overrides})

    attached = notification(attachments=[attachment])
    assert relay_batch(stores, attached)["batchItemFailures"] == []  # the file itself goes with it
    assert relay_batch(stores, attached)["batchItemFailures"] == []  # delivered twice by SQS: sent once
    account.settings.include_attachments_in_email = False  # now as the attachments function's signed links
    stores.directory.put_account(account)
    assert relay_batch(stores, notification(attachments=[attachment]))["batchItemFailures"] == []
    through_ses = notification(support_address="support@acme.mail.relaydesk.test")
    assert relay_batch(stores, through_ses)["batchItemFailures"] == []
    smarthost.faults.reply("MAIL", "451 4.3.0 Try again later", times=1)
    assert relay_batch(stores, notification())["batchItemFailures"]  # deferred: a visibility delay
    smarthost.faults.reply("MAIL", "451 4.3.0 Try again later", times=1)
    assert relay_batch(stores, notification(), receive_count=5)["batchItemFailures"] == []  # moved to the DLQ
    smarthost.faults.clear()
    load("relay")._built[0][1].pool.close()
    smarthost.set_password(smarthost.username, "changed-On-the-server-1")
    relay_batch(stores, notification())  # 535: held, parked
    held = stores.directory.get_account_address(ACCOUNT, SUPPORT)
    assert held.connector.state is ConnectorState.AUTH_FAILED
    new = SmtpCredentials.model_validate_json(stores.secrets.get(address.connector.secret_arn).value)
    stores.secrets.put_version(address.connector.secret_arn, new.model_copy(update={
        "password": SecretStr("changed-On-the-server-1")}).to_secret_string(), ["AWSCURRENT"])
    relay_batch(stores, notification())  # a new version: works, the hold is lifted and the parked one released
    relay_batch(stores)  # the released notification
    smarthost.faults.reply("RCPT", "550 5.7.1 Sending as this address is not allowed", times=1)
    relay_batch(stores, notification(kind=NotificationKind.VERIFICATION, recipients=[SUPPORT],
                                     verification_token="TOKEN0123456789"))
    # Its fifth attempt, four carried from earlier SQS messages: refused again, the relay moves it to the DLQ itself.
    smarthost.faults.reply("MAIL", "451 4.3.0 Try again later", times=1)
    boto3.client("sqs").send_message(QueueUrl=stores.settings.notifications_queue_url,
                                      MessageBody=notification().model_dump_json(), MessageGroupId=ACCOUNT,
                                      MessageAttributes={"relaydesk_attempts": {"DataType": "Number",
                                                                                "StringValue": "4"}})
    assert relay_batch(stores)["batchItemFailures"] == []
    # Over the mailbox's minute the second waits: queued again for its turn (the shaper's state in the counters table).
    set_limits(stores.directory, ACCOUNT, SUPPORT, overrides=LimitOverrides(messages_per_minute=1))
    assert relay_batch(stores, notification(), notification())["batchItemFailures"] == []
    set_limits(stores.directory, ACCOUNT, SUPPORT, reset=True)


def rotation_jobs(stores, smarthost, ticket: Ticket) -> None:
    """A refused password holds a notification; the rotation to the server's new one releases it at finishSecret."""
    address = stores.directory.get_account_address(ACCOUNT, SUPPORT)
    smarthost.set_password(smarthost.username, "rotated-Pa55word-2")
    load("relay")._built[0][1].pool.close()
    relay_batch(stores, Notification(notification_id=new_id("N"), account_id=ACCOUNT, ticket_id=ticket.ticket_id,
                                     support_address=SUPPORT, recipients=["jane@example.net"], subject="Held",
                                     text_body="Held until the rotation."))
    assert stores.held.list(SUPPORT)
    new = SmtpCredentials(host="127.0.0.1", port=smarthost.port, username=smarthost.username,
                          password="rotated-Pa55word-2", ca_bundle_pem=smarthost.ca_pem)
    token = rotation.stage_rotation(stores, ACCOUNT, SUPPORT, new, start=lambda *_: None)
    for step in rotation.Step:
        invoke("rotation", {"SecretId": address.connector.secret_arn, "ClientRequestToken": token,
                            "Step": step.value})


def attachment_jobs(stores, ticket: Ticket) -> None:
    key = ticket.comments[0].attachments[0].s3_key
    signing_key = stores.secrets.get(stores.settings.link_signing_secret_id).value.encode()
    token = sign_link(key, ACCOUNT, utcnow() + timedelta(days=1), signing_key)
    path = f"/{token}"
    event = {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": {},
             "requestContext": {"http": {"method": "GET", "path": path}}, "isBase64Encoded": False}
    assert invoke("attachments", event)["statusCode"] == 302


def api_jobs(stores, smarthost) -> None:
    """Every route of both APIs, a connector address deleted through each (its secret scheduled for deletion); the
    operator's is held with a notification parked behind it, which the deletion sends to the default outbound."""
    for email in ("leaving@acme.test", "going@acme.test"):
        connect(stores, smarthost, email)
    state.change(stores, ACCOUNT, "leaving@acme.test", state.Hold(state.HoldReason.CREDENTIALS, "auth_failed: ..."))
    stores.held.park("leaving@acme.test", Notification(
        notification_id=new_id("N"), account_id=ACCOUNT, support_address="leaving@acme.test",
        recipients=["jane@example.net"], subject="Parked", text_body="Parked behind the hold."))
    operator = [("GET", "/support_addresses", {"account_id": ACCOUNT}, None),
                ("POST", "/support_addresses", None, {"account_id": ACCOUNT, "email": "new@acme.test"}),
                ("GET", "/support_addresses/new%40acme.test", None, None),
                ("PUT", "/support_addresses/new%40acme.test", None, {"name": "New"}),
                ("DELETE", "/support_addresses/leaving%40acme.test", None, None)]
    for method, path, query, body in operator:
        assert invoke("addresses_api", http_event(method, path, query, body))["statusCode"] < 300, (method, path)
    claims = jwt_authorizer({"sub": "u1", "aud": "cli", "token_use": "id", "custom:account_id": ACCOUNT,
                             "cognito:groups": ["admin"], "exp": int(time.time()) + 3600})
    base = f"/accounts/{ACCOUNT}"
    tenant = [("GET", base, None), ("GET", f"{base}/support_addresses", None),
              ("POST", f"{base}/support_addresses", {"email": "newer@acme.test"}),
              ("GET", f"{base}/support_addresses/newer%40acme.test", None),
              ("PUT", f"{base}/support_addresses/newer%40acme.test", {"name": "Newer"}),
              ("DELETE", f"{base}/support_addresses/going%40acme.test", None)]
    for method, path, body in tenant:
        response = invoke("tenant_api", http_event(method, path, None, body, authorizer=claims))
        assert response["statusCode"] < 300, (method, path, response["body"])


def ticket_jobs(stores, ticket: Ticket) -> None:
    """Every ticket route of the tenant API as an agent: list (both indexes), show, upload a file through the form,
    reply with it, a note, solve, assign to a user of the account (the pool), CCs and followers in and out."""
    pool = stores.settings.user_pool_id
    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=pool, Username="tess@acme.test", MessageAction="SUPPRESS", UserAttributes=[
        {"Name": "email", "Value": "tess@acme.test"}, {"Name": "custom:account_id", "Value": ACCOUNT}])
    cognito.admin_add_user_to_group(UserPoolId=pool, Username="tess@acme.test", GroupName="agent")
    claims = jwt_authorizer({"sub": "u2", "aud": "cli", "token_use": "id", "custom:account_id": ACCOUNT,
                             "cognito:groups": ["agent"], "email": "bob@acme.test", "name": "Bob Agent",
                             "exp": int(time.time()) + 3600})
    base = f"/accounts/{ACCOUNT}/tickets"

    def call(method: str, path: str, body=None, query=None) -> dict:
        response = invoke("tenant_api", http_event(method, path, query, body, authorizer=claims))
        assert response["statusCode"] < 300, (method, path, response["body"])
        return json.loads(response["body"])

    call("GET", base)
    call("GET", base, query={"status": "new"})
    call("GET", f"{base}/{ticket.ticket_id}")
    call("GET", f"{base}/{ticket.ticket_id}/notifications")
    form = call("POST", f"{base}/{ticket.ticket_id}/uploads", {"filename": "quote.pdf",
                                                                 "content_type": "application/pdf", "size": 8})
    boto3.client("s3").put_object(Bucket=stores.settings.raw_mail_bucket, Key=form["key"], Body=b"%PDF-1.7",
                                  ContentType="application/pdf")  # what the browser's POST does
    call("POST", f"{base}/{ticket.ticket_id}/replies", {"body": "Attached.", "attachments": [form["key"]]})
    call("POST", f"{base}/{ticket.ticket_id}/notes", {"body": "Internal."})
    call("PUT", f"{base}/{ticket.ticket_id}/status", {"status": "solved"})
    call("PUT", f"{base}/{ticket.ticket_id}/assignee", {"assignee": "tess@acme.test"})
    for kind, address in (("ccs", "dave@example.org"), ("followers", "tess@acme.test")):
        call("POST", f"{base}/{ticket.ticket_id}/{kind}", {"addresses": [address]})
        call("DELETE", f"{base}/{ticket.ticket_id}/{kind}/{address.replace('@', '%40')}")


def alert_jobs(stores, ticket: Ticket) -> None:
    """An address goes on hold (its change record: the admins are mailed), the hourly and daily runs, the release;
    then SES reports a bounce and a complaint of Relaydesk's own mail (the recipients suppressed for the account)."""
    from relaydesk.alerts.contacts import change_admin_contacts

    change_admin_contacts(stores, ACCOUNT, add=["it@acme.test"], remove=())
    held = SupportAddress(email="held@acme.test", account_id=ACCOUNT, kind=AddressKind.SMTP_CONNECTOR,
                          last_error="auth_failed: refused (535 5.7.8). What to do: change the password.",
                          connector=Connector(host="smtp.acme.test", secret_arn="arn:x",
                                              state=ConnectorState.AUTH_FAILED, held_since=utcnow()))
    stores.directory.put_address(held)

    def changed() -> dict:
        keys = {"pk": {"S": "ADDRESS#held@acme.test"}, "sk": {"S": f"ACCOUNT#{ACCOUNT}"}}
        return {"Records": [{"eventID": new_id("E"), "eventName": "MODIFY", "eventSource": "aws:dynamodb",
                             "dynamodb": {"Keys": keys, "SequenceNumber": "1", "SizeBytes": 40,
                                          "StreamViewType": "KEYS_ONLY"}}]}

    assert invoke("hold_alerts", changed()) == {"batchItemFailures": []}
    invoke("hold_alerts", {"run": "remind"})
    invoke("hold_alerts", {"run": "sweep"})
    held.connector.state, held.connector.held_since = ConnectorState.ACTIVE, None
    stores.directory.put_address(held)
    invoke("hold_alerts", changed())  # the release
    # The acknowledgement inbound queued for the ticket: its Email-Id links back to the ticket.
    inbound_notification = stores.tickets.get_ticket(ticket.ticket_id).notifications[0].notification_id
    for kind in ("Bounce", "Complaint"):
        message = {"eventType": kind, "mail": {"messageId": "ses-1", "headers": [
            {"name": "X-Relaydesk-From-Account-Id", "value": ACCOUNT},
            {"name": "X-Relaydesk-Email-Id", "value": inbound_notification}]},
            "bounce": {"bounceType": "Permanent", "bouncedRecipients": [{"emailAddress": "gone@example.net"}]},
            "complaint": {"complainedRecipients": [{"emailAddress": "angry@example.net"}]}}
        invoke("ses_feedback", {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]})


def console_jobs(stores, smarthost, monkeypatch) -> None:
    """The admin console: its routes as the console's app client, the jobs they start (run here as the jobs
    function: a refused then a passing wizard, both verifications, a rotation), and the publisher's custom resource
    writing, then emptying, the console's bucket."""
    from botocore.exceptions import ClientError
    from relaydesk import console_site
    from relaydesk.config import get_settings
    from relaydesk.jobs import runner
    from relaydesk.store.secrets import SecretsManagerStore
    from relaydesk.wiring import _account_sessions, aws_stores

    from local.lambda_invoke import LocalLambda

    started: list[dict] = []
    monkeypatch.setattr("local.lambdas.invoke", lambda directory, event: started.append(event) or {})
    monkeypatch.setattr(runner, "VERIFY_WAIT_SECONDS", 0.2)  # nothing forwards here: the wait itself is not the point
    monkeypatch.setattr(runner, "ROTATION_WAIT_SECONDS", 0.2)
    api = LocalLambda({stores.settings.console_jobs_function: "console_jobs"}).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", api.url)
    # In AWS the jobs function starts Secrets Manager's rotation; the local stack's empty ARN rotates in process.
    monkeypatch.setenv("RELAYDESK_ROTATION_FUNCTION_ARN", "arn:aws:lambda:us-east-1:123456789012:function:rotation")
    start_rotation = SecretsManagerStore.start_rotation

    def start_as_aws_does(store, *args):  # moto looks the rotation Lambda up in its own Lambda, where there is none
        try:
            start_rotation(store, *args)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceNotFoundException":
                raise

    monkeypatch.setattr(SecretsManagerStore, "start_rotation", start_as_aws_does)
    get_settings.cache_clear()
    aws_stores.cache_clear()
    stores = aws_stores()
    lifecycle.add_forwarding_address(stores, ACCOUNT, "fwd@acme.test")
    password = "console-Pa55word-3"
    smarthost.set_password(smarthost.username, password)
    claims = jwt_authorizer({"sub": "u1", "aud": stores.settings.console_client_id, "token_use": "id",
                             "custom:account_id": ACCOUNT, "cognito:groups": ["admin"],
                             "exp": int(time.time()) + 3600})
    base = f"/accounts/{ACCOUNT}"
    wizard = {"email": "wizard@acme.test", "host": "127.0.0.1", "port": smarthost.port, "tls_mode": "starttls",
              "username": smarthost.username, "ca_bundle_pem": smarthost.ca_pem}

    def call(method: str, path: str, body=None, status: int = 200) -> dict:
        response = invoke("tenant_api", http_event(method, f"{base}{path}", None, body, authorizer=claims))
        assert response["statusCode"] < 300 or response["statusCode"] == status, (method, path, response["body"])
        assert api.wait_idle()  # an Event invocation answers 202 before its worker has recorded the event
        for event in started:
            _account_sessions.cache_clear()  # the jobs function is a Lambda of its own: it takes its own session
            invoke("console_jobs", event)
        started.clear()
        return json.loads(response["body"])

    with ThreadPoolExecutor(1):  # the jobs' live checks use the pool's context propagation
        call("POST", "/connections", {**wizard, "password": "wrong-" + password})
        job = call("POST", "/connections", {**wizard, "password": password})
        shown = call("GET", f"/jobs/{job['job_id']}")
        assert shown["status"] == "succeeded", (shown["summary"], shown["steps"])
        for email in ("fwd%40acme.test", "help%40acme.test"):  # forwarding through SES, outbound through SQS
            call("POST", f"/support_addresses/{email}/verification", {})
        rotated = call("POST", "/support_addresses/wizard%40acme.test/connector", {"password": password})
        assert "did not finish in time" in call("GET", f"/jobs/{rotated['job_id']}")["summary"]
    sqs = boto3.client("sqs")
    for account in (ACCOUNT, "A01OTHERACCOUNT000"):  # the account's dead letter, and another's it never moves
        sqs.send_message(QueueUrl=stores.settings.notifications_dlq_url, MessageBody=Notification(
            notification_id=new_id("N"), account_id=account, ticket_id="T1", support_address=SUPPORT,
            recipients=["jane@example.net"], subject="Dead", text_body="x").model_dump_json())
    routes = [("GET", "/providers", None), ("GET", "/support_addresses/support%40acme.test/details", None),
              ("POST", "/support_addresses/support%40acme.test/held/release", {}),
              ("POST", "/support_addresses/wizard%40acme.test/disable", {}),
              ("POST", "/support_addresses/wizard%40acme.test/enable", {}),
              ("GET", "/support_addresses/wizard%40acme.test/limits", None),
              ("PUT", "/support_addresses/wizard%40acme.test/limits", {"messages_per_minute": 10}),
              ("DELETE", "/support_addresses/wizard%40acme.test/limits", None),
              ("GET", "/dkim/acme.test", None), ("POST", "/dkim/acme.test", {}),
              ("PUT", "/dkim/acme.test", {"signing": True, "skip_dns_check": True}),
              ("GET", "/deliveries", None), ("GET", "/held_notifications", None), ("GET", "/dead_letters", None),
              ("POST", "/dead_letters/redrive", {"all": True}), ("GET", "/suspended_tickets", None),
              ("PUT", "/settings", {"include_attachments_in_email": True}), ("GET", "/users", None),
              ("POST", "/users", {"email": "ann@acme.test", "role": "agent"})]
    monkeypatch.setattr("relaydesk.api.console_routes.resolver_factory", lambda: (lambda name, rdtype: []))
    routes.append(("GET", "/dkim/acme.test/check", None))
    for method, path, body in routes:
        call(method, path, body)
    call("POST", "/users", {"email": "ann@acme.test", "role": "agent"}, status=409)  # the earlier user is looked at
    stores.tickets.create_ticket(Ticket(ticket_id="TSUSPENDED1", account_id=ACCOUNT, support_address=SUPPORT,
                                        subject="Fwd: x", requester="bob@acme.test", status="suspended"))
    stores.tickets.create_ticket(Ticket(ticket_id="TSUSPENDED2", account_id=ACCOUNT, support_address=SUPPORT,
                                        subject="Fwd: y", requester="bob@acme.test", status="suspended"))
    call("POST", "/suspended_tickets/TSUSPENDED1/recover", {})
    call("DELETE", "/suspended_tickets/TSUSPENDED2")
    api.stop()

    site = ROOT / "console" / "dist"
    event = {"ResourceProperties": {"Bucket": "relaydesk-local-console-bucket", "Config": {
        "region": "us-east-1", "userPoolId": "p", "clientId": "c", "apiUrl": "https://api.test/",
        "cognitoEndpoint": "https://cognito.test/"}}}
    with acting("ConsolePublisherFunction"):
        s3 = boto3.client("s3")
        assert console_site.handle({**event, "RequestType": "Create"}, s3, site)[0] == "SUCCESS"
        assert console_site.handle({**event, "RequestType": "Delete"}, s3, site)[0] == "SUCCESS"


def test_every_function_may_do_exactly_what_its_code_does(world, recorder, smarthost, monkeypatch):
    ticket = inbound_jobs(world)
    relay_jobs(world, smarthost, ticket, monkeypatch)
    rotation_jobs(world, smarthost, ticket)
    attachment_jobs(world, ticket)
    api_jobs(world, smarthost)
    ticket_jobs(world, ticket)
    alert_jobs(world, ticket)
    console_jobs(world, smarthost, monkeypatch)

    report = [f"{function} ran no job here: add its jobs to this test" for function in FUNCTIONS
              if not recorder.needed[function]]
    for function in [*FUNCTIONS, *ROLES]:
        needed = recorder.needed[function] | platform_needs(function)
        granted = allowed(function)
        if granted - needed:
            report.append(f"{function} may, but never does: {sorted(granted - needed)}")
        if needed - granted:
            report.append(f"{function} does, but may not: {sorted(needed - granted)}")
    assert not report, "\n".join(report)

