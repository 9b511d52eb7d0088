"""SES receipt -> one inbound outcome per message (see relaydesk.inbound.service). A store call that AWS throttles or
fails in passing is tried again while the invocation has time (relaydesk.store.retrying); what still fails raises:
Lambda retries the asynchronous invocation, then hands the event to the inbound DLQ for `relaydesk inbound replay`."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.inbound.service import process_inbound
from relaydesk.store.inbound_dynamodb import aws_inbound_ports
from relaydesk.store.retrying import retrying
from relaydesk.wiring import aws_stores

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])  # patch_all would import requests & co. at cold start


@logger.inject_lambda_context
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    results = []
    stores = retrying(aws_stores(), context.get_remaining_time_in_millis)
    ports = retrying(aws_inbound_ports(), context.get_remaining_time_in_millis)
    for record in event.get("Records", []):
        ses_message_id = record.get("ses", {}).get("mail", {}).get("messageId")
        logger.append_keys(ses_message_id=ses_message_id)
        try:
            result = process_inbound(stores, record, ports=ports)
        except Exception:
            # Raising makes Lambda retry, then send the event to the on-failure destination (the inbound DLQ).
            logger.exception("inbound processing failed; the raw mail stays in S3 for a replay")
            metrics.add_metric(name="InboundFailed", unit=MetricUnit.Count, value=1)
            raise
        metrics.add_metric(name=f"Inbound_{result.outcome.value}", unit=MetricUnit.Count, value=1)
        logger.info("inbound processed", extra=result.model_dump(mode="json", exclude_none=True))
        results.append(result.model_dump(mode="json"))
    return {"results": results}
