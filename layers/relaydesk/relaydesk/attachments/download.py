"""What the attachments function answers: a verified link gets a 302 to a short-lived S3 URL; anything else a
JSON error ({code, message}). The token is the only authorization, so nothing but a verified token reaches S3."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote

from relaydesk.attachments.links import verify_link
from relaydesk.clock import utcnow
from relaydesk.errors import ConfigurationError, LinkExpiredError, LinkInvalidError

PRESIGNED_SECONDS = 300  # the redirect target only has to last until the browser follows it
_KEY_INDEX = re.compile(r"^\d{2}-")  # inbound/attachments.py names objects "<NN>-<safe filename>"


class AttachmentObjects(Protocol):
    def exists(self, key: str) -> bool: ...
    def presigned_get(self, key: str, expires_in: int, content_disposition: str) -> str: ...


def download_name(key: str) -> str:
    return _KEY_INDEX.sub("", key.rsplit("/", 1)[-1]) or "attachment"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback and the RFC 6266 / RFC 8187 UTF-8 form for any other name."""
    fallback = "".join(char if char.isascii() and (char.isalnum() or char in "._-") else "_" for char in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
            "body": json.dumps({"code": code, "message": message})}


def token_of(event: dict[str, Any]) -> str:
    """The token from a Function URL event: the path is /<token>."""
    return (event.get("rawPath") or "").strip("/")


def answer(event: dict[str, Any], *, signing_key: Callable[[], bytes], objects: AttachmentObjects,
           log: Callable[..., None] = lambda message, **extra: None, now: datetime | None = None) -> dict[str, Any]:
    method = event.get("requestContext", {}).get("http", {}).get("method", "GET")
    if method not in {"GET", "HEAD"}:
        return _error(405, "method_not_allowed", "only GET is supported")
    try:
        key, account_id = verify_link(token_of(event), signing_key(), now or utcnow())
    except ConfigurationError as error:  # the signing key cannot be read: the operator's to fix, not the user's
        log("attachment links are not configured", error=f"{error.message}. {error.action}")
        return _error(503, "unavailable", "attachment links are unavailable right now; try again later")
    except LinkExpiredError as error:
        log("attachment link expired")
        return _error(410, error.code, f"{error.message}. {error.action}")
    except LinkInvalidError as error:
        log("attachment link refused")  # the token itself stays out of the logs: it is a bearer credential
        return _error(403, error.code, f"{error.message}. {error.action}")
    if not objects.exists(key):
        log("attachment missing", s3_key=key, account_id=account_id)
        return _error(404, "not_found", "the attachment no longer exists. Ask the help desk to send it again.")
    url = objects.presigned_get(key, PRESIGNED_SECONDS, content_disposition(download_name(key)))
    log("attachment link followed", s3_key=key, account_id=account_id)
    return {"statusCode": 302, "headers": {"Location": url, "Cache-Control": "no-store"}, "body": ""}
