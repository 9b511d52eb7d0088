"""Operator HTTP API for support addresses (API Gateway HTTP API, IAM auth): the operator's automation across
accounts, by design. The routes live in relaydesk.api.routes; tenants use the tenant API (functions/tenant_api)."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.api.gate import Refused, request_of
from relaydesk.api.routes import build_resolver
from relaydesk.wiring import aws_stores

logger = Logger()
app = build_resolver(aws_stores)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    try:
        request_of(event)  # a malformed event is a 400, never a traceback
    except Refused as refused:
        return refused.response()
    return app.resolve(event, context)
