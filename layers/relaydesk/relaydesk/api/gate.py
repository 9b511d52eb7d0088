"""The one check between a tenant request and any route code: who is calling (401), whether the path is its own
account (else 404, whether or not that account exists), whether the route exists (404) and whether the caller's
role may use it (403). Nothing of the request is read before this, and nothing of it is echoed."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from relaydesk.api.identity import Caller, Unauthenticated, caller_from_claims, claims_of
from relaydesk.api.routing import RouteTable
from relaydesk.api.schemas import ErrorBody

# Seen from another account, an account's path answers exactly like one that does not exist.
NOT_YOURS = ErrorBody(code="not_found", message="no such resource")


class Refused(Exception):
    def __init__(self, status: int, body: ErrorBody, headers: dict[str, str] | None = None) -> None:
        super().__init__(body.message)
        self.status = status
        self.body = body
        self.headers = headers or {}

    def response(self) -> dict[str, Any]:
        """The Lambda proxy response (payload format 2.0)."""
        return {"statusCode": self.status, "isBase64Encoded": False,
                "headers": {"Content-Type": "application/json", **self.headers},
                "body": self.body.model_dump_json(exclude_none=True)}


@dataclass(frozen=True)
class Request:
    method: str
    path: str


def request_of(event: Any) -> Request:
    """The method and raw path of an HTTP API (payload 2.0) event, whose body is text or valid base64; else 400."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    http = context.get("http") if isinstance(context, dict) else None
    method = http.get("method") if isinstance(http, dict) else None
    path = event.get("rawPath") if isinstance(event, dict) else None
    if not isinstance(method, str) or not isinstance(path, str) or not path.startswith("/"):
        raise Refused(HTTPStatus.BAD_REQUEST, ErrorBody(code="bad_request", message="not an HTTP API request"))
    body = event.get("body")
    if body is not None and not isinstance(body, str):
        raise Refused(HTTPStatus.BAD_REQUEST, ErrorBody(code="bad_request", message="the body is not text"))
    if body and event.get("isBase64Encoded"):
        try:
            base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise Refused(HTTPStatus.BAD_REQUEST, ErrorBody(
                code="bad_request", message="the body is not valid base64-encoded UTF-8")) from None
    return Request(method.upper(), path)


def admit(event: Any, table: RouteTable, *, console_client_id: str = "", now: float | None = None) -> Caller:
    """The caller, when the request may reach the route it names; else `Refused` with the answer to send."""
    try:
        caller = caller_from_claims(claims_of(event), now=time.time() if now is None else now)
    except Unauthenticated as error:
        raise Refused(HTTPStatus.UNAUTHORIZED, ErrorBody(code="unauthorized", message=str(error),
                                                         action="Sign in with `relaydesk login`."),
                      {"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    request = request_of(event)
    segments = request.path.split("/")
    if len(segments) < 3 or segments[1] != "accounts":
        raise _no_route(request)
    if unquote(segments[2]) != caller.account_id:
        raise Refused(HTTPStatus.NOT_FOUND, NOT_YOURS)
    rules = table.matching(request.method, request.path)
    if not rules:
        raise _no_route(request)
    needed = max(rule.role for rule in rules)  # were two rules to match, the stricter one decides
    if not caller.may(needed):
        held = f"your role is {caller.role.label}" if caller.role else "your user has no role (no group)"
        raise Refused(HTTPStatus.FORBIDDEN, ErrorBody(
            code="forbidden", message=f"this needs the {needed.label} role; {held}",
            action="Ask an admin of your account to change your role."))
    if any(rule.console_only for rule in rules) and (not console_client_id or caller.client_id != console_client_id):
        raise Refused(HTTPStatus.FORBIDDEN, ErrorBody(
            code="console_only", message="this is done in the admin console only",
            action="Sign in to the admin console in your browser to do this."))
    return caller


def _no_route(request: Request) -> Refused:
    return Refused(HTTPStatus.NOT_FOUND, ErrorBody(
        code="route_not_found", message=f"no such route ({request.method})",
        action="The tenant routes are under /accounts/{account_id}/; see docs/API.md."))
