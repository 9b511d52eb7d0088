"""Secrets Manager rotation of a connector secret: one step per invocation (see relaydesk.addresses.rotation)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes import SecretsManagerEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.addresses.rotation import run_step, secret_name_of
from relaydesk.errors import RelaydeskError
from relaydesk.wiring import aws_stores

logger = Logger()


@logger.inject_lambda_context
@event_source(data_class=SecretsManagerEvent)
def handler(event: SecretsManagerEvent, context: LambdaContext) -> None:
    # The secret's name and the token are not secret; the value never leaves the domain code.
    logger.append_keys(secret=secret_name_of(event.secret_id), step=event.step, token=event.client_request_token)
    try:
        outcome = run_step(aws_stores(), event.secret_id, event.client_request_token, event.step)
    except RelaydeskError as error:
        # Raising tells Secrets Manager the step failed; AWSCURRENT is untouched.
        logger.error("rotation step failed", extra={"code": error.code, "reason": error.message})
        raise
    logger.info("rotation step done", extra={"outcome": outcome})
