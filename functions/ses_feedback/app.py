"""SES bounces and complaints (SNS, from the outbound configuration set) -> the notification's record, and the
recipient suppressed for the account (see relaydesk.outbound.feedback). A failure raises: Lambda retries the
asynchronous invocation, then hands the event to the feedback DLQ."""

from __future__ import annotations

import json

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.outbound import feedback
from relaydesk.wiring import aws_stores

logger = Logger()
metrics = Metrics()
tracer = Tracer(patch_modules=["botocore"])


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    results = []
    for record in event.get("Records", []):
        message = json.loads(record.get("Sns", {}).get("Message") or "{}")
        result = feedback.apply(aws_stores(), message)
        metrics.add_metric(name="suppressed", unit=MetricUnit.Count, value=len(result.suppressed))
        logger.info("SES feedback", extra={"kind": result.kind, "account_id": result.account_id,
                                           "notification_id": result.notification_id, "ticket_id": result.ticket_id,
                                           "recipients": len(result.recipients), "suppressed": len(result.suppressed),
                                           "recorded": result.recorded})
        results.append({"kind": result.kind, "recorded": result.recorded, "suppressed": len(result.suppressed)})
    return {"results": results}
