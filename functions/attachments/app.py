"""Attachment links (Lambda Function URL, no IAM auth: the signed token is the authorization) -> 302 to S3."""

from __future__ import annotations

from functools import lru_cache

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.typing import LambdaContext
from relaydesk.attachments.download import answer
from relaydesk.attachments.keys import SigningKeys
from relaydesk.config import get_settings
from relaydesk.store.s3_downloads import S3Downloads, s3_downloads
from relaydesk.wiring import aws_secrets

logger = Logger()
tracer = Tracer(patch_modules=["botocore"])  # patch_all would import requests & co. at cold start


@lru_cache(maxsize=1)
def services() -> tuple[SigningKeys, S3Downloads]:
    """Built once per warm container: the signing key is read once and kept for a bounded age."""
    settings = get_settings()
    # Only the two clients this function uses: building all of aws_stores()' cost ~70 ms of its first call.
    keys = SigningKeys(aws_secrets(), settings.link_signing_secret_id, max_age=settings.credentials_cache_seconds)
    return keys, s3_downloads(settings.raw_mail_bucket)


def log(message: str, **extra: str) -> None:
    logger.info(message, extra=extra)


@logger.inject_lambda_context
@tracer.capture_lambda_handler
def handler(event: dict, context: LambdaContext) -> dict:
    keys, objects = services()
    return answer(event, signing_key=keys.current, objects=objects, log=log)
