"""Tenant HTTP API (API Gateway HTTP API, Cognito JWT authorizer): the gate, then the routes of
relaydesk.api.tenant_routes, each acting for the caller's own account only."""

from __future__ import annotations

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.config import get_settings
from relaydesk.wiring import tenant_stores

logger = Logger()
api = build_tenant_api(tenant_stores, console_client_id=get_settings().console_client_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict, context: LambdaContext) -> dict:
    return api.resolve(event, context)
