"""What an operator checks in template.yaml before deploying: retries, encryption, who may write, what each function
may touch, and that the CLI finds every output it needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.aws_resources import load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
DATA_SERVICES = ("dynamodb:", "s3:", "sqs:", "secretsmanager:", "kms:")
# SAM policy templates whose every statement is scoped to the one resource named by their parameter.
SCOPED_POLICY_TEMPLATES = {"DynamoDBCrudPolicy", "DynamoDBReadPolicy", "S3ReadPolicy", "S3CrudPolicy",
                           "SQSSendMessagePolicy", "SQSPollerPolicy"}


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def resources(template) -> dict:
    return template["Resources"]


def _of_type(resources: dict, resource_type: str) -> dict:
    return {name: res for name, res in resources.items() if res["Type"] == resource_type}


def _policies(function: dict) -> list[dict]:
    """The function's policies, a conditional one (`!If [condition, policy, !Ref AWS::NoValue]`) as if it held."""
    policies = []
    for policy in function["Properties"].get("Policies", []):
        if "Fn::If" in policy:
            _, policy, otherwise = policy["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}
        policies.append(policy)
    return policies


def _statements(function: dict) -> list[dict]:
    return [statement for policy in _policies(function) if "Statement" in policy
            for statement in policy["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _sub_text(value) -> str:
    """The text of a !Sub (either form), with a !FindInMap variable spelled out, so a test can read an ARN."""
    text, variables = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
    for name, variable in variables.items():
        mapping, top, second = variable["Fn::FindInMap"]
        text = text.replace("${" + name + "}", load_template(TEMPLATE)["Mappings"][mapping][top][second])
    return text


def _relay_mapping(resources: dict) -> dict:
    (mapping,) = [res["Properties"] for res in _of_type(resources, "AWS::Lambda::EventSourceMapping").values()
                  if res["Properties"]["FunctionName"] == {"Ref": "RelayFunction"}]
    return mapping


def test_notifications_visibility_timeout_outlasts_six_relay_timeouts_and_the_batching_window(template, resources):
    relay_timeout = resources["RelayFunction"]["Properties"].get("Timeout", template["Globals"]["Function"]["Timeout"])
    window = _relay_mapping(resources).get("MaximumBatchingWindowInSeconds", 0)

    assert resources["NotificationsQueue"]["Properties"]["VisibilityTimeout"] >= 6 * relay_timeout + window


def test_relay_reads_batches_of_ten_and_reports_only_the_failed_records(resources):
    mapping = _relay_mapping(resources)

    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["NotificationsQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert 0 < mapping["MaximumBatchingWindowInSeconds"] <= 5


def test_the_relay_knows_its_mappings_batching_window_so_a_waiting_notification_comes_back_in_time(template,
                                                                                                    resources):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    window = _relay_mapping(resources)["MaximumBatchingWindowInSeconds"]

    assert float(variables["RELAYDESK_RELAY_BATCHING_WINDOW_SECONDS"]) == window


def test_the_relay_moves_a_notification_after_its_last_attempt_and_sqs_redrive_is_only_the_backstop(template,
                                                                                                  resources):
    redrive = resources["NotificationsQueue"]["Properties"]["RedrivePolicy"]
    attempts = template["Globals"]["Function"]["Environment"]["Variables"]["RELAYDESK_MAX_DELIVERY_ATTEMPTS"]

    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotificationsDlq", "Arn"]}
    # Three receives past the last attempt: a stopped last attempt, the receive that finds its claim still held,
    # and one more try, before SQS moves it without the relay.
    assert redrive["maxReceiveCount"] == int(attempts) + 3


def test_the_relays_claim_outlasts_the_visibility_timeout_and_the_relays_own_life(template, resources):
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    claim = float(variables["RELAYDESK_RELAY_IN_PROGRESS_SECONDS"])
    queue = resources["NotificationsQueue"]["Properties"]

    assert claim > queue["VisibilityTimeout"] + resources["RelayFunction"]["Properties"]["Timeout"] - 1
    assert queue["VisibilityTimeout"] >= 6 * resources["RelayFunction"]["Properties"]["Timeout"]


def test_a_stored_outcome_outlives_every_copy_of_its_notification(template, resources):
    expiry = int(template["Globals"]["Function"]["Environment"]["Variables"]["RELAYDESK_IDEMPOTENCY_EXPIRY_SECONDS"])
    queue_retention = resources["NotificationsQueue"]["Properties"]["MessageRetentionPeriod"]
    dlq_retention = resources["NotificationsDlq"]["Properties"]["MessageRetentionPeriod"]

    # A copy can wait in the queue, then in the DLQ (whose retention counts from its move); `dlq redrive` checks
    # the stored outcome and the ticket before it sends one back.
    assert expiry >= queue_retention + dlq_retention
    assert resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expiration", "Enabled": True}


def test_every_table_has_point_in_time_recovery_encryption_and_on_demand_billing(resources):
    tables = _of_type(resources, "AWS::DynamoDB::Table")

    assert set(tables) == {"TicketsTable", "DirectoryTable", "IdempotencyTable", "CountersTable"}
    for name, table in tables.items():
        props = table["Properties"]
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}, name
        assert props["SSESpecification"]["SSEEnabled"] is True, name
        assert props["BillingMode"] == "PAY_PER_REQUEST", name


def test_tables_expire_idempotency_records_and_counters(resources):
    assert resources["IdempotencyTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expiration", "Enabled": True}
    assert resources["CountersTable"]["Properties"]["TimeToLiveSpecification"] == {
        "AttributeName": "expires_at", "Enabled": True}


def test_queues_and_raw_mail_bucket_are_encrypted_with_the_data_key(resources):
    for name in _of_type(resources, "AWS::SQS::Queue"):
        assert resources[name]["Properties"]["KmsMasterKeyId"] == {"Ref": "DataKey"}, name
    (rule,) = resources["RawMailBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]

    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                     "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]}}
    assert resources["DataKey"]["Properties"]["EnableKeyRotation"] is True
    assert all(resources["RawMailBucket"]["Properties"]["PublicAccessBlockConfiguration"].values())


def test_only_ses_of_this_account_may_write_raw_mail_and_only_under_inbound(resources):
    statements = resources["RawMailBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allows = [statement for statement in statements if statement["Effect"] == "Allow"]

    (allow,) = allows
    assert allow["Principal"] == {"Service": "ses.amazonaws.com"}
    assert allow["Action"] == "s3:PutObject"
    assert _sub_text(allow["Resource"]).endswith("/inbound/*")
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert ":receipt-rule-set/${InboundRuleSet}:" in _sub_text(allow["Condition"]["ArnLike"]["aws:SourceArn"])
    (deny,) = [statement for statement in statements if statement["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_receipt_rule_stores_the_raw_mail_then_invokes_inbound_asynchronously(resources):
    rule = resources["InboundReceiptRule"]["Properties"]["Rule"]
    store, invoke = rule["Actions"]

    assert store["S3Action"] == {"BucketName": {"Ref": "RawMailBucket"}, "ObjectKeyPrefix": "inbound/"}
    assert invoke["LambdaAction"] == {"FunctionArn": {"Fn::GetAtt": ["InboundFunction", "Arn"]},
                                      "InvocationType": "Event"}
    assert {"Ref": "MailDomain"} in rule["Recipients"]
    assert {"Fn::Sub": ".${MailDomain}"} in rule["Recipients"]  # support@<subdomain>.<MailDomain>
    assert rule["ScanEnabled"] is True  # the inbound function reads the spam and virus verdicts
    permission = resources["InboundSesPermission"]["Properties"]
    assert permission["Principal"] == "ses.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert set(resources["InboundReceiptRule"]["DependsOn"]) == {"RawMailBucketPolicy", "InboundSesPermission"}


def test_inbound_failures_reach_the_inbound_dlq_after_two_retries(resources):
    config = resources["InboundFunction"]["Properties"]["EventInvokeConfig"]

    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"] == {"Type": "SQS",
                                                        "Destination": {"Fn::GetAtt": ["InboundDlq", "Arn"]}}


def test_relay_reads_only_connector_and_dkim_secrets_and_the_link_signing_key(resources):
    secret_statements = {statement["Sid"]: statement for statement in _statements(resources["RelayFunction"])
                         if any(action.startswith("secretsmanager:") for action in _as_list(statement["Action"]))}

    assert set(secret_statements) == {"ReadOnlyConnectorAndDkimSecrets", "CheckTheConnectorSecretsVersion",
                                      "SignAttachmentLinks"}
    assert secret_statements["SignAttachmentLinks"]["Resource"] == {"Ref": "LinkSigningSecret"}
    read = secret_statements["ReadOnlyConnectorAndDkimSecrets"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    arns = sorted(_sub_text(resource) for resource in read["Resource"])
    assert [arn.rsplit(":secret:", 1)[1] for arn in arns] == ["relaydesk/connector/*", "relaydesk/dkim/*"]
    describe = secret_statements["CheckTheConnectorSecretsVersion"]
    assert _sub_text(describe["Resource"]).endswith(":secret:relaydesk/connector/*")
    actions = {a for s in secret_statements.values() for a in _as_list(s["Action"])}
    assert actions == {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}  # never a write


def test_rotation_changes_only_the_staging_of_connector_secrets(resources):
    (statement,) = [statement for statement in _statements(resources["RotationFunction"])
                    if any(action.startswith("secretsmanager:") for action in _as_list(statement["Action"]))]

    assert "secretsmanager:UpdateSecretVersionStage" in statement["Action"]
    assert not {"secretsmanager:DeleteSecret", "secretsmanager:CreateSecret", "secretsmanager:PutSecretValue"} & set(
        statement["Action"])  # the admin stages the new version; the function only tests and re-labels it
    assert _sub_text(statement["Resource"]).endswith(":secret:relaydesk/connector/*")
    # finishSecret releases the notifications held behind an auth_failed hold back to the queue.
    (release,) = [s for s in _statements(resources["RotationFunction"]) if s["Action"] == "sqs:SendMessage"]
    assert release["Resource"] == {"Fn::GetAtt": ["NotificationsQueue", "Arn"]}


def test_secrets_manager_may_invoke_the_rotation_function_of_this_account_only(resources):
    permission = resources["RotationPermission"]["Properties"]

    assert permission["FunctionName"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
    assert permission["Principal"] == "secretsmanager.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert _sub_text(permission["SourceArn"]).endswith(":secret:relaydesk/connector/*")


def test_no_function_may_touch_a_data_resource_through_a_wildcard(resources):
    for name, function in _of_type(resources, "AWS::Serverless::Function").items():
        # SAM's SQS/stream events attach AWS managed policies that allow reading every queue/stream ("*").
        event_types = {event["Type"] for event in function["Properties"].get("Events", {}).values()}
        assert not event_types & {"SQS", "DynamoDB", "Kinesis", "MSK", "MQ"}, name
        for statement in _statements(function):
            data_actions = [a for a in _as_list(statement["Action"]) if a.startswith(DATA_SERVICES) or a == "*"]
            if data_actions:
                assert "*" not in _as_list(statement["Resource"]), (name, statement.get("Sid"))
                assert all(isinstance(resource, dict) for resource in _as_list(statement["Resource"])), name
        for policy in _policies(function):
            if "Statement" not in policy:
                (template_name, parameters), = policy.items()
                assert template_name in SCOPED_POLICY_TEMPLATES, (name, template_name)
                assert all(isinstance(value, dict) for value in parameters.values()), (name, template_name)


def test_fallback_mail_goes_only_through_our_own_ses_identities(resources):
    (statement,) = [statement for statement in _statements(resources["RelayFunction"])
                    if statement["Action"] == "ses:SendRawEmail"]

    arns = [_sub_text(resource) for resource in statement["Resource"] if "Fn::Sub" in resource]
    identities = [arn.rsplit(":identity/", 1)[1] for arn in arns if ":identity/" in arn]
    assert identities == ["${MailDomain}", "*.${MailDomain}"]
    # and only through the stack's configuration set, whose bounces and complaints come back (docs/OPERATIONS.md)
    assert [arn for arn in arns if ":identity/" not in arn] == [
        "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:configuration-set/${OutboundConfigurationSet}"]
    (optional,) = [resource for resource in statement["Resource"] if "Fn::If" in resource]
    assert optional["Fn::If"][0] == "HasDefaultFromDomain"


def test_addresses_api_requires_iam_auth_on_every_route(resources):
    auth = resources["AddressesApi"]["Properties"]["Auth"]
    events = resources["AddressesApiFunction"]["Properties"]["Events"].values()

    assert auth["DefaultAuthorizer"] == "AWS_IAM"
    assert auth["EnableIamAuthorizer"] is True
    assert {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in events} == {
        ("GET", "/support_addresses"), ("POST", "/support_addresses"), ("GET", "/support_addresses/{id}"),
        ("PUT", "/support_addresses/{id}"), ("DELETE", "/support_addresses/{id}")}
    assert all(e["Type"] == "HttpApi" and e["Properties"]["ApiId"] == {"Ref": "AddressesApi"} for e in events)
    assert all("Auth" not in e["Properties"] for e in events)  # no route opts out of IAM


def test_each_function_runs_its_handler_on_python_311_with_the_relaydesk_layer(template, resources):
    function_globals = template["Globals"]["Function"]
    functions = _of_type(resources, "AWS::Serverless::Function")

    assert function_globals["Runtime"] == "python3.11"
    assert function_globals["Handler"] == "app.handler"
    assert function_globals["Tracing"] == "Active"
    assert function_globals["Layers"] == [{"Ref": "RelaydeskLayer"}]
    assert {f["Properties"]["CodeUri"] for f in functions.values()} == {
        "functions/inbound/", "functions/relay/", "functions/rotation/", "functions/addresses_api/",
        "functions/attachments/", "functions/hold_alerts/", "functions/ses_feedback/", "functions/tenant_api/",
        "functions/console_jobs/", "console/dist/"}
    # The console's publisher: its package is the built console, its handler in the layer.
    publisher = functions["ConsolePublisherFunction"]["Properties"]
    assert (publisher["CodeUri"], publisher["Handler"]) == ("console/dist/", "relaydesk.console_site.handler")
    assert all("Handler" not in f["Properties"] for name, f in functions.items() if name != "ConsolePublisherFunction")
    layer = resources["RelaydeskLayer"]
    assert layer["Properties"]["ContentUri"] == "layers/relaydesk/"
    assert layer["Metadata"]["BuildMethod"] == "python3.11"
    assert (TEMPLATE.parent / "layers/relaydesk/requirements.txt").exists()


def test_functions_receive_every_setting_the_settings_model_requires(template):
    from relaydesk.config import Settings

    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    required = {f"RELAYDESK_{name.upper()}" for name, field in Settings.model_fields.items() if field.is_required()}
    known = {f"RELAYDESK_{name.upper()}" for name in Settings.model_fields}

    assert required <= set(variables)
    assert {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_LOG_LEVEL"} <= set(variables)
    # Anything else RELAYDESK_* is a typo the settings model would silently ignore.
    assert {name for name in variables if name.startswith("RELAYDESK_")} - known <= {"RELAYDESK_DKIM_SECRET_PREFIX"}


def test_outputs_cover_everything_the_cli_reads_from_the_stack(template):
    from relaydesk.cli.context import STACK_OUTPUTS

    assert set(STACK_OUTPUTS) <= set(template["Outputs"])
    assert "ApiUrl" in template["Outputs"]


def test_environment_and_mail_domain_are_parameters(template):
    parameters = template["Parameters"]

    assert parameters["Environment"]["AllowedValues"] == ["sandbox", "production"]
    assert "MailDomain" in parameters


def test_the_local_stack_runs_each_function_with_the_template_timeouts_and_retries(template, resources):
    from local.aws_resources import function_settings, receipt_s3_prefix

    settings = function_settings(TEMPLATE)

    assert set(settings) == {"inbound", "relay", "rotation", "addresses_api", "attachments", "hold_alerts",
                             "ses_feedback", "tenant_api", "console_jobs", "dist"}
    assert settings["console_jobs"]["MaximumRetryAttempts"] == 0  # a failed job is recorded, never run twice
    assert settings["relay"]["Timeout"] == resources["RelayFunction"]["Properties"]["Timeout"]
    assert settings["addresses_api"]["Timeout"] == resources["AddressesApiFunction"]["Properties"]["Timeout"]
    assert settings["addresses_api"]["MemorySize"] == template["Globals"]["Function"]["MemorySize"]  # from Globals
    assert settings["inbound"]["MaximumRetryAttempts"] == 2
    assert receipt_s3_prefix(TEMPLATE) == "inbound/"


def test_inbound_reads_raw_mail_and_writes_only_attachments_so_raw_mail_is_never_deleted(resources):
    s3 = {(action, _sub_text(statement["Resource"]).rsplit("}", 1)[1])
          for statement in _statements(resources["InboundFunction"])
          for action in _as_list(statement["Action"]) if action.startswith("s3:")}

    assert s3 == {("s3:GetObject", "/inbound/*"), ("s3:PutObject", "/attachments/*")}
    assert all("Statement" in policy for policy in _policies(resources["InboundFunction"]))  # no S3CrudPolicy


def test_the_relay_reads_attachments_never_raw_mail_and_only_sends_to_the_dlq_and_shapes_in_the_counters(resources):
    statements = _statements(resources["RelayFunction"])
    s3 = [s for s in statements if any(a.startswith("s3:") for a in _as_list(s["Action"]))]
    on = {json.dumps(s["Resource"]): _as_list(s["Action"]) for s in statements}

    assert [(s["Action"], s["Resource"]) for s in s3] == [
        ("s3:GetObject", {"Fn::Sub": "${RawMailBucket.Arn}/attachments/*"})]
    # The relay moves a notification out of attempts itself (docs/DELIVERY.md); it never reads or deletes there.
    assert on[json.dumps({"Fn::GetAtt": ["NotificationsDlq", "Arn"]})] == ["sqs:SendMessage"]
    # the counters table: the mailboxes' sending limits, one item each, read and replaced whole
    assert on[json.dumps({"Fn::GetAtt": ["CountersTable", "Arn"]})] == ["dynamodb:GetItem", "dynamodb:PutItem"]


def test_the_attachments_url_has_reserved_concurrency_by_default(template, resources):
    function = resources["AttachmentsFunction"]["Properties"]

    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasAttachmentsConcurrency", {"Ref": "AttachmentsConcurrency"}, {"Ref": "AWS::NoValue"}]}
    assert 0 < template["Parameters"]["AttachmentsConcurrency"]["Default"] <= 10


def _snake_to_api(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def test_the_admin_policy_allows_every_secrets_manager_call_the_cli_makes_and_nothing_unscoped(resources):
    import re

    adapter = (TEMPLATE.parent / "layers/relaydesk/relaydesk/store/secrets.py").read_text()
    calls = {f"secretsmanager:{_snake_to_api(m)}" for m in re.findall(r"self\._client\.(\w+)\(", adapter)}
    statements = resources["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    allowed = {action for statement in statements for action in _as_list(statement["Action"])}
    assert calls and calls <= allowed, calls - allowed
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "*" not in _as_list(statement["Resource"]), statement["Sid"]
        assert all(isinstance(resource, dict) for resource in _as_list(statement["Resource"])), statement["Sid"]


def test_the_admin_policy_allows_every_user_pool_call_the_cli_makes_on_the_pool_only(resources):
    import re

    adapter = (TEMPLATE.parent / "layers/relaydesk/relaydesk/store/cognito.py").read_text()
    users = adapter[adapter.index("class CognitoUsers"):]
    calls = {f"cognito-idp:{_snake_to_api(m)}" for m in re.findall(r"self\._client\.(\w+)\(", users)}
    statements = resources["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (pool,) = [s for s in statements if any(a.startswith("cognito-idp:") for a in _as_list(s["Action"]))]

    assert calls and set(pool["Action"]) == calls
    assert pool["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}


def test_the_attachments_function_url_is_the_only_entry_without_authentication(resources):
    functions = _of_type(resources, "AWS::Serverless::Function")
    urls = {name: f["Properties"]["FunctionUrlConfig"] for name, f in functions.items()
            if "FunctionUrlConfig" in f["Properties"]}

    assert urls == {"AttachmentsFunction": {"AuthType": "NONE"}}  # the signed token is the authorization
    assert not _of_type(resources, "AWS::Lambda::Url")
    assert not _of_type(resources, "AWS::Serverless::Api")
    apis = _of_type(resources, "AWS::Serverless::HttpApi")
    assert {name: api["Properties"]["Auth"]["DefaultAuthorizer"] for name, api in apis.items()} == {
        "AddressesApi": "AWS_IAM", "TenantApi": "UserPoolIdToken"}
    for function in _of_type(resources, "AWS::Serverless::Function").values():
        for event in function["Properties"].get("Events", {}).values():
            assert "Auth" not in event.get("Properties", {})  # no route opts out of its API's authorizer
    public = [res for res in _of_type(resources, "AWS::Lambda::Permission").values()
              if res["Properties"]["Principal"] == "*"]
    assert not public  # SAM adds the URL's own public permissions; nothing else is invocable by anyone


def test_the_attachments_function_reads_only_attachments_and_the_link_signing_key(resources):
    function = resources["AttachmentsFunction"]["Properties"]
    statements = _statements(resources["AttachmentsFunction"])
    actions = {action for statement in statements for action in _as_list(statement["Action"])}

    assert all("Statement" in policy for policy in function["Policies"])  # no broad SAM policy template
    assert actions == {"s3:GetObject", "secretsmanager:GetSecretValue", "kms:Decrypt"}
    (s3,) = [s for s in statements if s["Action"] == "s3:GetObject"]
    assert s3["Resource"] == {"Fn::Sub": "${RawMailBucket.Arn}/attachments/*"}  # never raw mail under inbound/
    (secret,) = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert secret["Resource"] == {"Ref": "LinkSigningSecret"}
    (kms,) = [s for s in statements if s["Action"] == "kms:Decrypt"]
    assert kms["Resource"] == {"Fn::GetAtt": ["DataKey", "Arn"]}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "AttachmentsLogGroup"}}
    assert function["Environment"]["Variables"]["RELAYDESK_LINK_SIGNING_SECRET_ID"] == {"Ref": "LinkSigningSecret"}


def test_the_link_signing_key_is_generated_per_stack_under_its_prefix_and_encrypted(template, resources):
    secret = resources["LinkSigningSecret"]["Properties"]

    assert secret["GenerateSecretString"]["PasswordLength"] >= 32  # an HMAC-SHA256 key at least as long as a hash
    assert "SecretString" not in secret  # never a value written in the template
    assert _sub_text(secret["Name"]).startswith(template["Mappings"]["Secrets"]["Prefix"]["Links"])
    assert "${AWS::StackName}" in _sub_text(secret["Name"])
    assert secret["KmsKeyId"] == {"Fn::GetAtt": ["DataKey", "Arn"]}


def test_the_relay_links_attachments_to_the_attachments_function_and_the_operator_sees_its_url(template, resources):
    variables = resources["RelayFunction"]["Properties"]["Environment"]["Variables"]

    assert variables["RELAYDESK_ATTACHMENTS_BASE_URL"] == {"Fn::GetAtt": ["AttachmentsFunctionUrl", "FunctionUrl"]}
    assert variables["RELAYDESK_LINK_SIGNING_SECRET_ID"] == {"Ref": "LinkSigningSecret"}
    assert template["Outputs"]["AttachmentsBaseUrl"]["Value"] == {
        "Fn::GetAtt": ["AttachmentsFunctionUrl", "FunctionUrl"]}
    assert int(template["Globals"]["Function"]["Environment"]["Variables"]["RELAYDESK_ATTACHMENT_LINK_DAYS"]) >= 7


def test_the_admin_may_revoke_every_attachment_link_by_putting_a_new_signing_key_and_nothing_more(resources):
    statements = resources["AdminPolicy"]["Properties"]["PolicyDocument"]["Statement"]

    on_signing_key = [s for s in statements if {"Ref": "LinkSigningSecret"} in _as_list(s["Resource"])]
    assert [(s["Action"], s["Resource"]) for s in on_signing_key] == [
        ("secretsmanager:PutSecretValue", {"Ref": "LinkSigningSecret"})]  # never read: a reader could forge links


# --- the other environment's directory (sandbox <-> production uniqueness, read by the API) ----------------------

OTHER_DIRECTORY = "OtherEnvironmentDirectoryTableArn"
READ_ACTIONS = {"dynamodb:GetItem", "dynamodb:Query"}


def _mentions(value, name: str) -> bool:
    """Whether `value` refers to the parameter `name` anywhere (Ref, or ${name} in a !Sub)."""
    if isinstance(value, dict):
        return any(_mentions(item, name) for item in value.values()) or value.get("Ref") == name
    if isinstance(value, list):
        return any(_mentions(item, name) for item in value)
    return isinstance(value, str) and "${" + name + "}" in value


def test_the_other_environments_directory_is_an_optional_arn_parameter_the_other_stack_outputs(template):
    import re

    parameter = template["Parameters"][OTHER_DIRECTORY]
    pattern = re.compile(parameter["AllowedPattern"])

    assert parameter["Default"] == ""
    assert template["Conditions"]["HasOtherEnvironmentDirectory"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": OTHER_DIRECTORY}, ""]}]}
    assert pattern.fullmatch("") and pattern.fullmatch(
        "arn:aws:dynamodb:eu-west-1:123456789012:table/relaydesk-production-DirectoryTable-1AB2C3")
    assert not pattern.fullmatch("relaydesk-production-DirectoryTable-1AB2C3")  # a name: the account is unknown
    assert not pattern.fullmatch("arn:aws:dynamodb:eu-west-1:123456789012:table/*")
    assert template["Outputs"]["DirectoryTableArn"]["Value"] == {"Fn::GetAtt": ["DirectoryTable", "Arn"]}


@pytest.mark.parametrize("function", ["AddressesApiFunction", "TenantApiFunction", "InboundFunction"])
def test_who_checks_uniqueness_reads_one_item_of_the_other_environments_directory_only_when_it_is_named(
        resources, function):
    props = resources[function]["Properties"]
    (conditional,) = [policy for policy in props["Policies"] if "Fn::If" in policy]
    condition, policy, otherwise = conditional["Fn::If"]
    (statement,) = policy["Statement"]

    assert condition == "HasOtherEnvironmentDirectory" and otherwise == {"Ref": "AWS::NoValue"}
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "dynamodb:GetItem"
    assert statement["Resource"] == {"Ref": OTHER_DIRECTORY}
    assert props["Environment"]["Variables"]["RELAYDESK_OTHER_ENVIRONMENT_DIRECTORY_TABLE"] == {
        "Ref": OTHER_DIRECTORY}


def test_the_api_may_not_write_the_other_environments_directory(resources):
    statements = [statement for statement in _statements(resources["AddressesApiFunction"])
                  if _mentions(statement["Resource"], OTHER_DIRECTORY)]

    assert statements
    for statement in statements:
        assert set(_as_list(statement["Action"])) <= READ_ACTIONS, statement.get("Sid")
    templates = [policy for policy in _policies(resources["AddressesApiFunction"]) if "Statement" not in policy]
    assert not _mentions(templates, OTHER_DIRECTORY)  # no CRUD policy template names it


def test_nothing_but_the_uniqueness_checks_gain_access_to_the_other_environments_directory(resources):
    for name, resource in resources.items():
        if name in ("AddressesApiFunction", "TenantApiFunction", "InboundFunction", "ConsoleJobsFunction"):
            continue
        assert not _mentions(resource, OTHER_DIRECTORY), name  # other functions, the admin policy, the tables
