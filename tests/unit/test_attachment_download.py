"""The attachments function's answers, with an in-memory bucket: what a browser following a link gets."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
from relaydesk.attachments.download import answer, content_disposition, download_name
from relaydesk.attachments.links import sign_link

SIGNING_KEY = b"a-signing-key-of-at-least-32-bytes-for-tests"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
EVENTS = Path(__file__).resolve().parents[2] / "events"


class Bucket:
    def __init__(self, *keys: str) -> None:
        self.keys = set(keys)
        self.presigned: list[tuple[str, int, str]] = []

    def exists(self, key: str) -> bool:
        return key in self.keys

    def presigned_get(self, key: str, expires_in: int, content_disposition: str) -> str:
        self.presigned.append((key, expires_in, content_disposition))
        return f"https://bucket.s3.amazonaws.com/{key}?X-Amz-Expires={expires_in}"


def _event(token: str, method: str = "GET") -> dict:
    return {"rawPath": f"/{token}", "requestContext": {"http": {"method": method}}}


def test_a_valid_link_redirects_and_nothing_is_cached():
    key = "attachments/T1/C1/02-report.pdf"
    bucket = Bucket(key)
    token = sign_link(key, "A1", NOW + timedelta(days=1), SIGNING_KEY)

    response = answer(_event(token), signing_key=lambda: SIGNING_KEY, objects=bucket, now=NOW)

    assert response["statusCode"] == 302
    assert response["headers"]["Cache-Control"] == "no-store"
    assert bucket.presigned == [(key, 300, 'attachment; filename="report.pdf"; filename*=UTF-8\'\'report.pdf')]


def test_an_invalid_link_never_reaches_the_bucket():
    bucket = Bucket("attachments/T1/C1/01-a.pdf")

    response = answer(_event("garbage.token"), signing_key=lambda: SIGNING_KEY, objects=bucket, now=NOW)

    assert response["statusCode"] == 403 and not bucket.presigned
    assert json.loads(response["body"])["code"] == "link_invalid"


def test_the_download_name_is_the_attachments_name_and_cannot_break_the_header():
    assert download_name("attachments/T1/C1/01-invoice.pdf") == "invoice.pdf"
    header = content_disposition('a"b\r\nX-Evil: 1;.pdf')
    assert "\r" not in header and "\n" not in header
    assert header.count('"') == 2


def test_the_sample_event_is_a_function_url_request_whose_unsigned_token_is_refused():
    event = json.loads((EVENTS / "attachments_link.json").read_text())
    LambdaFunctionUrlModel.model_validate(event)

    response = answer(event, signing_key=lambda: SIGNING_KEY, objects=Bucket(), now=NOW)

    assert response["statusCode"] == 403


def test_an_unreadable_signing_key_is_a_503_that_tells_the_user_nothing_internal():
    from relaydesk.attachments.keys import SigningKeys
    from relaydesk.store.memory import MemorySecrets

    logged: list[tuple[str, dict]] = []
    keys = SigningKeys(MemorySecrets(), "relaydesk/links/missing")

    response = answer(_event("a.b"), signing_key=keys.current, objects=Bucket(),
                      log=lambda message, **extra: logged.append((message, extra)), now=NOW)

    assert response["statusCode"] == 503
    assert json.loads(response["body"])["code"] == "unavailable" and "secret" not in response["body"]
    assert "LinkSigningSecret" in logged[0][1]["error"]  # the operator reads what to do in the log
