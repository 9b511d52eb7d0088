"""Builds the AWS adapters once per container from the settings; handlers and the CLI ask here, tests hand in fakes."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from relaydesk.config import Settings, get_settings
from relaydesk.store.ports import (
    BlobStore,
    DirectoryStore,
    HeldNotifications,
    NotificationQueue,
    RawMailSender,
    SecretStore,
    TicketStore,
)


@dataclass(frozen=True)
class Stores:
    directory: DirectoryStore
    tickets: TicketStore
    blobs: BlobStore
    secrets: SecretStore
    queue: NotificationQueue
    settings: Settings
    # The relay's: the default outbound (SES) and notifications held behind an auth_failed hold.
    mailer: RawMailSender | None = None
    held: HeldNotifications | None = None
    # The API's: the other environment's directory (sandbox <-> production), labelled, for the uniqueness rule.
    peers: tuple[tuple[str, DirectoryStore], ...] = ()


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
    from relaydesk.store.s3 import S3Blobs
    from relaydesk.store.secrets import SecretsManagerStore
    from relaydesk.store.ses import SesRawOutbound
    from relaydesk.store.sqs import SqsNotificationQueue

    settings = get_settings()
    session = _session()
    dynamodb = session.resource("dynamodb")
    return Stores(
        directory=DynamoDirectory(dynamodb.Table(settings.directory_table)),
        tickets=DynamoTickets(dynamodb.Table(settings.tickets_table)),
        blobs=S3Blobs(session.client("s3"), settings.raw_mail_bucket),
        secrets=SecretsManagerStore(session.client("secretsmanager"), settings.connector_kms_key_id or None),
        queue=SqsNotificationQueue(session.client("sqs"), settings.notifications_queue_url,
                                   settings.notifications_dlq_url),
        settings=settings,
        mailer=SesRawOutbound(session.client("ses"), settings.ses_configuration_set),
        held=DynamoHeld(dynamodb.Table(settings.directory_table)),
        peers=_peers(session, dynamodb, settings),
    )


def aws_secrets() -> SecretStore:
    """Secrets Manager alone, for a function that needs nothing else (attachments): one client, not seven, at its
    first call. Not cached here: the caller keeps it for the container's life."""
    from relaydesk.store.secrets import SecretsManagerStore

    return SecretsManagerStore(_session().client("secretsmanager"), get_settings().connector_kms_key_id or None)


def aws_shaper_states() -> Any:
    """The relay's per-mailbox sending-limit state in the counters table (a client: thread-safe)."""
    from relaydesk.store.shaper_dynamodb import DynamoShaperStates

    return DynamoShaperStates(_session().client("dynamodb"), get_settings().counters_table)


def aws_client(service: str) -> Any:
    return _session().client(service)
