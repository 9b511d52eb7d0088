"""The support addresses API's Lambda handler against moto resources built from template.yaml: every route through
the deployed entry point, responses checked against the OpenAPI document, no credential in any of them."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from relaydesk.accounts import Account, system_address
from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress, VerificationStatus
from relaydesk.credentials import SmtpCredentials

from tests.unit.api_client import ApiClient, address_path, check_against_spec

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
CONTEXT = SimpleNamespace(function_name="addresses-api", memory_limit_in_mb=512, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:addresses-api")


@pytest.fixture
def handler(aws_stack):
    spec = importlib.util.spec_from_file_location("addresses_api_app_under_test",
                                                  ROOT / "functions" / "addresses_api" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


@pytest.fixture
def api(handler):
    return ApiClient(lambda event: handler(event, CONTEXT))


def connect(stores, smarthost, account_id: str, email: str) -> SupportAddress:
    credentials = SmtpCredentials(host="127.0.0.1", port=smarthost.port, username=smarthost.username,
                                  password=smarthost.password, ca_bundle_pem=smarthost.ca_pem)
    address, _ = lifecycle.connect_address(stores, account_id, email, credentials, "Acme Support")
    return address


def test_an_admin_manages_addresses_through_the_api(aws_stack, api, smarthost):
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    connector = connect(aws_stack, smarthost, account.account_id, "support@acme.test")

    created = api.post("/support_addresses", {"account_id": account.account_id, "email": "help@acme.test"})
    listed = api.get("/support_addresses", account_id=account.account_id)
    shown = api.get(address_path("support@acme.test"))
    renamed = api.put(address_path("help@acme.test"), {"name": "Acme Help"})
    refused = api.put(address_path("help@acme.test"), {"default": True})
    deleted = api.delete(address_path("support@acme.test"))

    assert created.status == 201 and created.body["kind"] == "forwarding"
    system = system_address("acme", aws_stack.settings.mail_domain)
    assert listed.status == 200
    assert [a["email"] for a in listed.body["support_addresses"]] == sorted(["help@acme.test", system,
                                                                             "support@acme.test"])
    assert shown.body["connector"]["state"] == "pending"
    assert renamed.body["name"] == "Acme Help"
    assert (refused.status, refused.body["code"]) == (409, "default_requires_verification")
    assert deleted.body["secret_deletion_scheduled"] is True
    described = boto3.client("secretsmanager").describe_secret(SecretId=connector.connector.secret_arn)
    assert "DeletedDate" in described  # scheduled, recoverable for the recovery window
    assert aws_stack.directory.get_address("support@acme.test") is None
    for reply in (created, listed, shown, renamed, refused, deleted):
        assert smarthost.password not in reply.raw
        assert connector.connector.secret_arn not in reply.raw


def test_post_of_a_connector_address_creates_nothing(aws_stack, api):
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    stack_secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]  # the stack's own (link signing key)

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "support@acme.test",
                                            "kind": "smtp_connector", "password": "x"})

    assert (reply.status, reply.body["code"]) == (422, "connector_requires_admin_path")
    assert aws_stack.directory.get_address("support@acme.test") is None
    assert boto3.client("secretsmanager").list_secrets()["SecretList"] == stack_secrets


def test_the_sample_events_work_against_the_handler(aws_stack, handler, smarthost):
    """events/addresses_api_*.json (for `sam local invoke`) in the order an admin would send them."""
    account_id = json.loads((EVENTS / "addresses_api_list.json").read_text())["queryStringParameters"]["account_id"]
    account = Account(account_id=account_id, subdomain="acme", name="Acme")
    aws_stack.directory.create_account(account)
    system = system_address(account.subdomain, aws_stack.settings.mail_domain)
    aws_stack.directory.create_address(SupportAddress(email=system, account_id=account_id,
                                                      kind=AddressKind.SYSTEM, is_default=True))
    address = connect(aws_stack, smarthost, account_id, "support@acme.test")
    address.forwarding.status = address.outbound.status = VerificationStatus.VERIFIED
    address.connector.state = ConnectorState.ACTIVE
    aws_stack.directory.put_address(address)

    statuses = {}
    for name in ("list", "show", "create", "update"):
        event = json.loads((EVENTS / f"addresses_api_{name}.json").read_text())
        response = handler(event, CONTEXT)
        check_against_spec(event["requestContext"]["http"]["method"], event["rawPath"], response["statusCode"],
                           json.loads(response["body"]))
        statuses[name] = response["statusCode"]

    assert statuses == {"list": 200, "show": 200, "create": 201, "update": 200}
    assert aws_stack.directory.get_address("support@acme.test").is_default is True
    # The sample DELETE targets the address the sample PUT just made the default: refused, as it must be.
    event = json.loads((EVENTS / "addresses_api_delete.json").read_text())
    response = handler(event, CONTEXT)
    assert (response["statusCode"], json.loads(response["body"])["code"]) == (409, "default_required")


def test_a_password_sent_to_the_api_by_mistake_is_in_no_response_or_log(aws_stack, api, capsys, caplog):
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")
    password = "Sent-By-Mistake-Pa55!"

    replies = [api.post("/support_addresses", {"account_id": account.account_id, "email": "help@acme.test",
                                               "password": password}),
               api.post("/support_addresses", {"account_id": account.account_id, "email": password}),
               api.put(address_path("help@acme.test"), {"smtp_password": password})]

    out = capsys.readouterr()
    assert [r.status for r in replies] == [422, 422, 422]  # refused before any lookup
    for text in [r.raw for r in replies] + [out.out, out.err, caplog.text]:
        assert password not in text
