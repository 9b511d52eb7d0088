"""The support addresses API against the in-memory stores: every route, every error, schema-checked, no secrets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from openapi_spec_validator import validate as validate_spec
from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import AddressKind, ConnectorState, VerificationStatus
from relaydesk.api.openapi import render
from relaydesk.api.routes import build_resolver
from relaydesk.credentials import SmtpCredentials

from tests.tenancy import account_of
from tests.unit.api_client import ApiClient, address_path, spec

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "Api-s3cret-Pa55!"


def passing_checker(credentials, **kwargs):
    from relaydesk.addresses.live_check import CheckStep, LiveCheckReport

    steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate", "auth")]
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps)


@pytest.fixture
def acme(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme", "sandbox")
    return account


@pytest.fixture
def api(memory_stores):
    resolver = build_resolver(lambda: memory_stores)
    return ApiClient(lambda event: resolver.resolve(event, None))


@pytest.fixture
def connector(memory_stores, acme):
    credentials = SmtpCredentials(host="smtp.acme.com", username="support@acme.com", password=PASSWORD)
    address, _ = lifecycle.connect_address(memory_stores, acme.account_id, "support@acme.com", credentials,
                                           "Acme Support", checker=passing_checker)
    return address


def verify(stores, email: str) -> None:
    address = stores.directory.get_address(email)
    address.forwarding.status = address.outbound.status = VerificationStatus.VERIFIED
    if address.connector:
        address.connector.state = ConnectorState.ACTIVE
    stores.directory.put_address(address)


# --- the OpenAPI document -----------------------------------------------------------------------------------------

def test_committed_openapi_document_matches_the_code():
    committed = (ROOT / "docs" / "openapi.json").read_text()

    assert committed == render(), "regenerate it: python -m relaydesk.api.openapi > docs/openapi.json"


def test_openapi_document_is_valid_and_each_api_names_its_authorization():
    document = spec()

    validate_spec(document)
    assert "security" not in document  # per operation: the two APIs are authorized differently
    for path, operations in document["paths"].items():
        for operation in operations.values():
            expected = [{"cognito": []}] if path.startswith("/accounts/{account_id}") else [{"sigv4": []}]
            assert operation["security"] == expected, path
    assert document["components"]["securitySchemes"]["sigv4"]["x-amazon-apigateway-authtype"] == "awsSigv4"
    assert document["components"]["securitySchemes"]["cognito"]["bearerFormat"] == "JWT"


def test_every_route_of_the_template_is_in_the_document_and_nothing_else():
    from local.aws_resources import http_api_routes

    routes = {(method.lower(), path) for api in http_api_routes(ROOT / "template.yaml").values()
              for method, path, _ in api}

    documented = {(method, path) for path, ops in spec()["paths"].items() for method in ops}
    assert routes == documented


def response_schemas(document: dict) -> dict[str, dict]:
    """Every component schema a response can contain (request bodies, such as the console's credential forms, are
    not responses), following $ref to the end."""
    schemas, seen, todo = document["components"]["schemas"], set(), []
    for operations in document["paths"].values():
        for operation in operations.values():
            todo += re.findall(r'"#/components/schemas/(\w+)"', json.dumps(operation.get("responses", {})))
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += re.findall(r'"#/components/schemas/(\w+)"', json.dumps(schemas[name]))
    return {name: schemas[name] for name in seen}


def test_no_response_schema_has_a_credential_field():
    names = {name.lower() for schema in response_schemas(spec()).values()
             for name in schema.get("properties", {})} - {"secret_deletion_scheduled"}  # a flag, not a secret

    assert names  # the walk found the fields ...
    for word in ("password", "secret", "credential", "token", "refresh"):
        assert not [name for name in names if word in name]  # ... and none of them carries a secret


# --- GET /support_addresses ---------------------------------------------------------------------------------------

def test_list_shows_the_accounts_addresses_by_email(api, memory_stores, acme, connector):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "billing@acme.com")
    globex, _ = lifecycle.create_account(memory_stores, "globex", "Globex")
    lifecycle.add_forwarding_address(memory_stores, globex.account_id, "help@globex.com")

    reply = api.get("/support_addresses", account_id=acme.account_id)

    assert reply.status == 200
    emails = [a["email"] for a in reply.body["support_addresses"]]
    assert emails == sorted(["billing@acme.com", "support@acme.com", "support@acme.mail.relaydesk.test"])
    assert all(a["account_id"] == acme.account_id for a in reply.body["support_addresses"])
    shown = next(a for a in reply.body["support_addresses"] if a["email"] == "support@acme.com")
    assert shown["connector"] == {"host": "smtp.acme.com", "port": 587, "tls_mode": "starttls",
                                  "auth_kind": "password", "state": "pending", "held_since": None}


def test_list_without_account_id_is_a_validation_error(api):
    reply = api.get("/support_addresses")

    assert reply.status == 422
    assert reply.body["code"] == "validation_error"
    assert reply.body["errors"][0]["field"] == "query.account_id"


def test_list_of_an_unknown_account_is_not_found(api, acme):
    reply = api.get("/support_addresses", account_id="A-NOPE")

    assert reply.status == 404
    assert reply.body["code"] == "not_found"


# --- GET /support_addresses/{id} ----------------------------------------------------------------------------------

def test_show_by_url_encoded_address(api, connector):
    reply = api.get(address_path("support@acme.com"))

    assert reply.status == 200
    assert reply.body["id"] == reply.body["email"] == "support@acme.com"
    assert reply.body["kind"] == "smtp_connector"


def test_show_accepts_the_raw_address_in_any_case(api, connector):
    reply = api.get("/support_addresses/Support@Acme.com")

    assert reply.status == 200
    assert reply.body["email"] == "support@acme.com"


def test_show_unknown_address_is_not_found(api, acme):
    reply = api.get(address_path("nobody@acme.com"))

    assert reply.status == 404
    assert reply.body == {"code": "not_found", "message": "nobody@acme.com is not a support address",
                          "action": reply.body["action"]}


# --- POST /support_addresses --------------------------------------------------------------------------------------

def test_post_adds_a_forwarding_address(api, memory_stores, acme):
    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "Help@Acme.com",
                                            "name": "Acme Help"})

    assert reply.status == 201
    assert reply.body["email"] == "help@acme.com"
    assert reply.body["kind"] == "forwarding"
    assert reply.body["forwarding"]["status"] == "unverified"
    assert memory_stores.directory.get_address("help@acme.com").name == "Acme Help"


def test_post_for_a_connector_address_is_refused(api, memory_stores, acme):
    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com",
                                            "kind": "smtp_connector"})

    assert reply.status == 422
    assert reply.body["code"] == "connector_requires_admin_path"
    assert "relaydesk addresses connect" in reply.body["action"]
    assert memory_stores.directory.get_address("help@acme.com") is None


@pytest.mark.parametrize("extra", [{"password": PASSWORD}, {"smtp_password": PASSWORD},
                                   {"username": "u", "host": "smtp.acme.com", "port": 587},
                                   {"credentials": {"password": PASSWORD}}])
def test_post_carrying_credentials_is_refused_without_echoing_them(api, memory_stores, acme, extra):
    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com", **extra})

    assert reply.status == 422
    assert reply.body["code"] == "connector_requires_admin_path"
    assert PASSWORD not in reply.raw
    assert memory_stores.directory.get_address("help@acme.com") is None


def test_post_with_an_invalid_address_names_the_field(api, acme):
    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "not an address"})

    assert reply.status == 422
    assert reply.body["code"] == "validation_error"
    assert [e["field"] for e in reply.body["errors"]] == ["body.email"]
    assert "not an address" not in reply.raw  # the input is never echoed


def test_post_with_an_unknown_field_is_a_validation_error(api, acme):
    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com",
                                            "colour": "blue"})

    assert reply.status == 422
    assert reply.body["code"] == "validation_error"


def test_post_with_a_body_that_is_not_json_is_a_bad_request(api, acme):
    reply = api.post("/support_addresses", '{"account_id": ')

    assert reply.status == 400
    assert reply.body["code"] == "bad_request"


def test_post_of_the_system_address_is_refused(api, acme):
    reply = api.post("/support_addresses", {"account_id": acme.account_id,
                                            "email": "support@acme.mail.relaydesk.test"})

    assert reply.status == 422
    assert reply.body["code"] == "system_address"


def test_post_of_an_address_another_account_verified_is_a_conflict_naming_no_account(api, memory_stores, acme):
    globex, _ = lifecycle.create_account(memory_stores, "globex", "Globex", "production")
    lifecycle.add_forwarding_address(memory_stores, globex.account_id, "help@acme.com")
    memory_stores.directory.claim_address(globex.account_id, "help@acme.com")  # globex verified it

    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com"})

    assert reply.status == 409
    assert reply.body["code"] == "address_in_use"
    assert not {globex.account_id, "globex", "Globex"} & set(reply.raw.replace('"', " ").split())


def test_post_of_an_address_another_account_only_added_is_accepted(api, memory_stores, acme):
    globex, _ = lifecycle.create_account(memory_stores, "globex", "Globex", "production")
    lifecycle.add_forwarding_address(memory_stores, globex.account_id, "help@acme.com")

    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com"})

    assert reply.status == 201  # uniqueness is decided when one of them verifies it


def test_post_of_an_existing_address_is_a_conflict(api, memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")

    reply = api.post("/support_addresses", {"account_id": acme.account_id, "email": "help@acme.com"})

    assert reply.status == 409
    assert reply.body["code"] == "conflict"


def test_post_to_an_unknown_account_is_not_found(api, acme):
    reply = api.post("/support_addresses", {"account_id": "A-NOPE", "email": "help@acme.com"})

    assert reply.status == 404


# --- PUT /support_addresses/{id} ----------------------------------------------------------------------------------

def test_put_renames(api, memory_stores, connector):
    reply = api.put(address_path("support@acme.com"), {"name": "Acme Customer Care"})

    assert reply.status == 200
    assert reply.body["name"] == "Acme Customer Care"
    assert memory_stores.directory.get_address("support@acme.com").name == "Acme Customer Care"


def test_put_default_on_an_unverified_address_is_refused(api, memory_stores, connector):
    reply = api.put(address_path("support@acme.com"), {"default": True})

    assert reply.status == 409
    assert reply.body["code"] == "default_requires_verification"
    assert memory_stores.directory.get_address("support@acme.com").is_default is False


def test_put_default_on_a_verified_address_moves_the_default(api, memory_stores, acme, connector):
    verify(memory_stores, "support@acme.com")

    reply = api.put(address_path("support@acme.com"), {"default": True})

    assert reply.status == 200
    assert reply.body["is_default"] is True
    assert memory_stores.directory.get_address("support@acme.mail.relaydesk.test").is_default is False


def test_put_default_false_on_the_default_is_refused(api, acme):
    reply = api.put(address_path("support@acme.mail.relaydesk.test"), {"default": False})

    assert reply.status == 409
    assert reply.body["code"] == "default_required"


def test_put_carrying_credentials_is_refused(api, memory_stores, connector):
    reply = api.put(address_path("support@acme.com"), {"password": PASSWORD})

    assert reply.status == 422
    assert reply.body["code"] == "connector_requires_admin_path"
    assert "relaydesk addresses rotate" in reply.body["action"]
    assert PASSWORD not in reply.raw


def test_put_with_an_empty_name_is_a_validation_error(api, connector):
    reply = api.put(address_path("support@acme.com"), {"name": ""})

    assert reply.status == 422
    assert reply.body["errors"][0]["field"] == "body.name"


def test_put_on_an_unknown_address_is_not_found(api, acme):
    reply = api.put(address_path("nobody@acme.com"), {"name": "x"})

    assert reply.status == 404


# --- DELETE /support_addresses/{id} -------------------------------------------------------------------------------

def test_delete_removes_a_forwarding_address(api, memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")

    reply = api.delete(address_path("help@acme.com"))

    assert reply.status == 200
    assert reply.body == {"id": "help@acme.com", "email": "help@acme.com", "deleted": True,
                          "secret_deletion_scheduled": False, "recovery_window_days": None}
    assert memory_stores.directory.get_address("help@acme.com") is None


def test_delete_of_a_connector_schedules_its_secrets_deletion(api, memory_stores, connector):
    reply = api.delete(address_path("support@acme.com"))

    assert reply.status == 200
    assert reply.body["secret_deletion_scheduled"] is True
    assert reply.body["recovery_window_days"] == lifecycle.SECRET_RECOVERY_DAYS
    assert connector.connector.secret_arn in memory_stores.secrets.deleted
    assert memory_stores.directory.get_address("support@acme.com") is None


def test_delete_of_the_default_address_is_refused(api, memory_stores, acme, connector):
    verify(memory_stores, "support@acme.com")
    lifecycle.set_default(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")

    reply = api.delete(address_path("support@acme.com"))

    assert reply.status == 409
    assert reply.body["code"] == "default_required"
    assert memory_stores.directory.get_address("support@acme.com") is not None


def test_delete_of_the_system_address_is_refused(api, memory_stores, acme):
    reply = api.delete(address_path("support@acme.mail.relaydesk.test"))

    assert reply.status == 422
    assert reply.body["code"] == "system_address"


def test_delete_of_an_unknown_address_is_not_found(api, acme):
    assert api.delete(address_path("nobody@acme.com")).status == 404


def test_delete_of_the_whole_collection_is_no_route(api, memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")

    reply = api.delete("/support_addresses")

    assert reply.status == 404
    assert reply.body["code"] == "route_not_found"
    assert memory_stores.directory.get_address("help@acme.com") is not None


# --- anything else ------------------------------------------------------------------------------------------------

def test_an_unexpected_failure_is_a_json_500_without_details(memory_stores):
    def broken():
        raise RuntimeError("table relaydesk-directory unreachable")

    resolver = build_resolver(broken)
    api = ApiClient(lambda event: resolver.resolve(event, None))

    reply = api.get(address_path("support@acme.com"))

    assert reply.status == 500
    assert reply.body["code"] == "internal_error"
    assert "unreachable" not in reply.raw


def test_no_response_ever_contains_a_password_or_the_secret(api, memory_stores, acme, connector):
    verify(memory_stores, "support@acme.com")
    secret_arn = connector.connector.secret_arn
    replies = [
        api.get("/support_addresses", account_id=acme.account_id),
        api.get(address_path("support@acme.com")),
        api.put(address_path("support@acme.com"), {"name": "Acme", "default": True}),
        api.put(address_path("support@acme.com"), {"password": PASSWORD}),
        api.post("/support_addresses", {"account_id": acme.account_id, "email": "x@acme.com", "password": PASSWORD}),
        api.put(address_path("support@acme.mail.relaydesk.test"), {"default": True}),
        api.delete(address_path("support@acme.mail.relaydesk.test")),
    ]
    lifecycle.set_default(memory_stores, account_of(memory_stores, "support@acme.mail.relaydesk.test"),
                          "support@acme.mail.relaydesk.test")
    replies.append(api.delete(address_path("support@acme.com")))

    assert memory_stores.directory.get_address("support@acme.com") is None
    for reply in replies:
        assert PASSWORD not in reply.raw
        assert secret_arn not in reply.raw
        assert "credentials_version" not in reply.raw


def test_address_kinds_in_the_schema_match_the_model():
    schema = spec()["components"]["schemas"]["AddressKind"]

    assert schema["enum"] == [kind.value for kind in AddressKind]
