"""Notifications queue -> the customer's smarthost (or the default outbound), exactly once, outcome on the ticket."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.outbound.batch import relay_event
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.relay import Relay
from relaydesk.outbound.result import RecordResult
from relaydesk.outbound.shaper import Shaper
from relaydesk.store.dynamodb import DynamoTickets
from relaydesk.store.once_dynamodb import dynamo_once
from relaydesk.store.outcome_writes import DynamoOutcomeWrites
from relaydesk.store.ports import NotificationDeadLetters, Stores
from relaydesk.store.ses import is_sending_paused
from relaydesk.store.sqs_retry import SqsRetryDelay
from relaydesk.wiring import aws_client, aws_shaper_states, aws_stores

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])  # patch_all would import requests & co. at cold start

_built: list[tuple[Stores, Relay, SqsRetryDelay, NotificationDeadLetters | None]] = []


def observe(result: RecordResult) -> None:
    """One log line and the metrics per record: ids, address, outcome and the server's words; never a secret."""
    notification = result.notification
    outcome = result.result.outcome.value
    logger.info("notification relayed", extra={
        "notification_id": notification.notification_id if notification else None,
        "ticket_id": notification.ticket_id if notification else None,
        "address": notification.support_address if notification else None,
        "sqs_message_id": result.message_id, "receive_count": result.receive_count,
        "outcome": outcome, "route": result.result.route, "smtp_code": result.result.smtp_code,
        "enhanced_status": result.result.enhanced_status, "reply": result.result.reply,
        "duplicate": result.result.duplicate, "retry_in": result.retry_in, "last_attempt": result.last_attempt})
    metrics.add_metric(name=outcome, unit=MetricUnit.Count, value=1)
    if result.result.route == "ses" and is_sending_paused(result.result.reply):
        metrics.add_metric(name="ses_sending_paused", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="latency", unit=MetricUnit.Milliseconds, value=result.latency_ms)


def services(stores: Stores) -> tuple[Relay, SqsRetryDelay, NotificationDeadLetters | None]:
    """Built once per warm container (and again for other Stores, as tests make): the credential cache, the pool
    of authenticated smarthost connections and any outcome not stored yet live here."""
    if not _built or _built[0][0] is not stores:
        if _built:
            _built[0][1].close()  # the pooled connections belong to the old stores' relay
        settings = stores.settings
        once = dynamo_once(settings.idempotency_table, in_progress_seconds=settings.relay_in_progress_seconds,
                           expiry_seconds=settings.idempotency_expiry_seconds)
        # The outcome and its ticket record in one TransactWriteItems where the tickets are DynamoDB's.
        writes = DynamoOutcomeWrites(once, stores.tickets) if isinstance(stores.tickets, DynamoTickets) else None
        relay = Relay(stores, credentials=CredentialCache(stores.secrets, settings.credentials_cache_seconds),
                      once=once, on_result=observe, shaper=Shaper(aws_shaper_states()), outcome_writes=writes)
        _built[:] = [(stores, relay, SqsRetryDelay(aws_client("sqs"), settings.notifications_queue_url),
                      stores.dead_letters)]
    return _built[0][1:]


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    relay, retry, dead_letters = services(aws_stores())
    return relay_event(relay, event, retry, context.get_remaining_time_in_millis, dead_letters)
