"""Builds the AWS adapters once per container from the settings; handlers and the CLI ask here, tests hand in fakes."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from relaydesk.config import Settings, get_settings
from relaydesk.store.ports import DirectoryStore, SecretStore, Stores, UserDirectory


def other_environment(environment: str) -> str:
    return "production" if environment == "sandbox" else "sandbox"


def _peers(session: Any, dynamodb: Any, settings: Settings) -> tuple[tuple[str, DirectoryStore], ...]:
    """The other stack's directory table by name, or by ARN when it is in another account or region."""
    from relaydesk.store.peer_directory import PeerDirectory

    table = settings.other_environment_directory_table
    if not table:
        return ()
    region = table.split(":")[3] if table.startswith("arn:") else session.region_name  # DynamoDB is regional
    if region != session.region_name:
        dynamodb = session.resource("dynamodb", region_name=region)
    label = other_environment(settings.environment)
    return ((label, PeerDirectory(dynamodb.Table(table), label)),)


def _session() -> Any:
    import boto3  # the only place outside store/ that names boto3: it builds the adapters

    return boto3.session.Session()


@lru_cache(maxsize=1)
def aws_stores() -> Stores:
    from relaydesk.store.dynamodb import DynamoDirectory, DynamoTickets
    from relaydesk.store.held import DynamoHeld
    from relaydesk.store.hold_alerts import DynamoHoldAlerts
    from relaydesk.store.jobs import DynamoJobs, LambdaJobLauncher
    from relaydesk.store.s3 import S3Blobs
    from relaydesk.store.secrets import SecretsManagerStore
    from relaydesk.store.ses import SesRawOutbound
    from relaydesk.store.sqs import SqsNotificationQueue
    from relaydesk.store.sqs_dlq import SqsDeadLetters
    from relaydesk.store.suppressions import DynamoSuppressions

    settings = get_settings()
    session = _session()
    dynamodb = session.resource("dynamodb")
    sqs = session.client("sqs")
    return Stores(
        directory=DynamoDirectory(dynamodb.Table(settings.directory_table)),
        tickets=DynamoTickets(dynamodb.Table(settings.tickets_table)),
        blobs=S3Blobs(session.client("s3", config=_s3_config()), settings.raw_mail_bucket),
        secrets=SecretsManagerStore(session.client("secretsmanager"), settings.connector_kms_key_id or None),
        queue=SqsNotificationQueue(sqs, settings.notifications_queue_url),
        settings=settings,
        mailer=SesRawOutbound(session.client("ses"), settings.ses_configuration_set),
        held=DynamoHeld(dynamodb.Table(settings.directory_table)),
        peers=_peers(session, dynamodb, settings),
        jobs=DynamoJobs(dynamodb.Table(settings.directory_table)),
        # Clients only the tenant API and the jobs function use are made at their first call, not at every
        # function's cold start.
        launcher=LambdaJobLauncher(_lazy_client(session, "lambda"), settings.console_jobs_function)
        if settings.console_jobs_function else None,
        users=_users(session, settings),
        dead_letters=SqsDeadLetters(sqs, settings.notifications_dlq_url, settings.notifications_queue_url)
        if settings.notifications_dlq_url else None,
        hold_alerts=DynamoHoldAlerts(dynamodb.Table(settings.directory_table)),
        suppressions=DynamoSuppressions(dynamodb.Table(settings.directory_table)),
    )


def _s3_config() -> Any:
    """Signature Version 4: S3 refuses SigV2 (botocore's default for presigned POSTs) on buckets created since 2020 and
    for KMS-encrypted objects. In AWS, the bucket's own regional endpoint, so a browser's upload is not redirected;
    path style against a local endpoint (moto)."""
    from botocore.config import Config

    style = "path" if os.environ.get("AWS_ENDPOINT_URL") else "virtual"
    return Config(signature_version="s3v4", s3={"addressing_style": style})


def _lazy_client(session: Any, service: str) -> Any:
    """A function returning the service's client, made once at the first call."""
    from functools import cache

    return cache(lambda: session.client(service))


def _users(session: Any, settings: Settings) -> UserDirectory | None:
    from relaydesk.store.cognito_users import CognitoUsers

    return CognitoUsers(_lazy_client(session, "cognito-idp"), settings.user_pool_id) if settings.user_pool_id \
        else None


@lru_cache(maxsize=4)
def _account_sessions(role_arn: str, endpoint: str, service: str = "secretsmanager") -> Any:
    """Per role and endpoint (a test's moto server), so a warm container keeps its cached sessions."""
    from relaydesk.store.account_secrets import AccountSessions

    session = _session()
    if service == "s3":  # the uploads role's sessions sign forms that must stay valid as long as they say
        from relaydesk.store.account_uploads import UPLOAD_FORM_SECONDS

        return AccountSessions(session.client("sts"), role_arn,
                               lambda name, **keys: session.client(name, config=_s3_config(), **keys),
                               service="s3", renew_before=UPLOAD_FORM_SECONDS + 60)
    return AccountSessions(session.client("sts"), role_arn, session.client)


def tenant_stores(account_id: str) -> Stores:
    """The stores of one tenant request: connector secrets and upload forms through role sessions tagged with the
    caller's account (`store/account_secrets.py`, `store/account_uploads.py`), so that IAM refuses any other account's
    secret or uploads prefix."""
    from dataclasses import replace

    from relaydesk.store.account_secrets import AccountSecrets

    stores = aws_stores()
    settings = stores.settings
    endpoint = os.environ.get("AWS_ENDPOINT_URL", "")
    if settings.tenant_uploads_role_arn:
        from relaydesk.store.account_uploads import AccountUploads

        uploads = _account_sessions(settings.tenant_uploads_role_arn, endpoint, "s3")
        stores = replace(stores, blobs=AccountUploads(stores.blobs, uploads, account_id, settings.raw_mail_bucket))
    if not settings.tenant_secrets_role_arn:
        return stores
    sessions = _account_sessions(settings.tenant_secrets_role_arn, endpoint)
    return replace(stores, secrets=AccountSecrets(sessions, account_id, settings.connector_kms_key_id or None))


def aws_secrets() -> SecretStore:
    """Secrets Manager alone, for a function that needs nothing else (attachments): one client, not seven, at its
    first call. Not cached here: the caller keeps it for the container's life."""
    from relaydesk.store.secrets import SecretsManagerStore

    return SecretsManagerStore(_session().client("secretsmanager"), get_settings().connector_kms_key_id or None)


def aws_client(service: str) -> Any:
    return _session().client(service)
