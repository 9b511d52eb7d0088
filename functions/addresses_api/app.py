"""HTTP API for support addresses (API Gateway HTTP API, IAM auth): the routes live in relaydesk.api.routes."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.api.routes import build_resolver
from relaydesk.wiring import aws_stores

logger = Logger()
app = build_resolver(aws_stores)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
