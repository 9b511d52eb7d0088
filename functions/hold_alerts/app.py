"""Hold alerts to an account's admins. Two triggers: the directory table's change stream (an address changed: alert
at once) and the schedule (`{"run": "remind"}` hourly: reminders and missed releases; `{"run": "sweep"}` daily:
every address). See relaydesk.alerts.holds."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.alerts import holds
from relaydesk.alerts.stream import address_of
from relaydesk.wiring import aws_stores

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def alert_changed_address(record: DynamoDBRecord) -> None:
    email = address_of(record.raw_event.get("dynamodb", {}).get("Keys"))
    if email is None:
        return
    sent = holds.sync_address(aws_stores(), email)  # raises: the record is retried, then the on-failure queue
    if sent is not None:
        metrics.add_metric(name=f"hold_alert_{sent.kind.value}", unit=MetricUnit.Count, value=1)
        logger.info("hold alert sent", extra={"address": email, "kind": sent.kind.value,
                                              "recipients": len(sent.recipients)})


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    if "Records" in event:
        metrics.add_metric(name="address_changes", unit=MetricUnit.Count, value=len(event["Records"]))
        return process_partial_response(event=event, record_handler=alert_changed_address, processor=processor,
                                        context=context)
    stores = aws_stores()
    report = holds.sweep(stores) if event.get("run") == "sweep" else holds.remind(stores)
    metrics.add_metric(name="held_addresses", unit=MetricUnit.Count, value=report.held)
    for sent in report.sent:
        metrics.add_metric(name=f"hold_alert_{sent.kind.value}", unit=MetricUnit.Count, value=1)
    logger.info("hold alerts run", extra={"run": event.get("run", "remind"), "held": report.held,
                                          "sent": [f"{s.kind.value}:{s.email}" for s in report.sent]})
    return {"held": report.held, "sent": len(report.sent)}
