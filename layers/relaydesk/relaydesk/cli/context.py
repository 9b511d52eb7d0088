"""Finds the stack the CLI talks to: the environment when it names the resources (the local stack exports them),
else the outputs of the deployed CloudFormation stack named by --stack or samconfig.toml."""

from __future__ import annotations

import os
import tomllib
from argparse import Namespace
from pathlib import Path

from relaydesk.errors import ConfigurationError

# Stack output -> settings environment variable; template.yaml declares these outputs.
STACK_OUTPUTS = {
    "TicketsTableName": "RELAYDESK_TICKETS_TABLE",
    "DirectoryTableName": "RELAYDESK_DIRECTORY_TABLE",
    "IdempotencyTableName": "RELAYDESK_IDEMPOTENCY_TABLE",
    "CountersTableName": "RELAYDESK_COUNTERS_TABLE",
    "RawMailBucketName": "RELAYDESK_RAW_MAIL_BUCKET",
    "NotificationsQueueUrl": "RELAYDESK_NOTIFICATIONS_QUEUE_URL",
    "NotificationsDlqUrl": "RELAYDESK_NOTIFICATIONS_DLQ_URL",
    "InboundDlqUrl": "RELAYDESK_INBOUND_DLQ_URL",
    "MailDomain": "RELAYDESK_MAIL_DOMAIN",
    "Environment": "RELAYDESK_ENVIRONMENT",
    "ConnectorSecretPrefix": "RELAYDESK_SECRET_PREFIX",
    "ConnectorKmsKeyArn": "RELAYDESK_CONNECTOR_KMS_KEY_ID",
    "RotationFunctionArn": "RELAYDESK_ROTATION_FUNCTION_ARN",
    # A tenant user's CLI: where to sign in (`relaydesk login`) and which API to call.
    "TenantApiUrl": "RELAYDESK_TENANT_API_URL",
    "UserPoolId": "RELAYDESK_USER_POOL_ID",
    "CliClientId": "RELAYDESK_CLI_CLIENT_ID",
}


DEFAULT_ENVIRONMENT = "sandbox"  # without --env the CLI talks to the sandbox; production only when asked


def stack_name_from_samconfig(env: str | None, path: Path = Path("samconfig.toml")) -> str | None:
    if not path.exists():
        return None
    config = tomllib.loads(path.read_text())
    section = config.get(env or DEFAULT_ENVIRONMENT, {})
    return section.get("deploy", {}).get("parameters", {}).get("stack_name") or section.get(
        "global", {}).get("parameters", {}).get("stack_name")


def region_from_samconfig(env: str | None, path: Path = Path("samconfig.toml")) -> str | None:
    """The region the environment's stack is deployed in, as samconfig.toml names it."""
    if not path.exists():
        return None
    config = tomllib.loads(path.read_text())
    for section in (env or DEFAULT_ENVIRONMENT, "default"):
        for command in ("deploy", "global"):
            region = config.get(section, {}).get(command, {}).get("parameters", {}).get("region")
            if region:
                return region
    return None


def ensure_stack_environment(args: Namespace) -> None:
    """Fill the RELAYDESK_* variables from the stack's outputs unless the environment already names them."""
    if os.environ.get("RELAYDESK_TICKETS_TABLE"):
        return
    if not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        region = region_from_samconfig(getattr(args, "env", None))  # where the stack is; else the profile's
        if region:
            os.environ["AWS_DEFAULT_REGION"] = region
    stack = getattr(args, "stack", None) or stack_name_from_samconfig(getattr(args, "env", None))
    if not stack:
        raise ConfigurationError(
            "no stack to talk to",
            action="Start the local stack (`make up`, then source the env file it prints) or pass --stack NAME.")
    from relaydesk.wiring import aws_client

    outputs = aws_client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        variable = STACK_OUTPUTS.get(output["OutputKey"])
        if variable:
            os.environ[variable] = output["OutputValue"]


def load_stores(args: Namespace):
    """The AWS-backed stores for the stack this command talks to."""
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    ensure_stack_environment(args)
    get_settings.cache_clear()
    aws_stores.cache_clear()
    return aws_stores()


def peer_directory(current_stack: str | None, current_environment: str):
    """The directory of the OTHER environment's stack (sandbox <-> production) named in samconfig.toml, so that an
    address is never in both. Returns (label, DirectoryStore) or (label, None, reason) when it cannot be read."""
    from botocore.exceptions import BotoCoreError, ClientError

    from relaydesk.store.dynamodb import DynamoDirectory
    from relaydesk.wiring import aws_client

    other = "production" if current_environment == "sandbox" else "sandbox"
    stack = stack_name_from_samconfig(other)
    if not stack or stack == current_stack:
        return other, None, "no other environment in samconfig.toml"
    try:
        outputs = aws_client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
        table = next((o["OutputValue"] for o in outputs if o["OutputKey"] == "DirectoryTableName"), None)
        if not table:
            return other, None, f"stack {stack} has no DirectoryTableName output"
        import boto3  # cli/context.py may build adapters, like wiring.py

        directory = DynamoDirectory(boto3.session.Session().resource("dynamodb").Table(table))
        directory.owner_of("probe@relaydesk.invalid")  # fails now (access denied) rather than mid-rule
    except (ClientError, BotoCoreError) as error:
        return other, None, f"stack {stack} could not be read: {error}"
    return other, directory, ""
