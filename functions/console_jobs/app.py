"""The admin console's jobs (invoked asynchronously by the tenant API): the wizard's live check and connect, a
verification, a rotation; each step is recorded on the job as it finishes, for the console to poll."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.jobs.runner import run_event
from relaydesk.wiring import tenant_stores

logger = Logger()


@logger.inject_lambda_context
def handler(event: dict, context: LambdaContext) -> dict:
    return run_event(event, tenant_stores)
