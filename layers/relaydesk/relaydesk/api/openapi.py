"""The API's OpenAPI document, generated from the resolver. `python -m relaydesk.api.openapi > docs/openapi.json`
regenerates the committed copy; a test fails when the two differ."""

from __future__ import annotations

import json
import sys

from relaydesk.api.routes import build_resolver

TITLE = "Relaydesk support addresses API"
VERSION = "1.0.0"
DESCRIPTION = (
    "Support addresses of a Relaydesk account: list, show, rename, make default, delete, and add forwarding "
    "addresses. API Gateway HTTP API with IAM auth: sign every request with AWS Signature Version 4 (service "
    "`execute-api`). Responses never contain credentials. Errors are JSON `{\"code\", \"message\"}` (plus `action`, "
    "and `errors` for invalid fields). SMTP connector addresses are created, and their credentials rotated, only "
    "through the admin CLI (`relaydesk addresses connect|rotate`).")
SIGV4 = {"sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
                   "description": "AWS Signature Version 4 (API Gateway IAM authorization)",
                   "x-amazon-apigateway-authtype": "awsSigv4"}}


def _no_stores():
    raise RuntimeError("the OpenAPI document is generated without stores")


def openapi_document() -> dict:
    resolver = build_resolver(_no_stores)
    text = resolver.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION,
                                            security_schemes=SIGV4, security=[{"sigv4": []}])
    return json.loads(text)


def render() -> str:
    """The committed form: sorted keys, two-space indent, a final newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
