"""The tenant API as the signed-in user: HTTPS only (certificate verified; RELAYDESK_API_CA_BUNDLE adds a private CA,
as the local stack's), the ID token as a Bearer token, the API's JSON errors turned back into Relaydesk errors."""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

from relaydesk.cli import session as sessions
from relaydesk.errors import (
    ApiFailed,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDenied,
    RelaydeskError,
    RuleViolation,
)

TIMEOUT_SECONDS = 30


class TenantClient:
    def __init__(self, session: sessions.Session) -> None:
        if not session.api_url.startswith("https://"):
            raise ConfigurationError("the tenant API URL is not https://; no token is sent over it",
                                     action="Sign in again with the stack's TenantApiUrl (`relaydesk login`).")
        self.session = session
        bundle = os.environ.get("RELAYDESK_API_CA_BUNDLE")
        self._tls = ssl.create_default_context(cafile=bundle) if bundle else ssl.create_default_context()

    @property
    def account_path(self) -> str:
        return f"/accounts/{quote(self.session.account_id, safe='')}"

    def address_path(self, email: str) -> str:
        return f"{self.account_path}/support_addresses/{quote(email.strip().lower(), safe='')}"

    def call(self, method: str, path: str, body: dict | None = None, *, query: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Any:
        """`query`: parameters (None values left out); `headers`: extra ones, such as an Idempotency-Key."""
        session = sessions.fresh(self.session)
        data = json.dumps(body).encode() if body is not None else None
        present = {name: str(value) for name, value in (query or {}).items() if value is not None}
        request = urllib.request.Request(  # noqa: S310 - https only (checked above)
            session.api_url.rstrip("/") + path + ("?" + urlencode(present) if present else ""), data=data,
            method=method, headers={"Authorization": f"Bearer {session.id_token}", "Accept": "application/json",
                                    **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
        try:
            with urllib.request.urlopen(request, context=self._tls, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise _error_of(error.code, error.read()) from None
        except (urllib.error.URLError, OSError) as error:
            raise ApiFailed(f"the tenant API could not be reached: {getattr(error, 'reason', error)}",
                                     action="Check the network, or sign in again with the right API URL.") from None


def _error_of(status: int, raw: bytes) -> RelaydeskError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    code, message = str(body.get("code", "")), str(body.get("message") or f"HTTP {status}")
    action = body.get("action")
    if status == 401:
        return sessions.SignInError(f"not signed in: {message}", action="Sign in again: `relaydesk login`.")
    if status == 403:
        return PermissionDenied(message, action=action)
    if status == 404:
        return NotFoundError(message, action=action)
    if status in (409, 422) and code and code not in ("conflict", "validation_error"):
        return RuleViolation(message, rule=code, action=action)
    if status == 409:
        return ConflictError(message, action=action)
    if status >= 500:
        return ApiFailed(message, action=action)
    return ConfigurationError(message, action=action)
