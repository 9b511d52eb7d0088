"""The tenant route table: every route under `/accounts/<account_id>` with the role it needs, registered on the
powertools resolver and read by the gate. Adding a route is one decorator line:

    @routes.get("/support_addresses", role=Role.AGENT, summary="...")
    @routes.post("/support_addresses/<id>/connector", role=Role.ADMIN, console_only=True, summary="...")
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from relaydesk.api.identity import Role

ACCOUNT_PREFIX = "/accounts/<account_id>"


@dataclass(frozen=True)
class RouteRule:
    method: str
    rule: str  # powertools' form, prefix included: /accounts/<account_id>/support_addresses/<id>
    role: Role
    console_only: bool  # only a token issued to the admin console's app client may call it
    pattern: re.Pattern

    @property
    def openapi_path(self) -> str:
        return re.sub(r"<(\w+)>", r"{\1}", self.rule)


class RouteTable:
    def __init__(self, app: APIGatewayHttpResolver) -> None:
        self.app = app
        self.rules: list[RouteRule] = []

    def route(self, method: str, path: str, *, role: Role, console_only: bool = False,
              **openapi: Any) -> Callable[[Callable], Callable]:
        rule = ACCOUNT_PREFIX + path
        # The resolver's own compiled pattern: the gate and the resolver can never disagree on what a path matches.
        pattern = APIGatewayHttpResolver._compile_regex(rule)
        self.rules.append(RouteRule(method.upper(), rule, role, console_only, pattern))
        security = [{"cognito": []}]
        return self.app.route(rule=rule, method=method.upper(), security=security, **openapi)

    def get(self, path: str, **kwargs: Any) -> Callable[[Callable], Callable]:
        return self.route("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Callable], Callable]:
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Callable], Callable]:
        return self.route("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Callable], Callable]:
        return self.route("DELETE", path, **kwargs)

    def matching(self, method: str, path: str) -> list[RouteRule]:
        return [rule for rule in self.rules if rule.method == method.upper() and rule.pattern.match(path)]
