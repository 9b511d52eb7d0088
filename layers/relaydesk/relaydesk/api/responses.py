"""The responses a route documents in the OpenAPI document: its success and every error it may answer."""

from __future__ import annotations

from typing import Any

from relaydesk.api.schemas import ErrorBody

REASONS = {
    400: "the body is not JSON, or the request is malformed",
    401: "no valid ID token (missing, expired, not signed by the user pool, or not an ID token)",
    403: "the caller's role may not do this (see `code`: forbidden, console_only)",
    404: "no such address, account or route; another account's paths answer this too",
    409: "refused by a connector rule that the address's state breaks (see `code`)",
    422: "invalid request (see `errors`), or refused by a rule about what was asked (see `code`)",
    500: "failed on our side (code internal_error); safe to retry",
}


def documented(status: int, model: type, description: str, *errors: int,
               headers: dict[str, Any] | None = None) -> dict[int, Any]:
    """The success response (and its headers) and the error responses of a route."""
    responses: dict[int, Any] = {status: {"description": description,
                                          "content": {"application/json": {"model": model}},
                                          **({"headers": headers} if headers else {})}}
    for error in sorted({*errors, 422, 500}):  # every route validates its input and may fail
        responses[error] = {"description": REASONS[error], "content": {"application/json": {"model": ErrorBody}}}
    return responses
