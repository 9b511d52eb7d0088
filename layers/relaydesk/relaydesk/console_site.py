"""Publishes the admin console (the static files of console/dist) to its bucket: the CloudFormation custom resource
`ConsoleSite` (template.yaml), and the local stack's stand-in, which calls `publish` itself.

`config.json` tells the console where this stack's user pool, app client, tenant API and attachments bucket are;
index.html gets the content security policy that names them (scripts and styles from the console only; calls to the
API and Cognito only, and uploads to the bucket). index.html and config.json are never cached (a deploy shows at
once); the other files are named by their content hash and cached for a year."""

from __future__ import annotations

import json
import mimetypes
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CSP_PLACEHOLDER = "<!-- content-security-policy -->"
NO_CACHE = "no-cache"
IMMUTABLE = "public, max-age=31536000, immutable"
CONFIG_KEYS = ("region", "userPoolId", "clientId", "apiUrl", "cognitoEndpoint", "uploadsUrl", "environment")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".json": "application/json", ".svg": "image/svg+xml",
         ".ico": "image/x-icon", ".png": "image/png", ".txt": "text/plain; charset=utf-8"}


def origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(config: dict[str, str]) -> str:
    # The uploads bucket too: an agent's attachment goes straight to S3 through the API's presigned POST.
    origins = [origin(config[key]) for key in ("apiUrl", "cognitoEndpoint", "uploadsUrl") if config.get(key)]
    connect = " ".join(dict.fromkeys(["'self'", *origins]))
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; base-uri 'none'; form-action 'none'")


def site_files(site: Path, config: dict[str, str]) -> Iterator[tuple[str, bytes, str, str]]:
    """(key, body, content type, cache control) of every file to publish, config.json included."""
    for path in sorted(p for p in site.rglob("*") if p.is_file()):
        key = path.relative_to(site).as_posix()
        if key.startswith(".") or path.suffix == ".py" or key == "BUILD.json":
            continue  # the build's own records
        body = path.read_bytes()
        if key == "index.html":
            policy = f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy(config)}">'
            body = body.replace(CSP_PLACEHOLDER.encode(), policy.encode())
        kind = TYPES.get(path.suffix) or mimetypes.guess_type(key)[0] or "application/octet-stream"
        yield key, body, kind, NO_CACHE if key == "index.html" else IMMUTABLE
    yield "config.json", json.dumps({k: config[k] for k in CONFIG_KEYS if k in config}).encode(), \
        "application/json", NO_CACHE


def publish(s3: Any, bucket: str, site: Path, config: dict[str, str]) -> list[str]:
    """Every file to the bucket, index.html last (it names the others: a reader never sees it before them)."""
    missing = [key for key in ("region", "userPoolId", "clientId", "apiUrl", "cognitoEndpoint") if not config.get(key)]
    if missing:
        raise ValueError(f"the console's config lacks {', '.join(missing)}")
    files = sorted(site_files(site, config), key=lambda file: file[0] == "index.html")
    for key, body, kind, cache in files:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=kind, CacheControl=cache)
    return [key for key, *_ in files]


def empty(s3: Any, bucket: str) -> int:
    """Delete every object (CloudFormation deletes only an empty bucket)."""
    removed = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
            removed += len(keys)
    return removed


def respond(event: dict, status: str, reason: str = "", data: dict | None = None) -> None:
    """The custom resource's answer to CloudFormation (a PUT to the pre-signed ResponseURL)."""
    body = json.dumps({"Status": status, "Reason": reason[:500] or status,
                       "PhysicalResourceId": event.get("PhysicalResourceId") or f"console-{event['LogicalResourceId']}",
                       "StackId": event["StackId"], "RequestId": event["RequestId"],
                       "LogicalResourceId": event["LogicalResourceId"], "Data": data or {}}).encode()
    request = urllib.request.Request(event["ResponseURL"], data=body, method="PUT",  # noqa: S310 (https from CFN)
                                     headers={"Content-Type": "", "Content-Length": str(len(body))})
    with urllib.request.urlopen(request, timeout=30):  # noqa: S310
        pass


def handle(event: dict, s3: Any, site: Path) -> tuple[str, str]:
    """(SUCCESS | FAILED, reason) for one custom resource event."""
    properties = event.get("ResourceProperties", {})
    try:
        if event["RequestType"] == "Delete":
            return "SUCCESS", f"removed {empty(s3, properties['Bucket'])} files"
        published = publish(s3, properties["Bucket"], site, properties.get("Config", {}))
        return "SUCCESS", f"published {len(published)} files"
    except Exception as error:  # noqa: BLE001 - any failure must reach CloudFormation, or the stack waits an hour
        return "FAILED", f"{type(error).__name__}: {error}"


def handler(event: dict, context: Any) -> None:
    """Lambda entry point: the site is the function's own package (LAMBDA_TASK_ROOT)."""
    import os

    from relaydesk.wiring import aws_client

    status, reason = handle(event, aws_client("s3"), Path(os.environ.get("LAMBDA_TASK_ROOT", ".")))
    print(json.dumps({"console_site": status, "reason": reason}))  # the function's log: no secret in either
    respond(event, status, reason)
