"""Errors as JSON `{"code", "message"[, "action", "errors"]}` with the right HTTP status; never the request's input."""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from pydantic import ValidationError

from relaydesk.api.schemas import ErrorBody, FieldError
from relaydesk.errors import ConflictError, NotFoundError, RelaydeskError, RuleViolation

logger = Logger(child=True)

ADMIN_PATH = "connector_requires_admin_path"  # lifecycle's rule code: connector addresses need the admin path
# Rules broken by what the request asks for (422); every other rule conflicts with the address's state (409).
REQUEST_RULES = {ADMIN_PATH, "system_address",
                 # a ticket request asking what the rules never allow (a suspended ticket, a full CC list or CCs
                 # turned off conflict with the ticket's or account's state: 409)
                 "empty_comment", "comment_too_long", "attachment_type", "attachment_size", "attachment_count",
                 "request_id", "agent_status", "invalid_address", "address_count", "cc_is_requester", "own_address",
                 "follower_not_agent", "assignee_not_agent", "author_unknown", "updated_since"}
# A body field with one of these names (or containing one) carries credentials: refused with ADMIN_PATH.
CREDENTIAL_FIELDS = ("password", "secret", "credential", "token", "username", "host", "port", "tls", "auth",
                     "smarthost", "connector", "ca_bundle")
CREDENTIALS_REFUSED = (
    "credentials are never accepted by the HTTP API: SMTP connector addresses are created only through the admin "
    "path, which carries them")
CREDENTIALS_ACTION = ("Use `relaydesk addresses connect EMAIL --account ID --password-stdin ...` to connect an "
                      "address, and `relaydesk addresses rotate EMAIL --password-stdin` to change its credentials.")


def error_response(status: int, body: ErrorBody) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=body.model_dump_json(exclude_none=True))


def status_of(error: RelaydeskError) -> int:
    if isinstance(error, NotFoundError):
        return HTTPStatus.NOT_FOUND
    if isinstance(error, RuleViolation):
        return HTTPStatus.UNPROCESSABLE_ENTITY if error.code in REQUEST_RULES else HTTPStatus.CONFLICT
    if isinstance(error, ConflictError):
        return HTTPStatus.CONFLICT
    return HTTPStatus.BAD_REQUEST


def from_domain(error: RelaydeskError) -> Response:
    return error_response(status_of(error), ErrorBody(code=error.code, message=error.message,
                                                      action=error.action or None))


def _field(loc: Any) -> str:
    return ".".join(str(part) for part in loc)


def from_validation(errors: list[dict[str, Any]], *, credentials_refused: bool = True) -> Response:
    """A request that does not match the schema: 400 when it is not JSON, 422 otherwise. `input` is dropped."""
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(HTTPStatus.BAD_REQUEST,
                              ErrorBody(code="bad_request", message="the request body is not valid JSON"))
    extra = [str(error["loc"][-1]) for error in errors
             if error.get("type") == "extra_forbidden" and tuple(error.get("loc", ()))[:1] == ("body",)]
    if credentials_refused and any(any(word in name.lower() for word in CREDENTIAL_FIELDS) for name in extra):
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                              ErrorBody(code=ADMIN_PATH, message=CREDENTIALS_REFUSED, action=CREDENTIALS_ACTION))
    fields = [FieldError(field=_field(error.get("loc", ())), message=str(error.get("msg", "invalid")))
              for error in errors]
    summary = "; ".join(f"{field.field}: {field.message}" for field in fields)
    return error_response(HTTPStatus.UNPROCESSABLE_ENTITY,
                          ErrorBody(code="validation_error", message=f"invalid request: {summary}", errors=fields))


def from_pydantic(error: ValidationError) -> Response:
    return from_validation([dict(e) for e in error.errors(include_input=False)])


def route_not_found(method: str, path: str) -> Response:
    return error_response(HTTPStatus.NOT_FOUND, ErrorBody(
        code="route_not_found", message=f"no route {method} {path}",
        action="The routes are GET|POST /support_addresses and GET|PUT|DELETE /support_addresses/{id}."))


def internal_error() -> Response:
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, ErrorBody(
        code="internal_error", message="the request failed on our side; nothing was reported to the caller",
        action="Retry; if it keeps failing, give the request id to the operator."))


def install_handlers(app: APIGatewayHttpResolver, *, on_no_route: Callable[[], Response]) -> None:
    """Every failure of a route as a JSON error: domain refusals with their code, invalid input as 400/422, anything
    else as a 500 whose details stay in the log."""

    @app.exception_handler(RelaydeskError)
    def on_domain_error(error: RelaydeskError) -> Response:
        logger.info("request refused", extra={"code": error.code, "reason": error.message})
        return from_domain(error)

    @app.exception_handler(RequestValidationError)
    def on_invalid_request(error: RequestValidationError) -> Response:
        # A ticket's body never carries credentials: an unknown field there (`author`, say) is simply invalid.
        path = app.current_event.path if app.current_event is not None else ""
        return from_validation(list(error.errors()), credentials_refused="/tickets" not in path)

    @app.exception_handler(ValidationError)
    def on_invalid_data(error: ValidationError) -> Response:
        return from_pydantic(error)

    @app.not_found
    def on_not_found(error: RouteNotFound) -> Response:
        return on_no_route()

    @app.exception_handler(Exception)
    def on_unexpected(error: Exception) -> Response:
        logger.exception("unexpected error")
        return internal_error()
