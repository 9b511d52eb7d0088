"""Test clients for the HTTP APIs: API Gateway HTTP API (v2) events in, as API Gateway's IAM or JWT authorizer hands
them to the function, every response checked against the OpenAPI document the code generates."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlencode

from jsonschema import Draft202012Validator


@lru_cache(maxsize=1)
def spec() -> dict:
    from relaydesk.api.openapi import openapi_document

    return openapi_document()


IAM_AUTHORIZER = {"iam": {"accountId": "123456789012", "userArn": "arn:aws:iam::123456789012:user/admin"}}


def jwt_authorizer(claims: dict[str, Any]) -> dict:
    """What the JWT authorizer attaches: every claim a string, arrays as "[a b]" (API Gateway's own format)."""
    def text(value: Any) -> str:
        return "[" + " ".join(str(v) for v in value) + "]" if isinstance(value, list) else str(value)
    return {"jwt": {"claims": {name: text(value) for name, value in claims.items()}, "scopes": None}}


def http_event(method: str, path: str, query: dict[str, str] | None = None, body: Any = None, *,
               authorizer: dict | None = None) -> dict:
    raw_body = None if body is None else body if isinstance(body, str) else json.dumps(body)
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": urlencode(query or {}),
        "queryStringParameters": query or None,
        "headers": {"content-type": "application/json", "host": "api.invalid"},
        "requestContext": {"http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1",
                                    "userAgent": "tests"},
                           "stage": "$default", "requestId": "req-1", "routeKey": "$default",
                           "authorizer": IAM_AUTHORIZER if authorizer is None else authorizer},
        "body": raw_body, "isBase64Encoded": False,
    }


def address_path(email: str) -> str:
    return "/support_addresses/" + quote(email, safe="")


def _template_of(path: str) -> str:
    """The documented path template a concrete path belongs to ({name} matches one segment)."""
    for template in spec()["paths"]:
        if re.fullmatch(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(template)), path):
            return template
    return path


@dataclass
class Reply:
    status: int
    body: Any
    raw: str


def check_against_spec(method: str, path: str, status: int, body: Any) -> None:
    """The status is documented for the route, and the body matches its schema."""
    document = spec()
    operation = document["paths"].get(_template_of(path), {}).get(method.lower())
    if operation is None:  # an unknown route: answered with the error schema
        schema: dict = {"$ref": "#/components/schemas/ErrorBody"}
    else:
        assert str(status) in operation["responses"], f"{method} {path} answered {status}, not documented"
        schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    Draft202012Validator({**schema, "components": document["components"]}).validate(body)


class ApiClient:
    def __init__(self, call, *, authorizer: dict | None = None) -> None:
        self._call = call  # event -> the Lambda proxy response dict
        self.authorizer = authorizer  # None: the operator's IAM identity

    def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None) -> Reply:
        response = self._call(http_event(method, path, query, body, authorizer=self.authorizer))
        assert response["headers"]["Content-Type"] == "application/json"
        parsed = json.loads(response["body"])
        check_against_spec(method, path, response["statusCode"], parsed)
        return Reply(response["statusCode"], parsed, response["body"])

    def get(self, path: str, **query: str) -> Reply:
        return self.request("GET", path, query=query or None)

    def post(self, path: str, body: Any) -> Reply:
        return self.request("POST", path, body=body)

    def put(self, path: str, body: Any) -> Reply:
        return self.request("PUT", path, body=body)

    def delete(self, path: str) -> Reply:
        return self.request("DELETE", path)
