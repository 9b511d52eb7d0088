"""The OpenAPI document of both HTTP APIs, generated from their resolvers: the tenant API (`/accounts/{account_id}/...`,
Cognito ID token) and the operator API (`/support_addresses...`, AWS Signature Version 4, across accounts).
`python -m relaydesk.api.openapi > docs/openapi.json` regenerates the committed copy; a test fails when the two
differ."""

from __future__ import annotations

import json
import sys
from typing import Any

from relaydesk.api.routes import build_resolver
from relaydesk.api.tenant_routes import build_tenant_api

TITLE = "Relaydesk HTTP API"
VERSION = "2.0.0"
DESCRIPTION = (
    "Two APIs with one contract. The **tenant API** (stack output `TenantApiUrl`): every route is under "
    "`/accounts/{account_id}/` and takes the Cognito ID token of a user of that account (`relaydesk login`) as "
    "`Authorization: Bearer <token>`; a user acts for its own account only (another account's paths answer 404) and "
    "within its role (admin or agent, else 403). The **operator API** (stack output `ApiUrl`): `/support_addresses` "
    "routes for the operator's automation across accounts, signed with AWS Signature Version 4 (service "
    "`execute-api`); a tenant token is refused there. Responses never contain credentials or secret ARNs. Errors are "
    "JSON `{\"code\", \"message\"}` (plus `action`, and `errors` for invalid fields). SMTP connector addresses are "
    "created, and their credentials rotated, only through the admin CLI (`relaydesk addresses connect|rotate`).")
SECURITY_SCHEMES = {
    "cognito": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "the ID token of a Relaydesk user (Cognito user pool; API Gateway's JWT authorizer "
                               "checks its signature, issuer, audience and expiry)"},
    "sigv4": {"type": "apiKey", "name": "Authorization", "in": "header",
              "description": "AWS Signature Version 4 (API Gateway IAM authorization): the operator only",
              "x-amazon-apigateway-authtype": "awsSigv4"},
}


def _no_stores(*_: Any) -> Any:
    raise RuntimeError("the OpenAPI document is generated without stores")


def _document(resolver: Any, security: list[dict] | None) -> dict:
    return json.loads(resolver.get_openapi_json_schema(title=TITLE, version=VERSION, description=DESCRIPTION,
                                                       security_schemes=SECURITY_SCHEMES, security=security))


def openapi_document() -> dict:
    operator = _document(build_resolver(_no_stores), None)
    for operations in operator["paths"].values():
        for operation in operations.values():
            operation["security"] = [{"sigv4": []}]
    tenant = _document(build_tenant_api(_no_stores).app, None)  # each route carries its own `cognito` requirement
    document = {**tenant, "paths": {**tenant["paths"], **operator["paths"]}}
    schemas = {**tenant["components"]["schemas"]}
    for name, schema in operator["components"]["schemas"].items():
        assert schemas.setdefault(name, schema) == schema, f"two APIs define {name} differently"
    document["components"] = {**tenant["components"], "schemas": schemas}
    return document


def render() -> str:
    """The committed form: sorted keys, two-space indent, a final newline."""
    return json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
