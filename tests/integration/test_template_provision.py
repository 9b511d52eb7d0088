"""provision() builds in moto exactly what template.yaml declares: tables, queues, redrive, bucket, SES identity."""

from __future__ import annotations

import json

import boto3
import pytest

from local.aws_resources import load_template
from tests.fixtures_aws import TEMPLATE


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_template(TEMPLATE)["Resources"]


def _props(resources: dict, logical_id: str) -> dict:
    return resources[logical_id]["Properties"]


@pytest.mark.parametrize("logical_id, variable", [
    ("TicketsTable", "RELAYDESK_TICKETS_TABLE"),
    ("DirectoryTable", "RELAYDESK_DIRECTORY_TABLE"),
    ("IdempotencyTable", "RELAYDESK_IDEMPOTENCY_TABLE"),
    ("CountersTable", "RELAYDESK_COUNTERS_TABLE"),
])
def test_each_table_has_the_keys_indexes_ttl_and_backups_the_template_declares(aws_stack_env, resources, logical_id,
                                                                              variable):
    declared = _props(resources, logical_id)
    dynamodb = boto3.client("dynamodb")
    table = dynamodb.describe_table(TableName=aws_stack_env[variable])["Table"]

    assert table["KeySchema"] == declared["KeySchema"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {index["IndexName"]: index for index in table.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {gsi["IndexName"] for gsi in declared.get("GlobalSecondaryIndexes", [])}
    for gsi in declared.get("GlobalSecondaryIndexes", []):
        assert indexes[gsi["IndexName"]]["KeySchema"] == gsi["KeySchema"]
        assert indexes[gsi["IndexName"]]["Projection"]["ProjectionType"] == gsi["Projection"]["ProjectionType"]
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    if "TimeToLiveSpecification" in declared:
        assert ttl["TimeToLiveStatus"] == "ENABLED"
        assert ttl["AttributeName"] == declared["TimeToLiveSpecification"]["AttributeName"]
    else:
        assert ttl["TimeToLiveStatus"] == "DISABLED"
    backups = dynamodb.describe_continuous_backups(TableName=table["TableName"])["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_the_table_layout_is_the_one_the_dynamodb_adapters_use(aws_stack_env):
    dynamodb = boto3.client("dynamodb")
    tickets = dynamodb.describe_table(TableName=aws_stack_env["RELAYDESK_TICKETS_TABLE"])["Table"]
    idempotency = dynamodb.describe_table(TableName=aws_stack_env["RELAYDESK_IDEMPOTENCY_TABLE"])["Table"]
    counters = dynamodb.describe_table(TableName=aws_stack_env["RELAYDESK_COUNTERS_TABLE"])["Table"]

    assert [k["AttributeName"] for k in tickets["KeySchema"]] == ["pk", "sk"]
    assert tickets["GlobalSecondaryIndexes"][0]["IndexName"] == "gsi1"
    assert [k["AttributeName"] for k in idempotency["KeySchema"]] == ["id"]
    assert dynamodb.describe_time_to_live(TableName=idempotency["TableName"])[
        "TimeToLiveDescription"]["AttributeName"] == "expiration"
    assert dynamodb.describe_time_to_live(TableName=counters["TableName"])[
        "TimeToLiveDescription"]["AttributeName"] == "expires_at"


def test_notifications_queue_redrives_to_its_dlq_after_the_declared_receive_count(aws_stack_env, resources):
    declared = _props(resources, "NotificationsQueue")
    sqs = boto3.client("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=aws_stack_env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"],
                                     AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=aws_stack_env["RELAYDESK_NOTIFICATIONS_DLQ_URL"],
                                       AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    redrive = json.loads(queue["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq_arn
    assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
    assert int(queue["VisibilityTimeout"]) == declared["VisibilityTimeout"]
    assert queue["KmsMasterKeyId"]


def test_a_message_received_too_often_lands_in_the_notifications_dlq(aws_stack_env):
    sqs = boto3.client("sqs")
    queue_url = aws_stack_env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"]
    max_receives = int(json.loads(sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["RedrivePolicy"])[
        "Attributes"]["RedrivePolicy"])["maxReceiveCount"])
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}")

    for _ in range(max_receives):
        assert sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0)["Messages"]
    assert not sqs.receive_message(QueueUrl=queue_url, VisibilityTimeout=0).get("Messages")

    dead = sqs.receive_message(QueueUrl=aws_stack_env["RELAYDESK_NOTIFICATIONS_DLQ_URL"]).get("Messages", [])
    assert [message["Body"] for message in dead] == ["{}"]


def test_raw_mail_bucket_is_kms_encrypted_and_private(aws_stack_env):
    s3 = boto3.client("s3")
    bucket = aws_stack_env["RELAYDESK_RAW_MAIL_BUCKET"]

    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    key_arn = aws_stack_env["RELAYDESK_CONNECTOR_KMS_KEY_ID"]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == key_arn
    assert all(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"].values())


def test_ses_can_send_from_the_mail_domain_and_receives_into_the_bucket(aws_stack_env):
    ses = boto3.client("ses")
    domain = aws_stack_env["RELAYDESK_MAIL_DOMAIN"]

    ses.send_raw_email(Source=f"support@{domain}", Destinations=["someone@example.com"],
                       RawMessage={"Data": f"From: support@{domain}\r\nSubject: hi\r\n\r\nhello\r\n".encode()})

    active = ses.describe_active_receipt_rule_set()
    (rule,) = active["Rules"]
    assert set(rule["Recipients"]) == {domain, f".{domain}"}
    (s3_action,) = [action["S3Action"] for action in rule["Actions"] if "S3Action" in action]
    assert s3_action == {"BucketName": aws_stack_env["RELAYDESK_RAW_MAIL_BUCKET"], "ObjectKeyPrefix": "inbound/"}


def test_system_addresses_on_subdomains_of_the_mail_domain_may_send_through_ses_as_in_aws(aws_stack_env):
    ses = boto3.client("ses")
    system_address = f"support@acme.{aws_stack_env['RELAYDESK_MAIL_DOMAIN']}"

    ses.send_raw_email(Source=system_address, Destinations=["jane@example.net"],
                       RawMessage={"Data": f"From: {system_address}\r\nSubject: hi\r\n\r\nhello\r\n".encode()})

    with pytest.raises(ses.exceptions.MessageRejected):
        ses.send_raw_email(Source="support@acme.test", Destinations=["jane@example.net"],
                           RawMessage={"Data": b"From: support@acme.test\r\nSubject: hi\r\n\r\nhello\r\n"})


def test_the_environment_is_what_the_settings_model_and_the_cli_expect(aws_stack_env):
    from relaydesk.cli.context import STACK_OUTPUTS
    from relaydesk.config import get_settings

    settings = get_settings()
    assert settings.tickets_table == aws_stack_env["RELAYDESK_TICKETS_TABLE"]
    assert settings.mail_domain == "mail.relaydesk.test"
    assert settings.environment == "sandbox"
    assert settings.secret_prefix == "relaydesk/connector/"
    assert settings.max_delivery_attempts == 5
    # Every stack output the CLI reads is in the local environment, except the rotation function (no Lambda in moto)
    # and the tenant API's URL (the local stack serves that API itself and sets its URL when it starts).
    assert set(STACK_OUTPUTS.values()) - set(aws_stack_env) == {"RELAYDESK_ROTATION_FUNCTION_ARN",
                                                                "RELAYDESK_TENANT_API_URL"}


def test_aws_stack_stores_round_trip_through_moto(aws_stack):
    from relaydesk.notification import Notification

    aws_stack.blobs.put("inbound/abc", b"raw mail")
    aws_stack.queue.send(Notification(notification_id="n-1", account_id="a-1", support_address="support@acme.test",
                                      recipients=["jane@example.com"], subject="Hi", text_body="Hello"))

    assert aws_stack.blobs.get("inbound/abc") == b"raw mail"
    messages = boto3.client("sqs").receive_message(QueueUrl=aws_stack.settings.notifications_queue_url)["Messages"]
    assert Notification.model_validate_json(messages[0]["Body"]).notification_id == "n-1"


def test_parameters_override_the_mail_domain_and_environment():
    from moto import mock_aws

    from local.aws_resources import provision

    with mock_aws():
        env = provision(boto3.session.Session(), template_path=TEMPLATE, name_prefix="rd-prod",
                        parameters={"MailDomain": "mail.example.org", "Environment": "production"})
        identities = boto3.client("ses").list_identities()["Identities"]

    assert env["RELAYDESK_MAIL_DOMAIN"] == "mail.example.org"
    assert env["RELAYDESK_ENVIRONMENT"] == "production"
    assert env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert env["RELAYDESK_TICKETS_TABLE"].startswith("rd-prod-")
    assert "mail.example.org" in identities


@pytest.fixture
def moto_server(monkeypatch):
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    yield f"http://{host}:{port}"
    server.stop()


def test_provision_builds_the_same_stack_in_a_moto_server_as_the_local_stack_runs_it(moto_server):
    from local.aws_resources import provision

    env = provision(boto3.session.Session(), template_path=TEMPLATE)
    sqs = boto3.client("sqs")
    redrive = json.loads(sqs.get_queue_attributes(QueueUrl=env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"],
                                                  AttributeNames=["RedrivePolicy"])["Attributes"]["RedrivePolicy"])

    assert env["RELAYDESK_NOTIFICATIONS_QUEUE_URL"].startswith(moto_server)
    assert redrive["deadLetterTargetArn"].endswith(":relaydesk-local-notifications-dlq")
    assert boto3.client("ses").describe_active_receipt_rule_set()["Metadata"]["Name"] == "relaydesk-local-inbound"
