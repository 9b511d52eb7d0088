"""The API's Lambda handler keeps an address out of both environments: a production and a sandbox stack, each
provisioned in moto from template.yaml, the sandbox one deployed (as docs/DEPLOY.md says) with the production
stack's DirectoryTableArn output as its OtherEnvironmentDirectoryTableArn parameter."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from relaydesk.accounts import Account
from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import SupportAddress, Verification, VerificationStatus
from relaydesk.store.dynamodb import DynamoDirectory

from tests.unit.api_client import ApiClient, address_path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
CONTEXT = SimpleNamespace(function_name="addresses-api", memory_limit_in_mb=512, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:addresses-api")
PRODUCTION_ACCOUNT = Account(account_id="A-PROD-ACME-42", subdomain="acme-live", name="Acme Live")
NOTE_HEADER = "X-Relaydesk-Note"


VERIFIED = Verification(status=VerificationStatus.VERIFIED)  # the other account proved control: it owns it
def _clear_caches() -> None:
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    get_settings.cache_clear()
    aws_stores.cache_clear()


def _deploy_sandbox(monkeypatch: pytest.MonkeyPatch, other_directory_arn: str) -> dict[str, str]:
    """The sandbox stack, its functions' environment set as Lambda would set it."""
    return _deploy(monkeypatch, "relaydesk-sandbox", "sandbox", "mail.sandbox.relaydesk.test", other_directory_arn)


def _deploy(monkeypatch: pytest.MonkeyPatch, name_prefix: str, environment: str, mail_domain: str,
            other_directory_arn: str) -> dict[str, str]:
    from local.aws_resources import provision

    env = provision(boto3.session.Session(), template_path=TEMPLATE, name_prefix=name_prefix,
                    parameters={"Environment": environment, "MailDomain": mail_domain,
                                "OtherEnvironmentDirectoryTableArn": other_directory_arn})
    for name, value in env.items():
        if name.startswith("RELAYDESK_"):
            monkeypatch.setenv(name, value)
    _clear_caches()
    return env


@pytest.fixture
def production_directory():
    """The production stack (deployed first, with the parameter empty) and its directory."""
    from moto import mock_aws

    from local.aws_resources import provision

    with mock_aws():
        env = provision(boto3.session.Session(), template_path=TEMPLATE, name_prefix="relaydesk-production",
                        parameters={"Environment": "production", "MailDomain": "mail.relaydesk.test"})
        directory = DynamoDirectory(boto3.resource("dynamodb").Table(env["RELAYDESK_DIRECTORY_TABLE"]))
        directory.create_account(PRODUCTION_ACCOUNT)
        yield directory
        _clear_caches()


def _arn_of(directory: DynamoDirectory) -> str:
    return boto3.client("dynamodb").describe_table(TableName=directory._table.name)["Table"]["TableArn"]


@pytest.fixture
def sandbox(monkeypatch, production_directory):
    """The sandbox stack naming production's directory: its stores."""
    from relaydesk.wiring import aws_stores

    _deploy_sandbox(monkeypatch, _arn_of(production_directory))
    return aws_stores()


def _handler():
    spec = importlib.util.spec_from_file_location("addresses_api_app_other_environment",
                                                  ROOT / "functions" / "addresses_api" / "app.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def _api() -> tuple[ApiClient, list[dict]]:
    handler, responses = _handler(), []

    def call(event: dict) -> dict:
        responses.append(handler(event, CONTEXT))
        return responses[-1]

    return ApiClient(call), responses


def test_address_in_production_is_refused_by_the_sandbox_api_and_not_created(sandbox, production_directory):
    production_directory.create_address(SupportAddress(email="support@acme.test", forwarding=VERIFIED,
                                                       account_id=PRODUCTION_ACCOUNT.account_id))
    account, _ = lifecycle.create_account(sandbox, "acme", "Acme", "sandbox")
    api, _ = _api()

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "support@acme.test"})

    assert reply.status == 409
    assert reply.body["code"] == "address_in_use"
    assert "already a support address in the production environment" in reply.body["message"]
    assert "never to a sandbox and a production account" in reply.body["message"]
    assert PRODUCTION_ACCOUNT.account_id not in reply.raw and PRODUCTION_ACCOUNT.subdomain not in reply.raw
    assert api.get(address_path("support@acme.test")).status == 404
    assert sandbox.directory.get_address("support@acme.test") is None


def test_address_free_in_production_is_added_in_sandbox_and_production_is_untouched(sandbox, production_directory):
    account, _ = lifecycle.create_account(sandbox, "acme", "Acme", "sandbox")
    api, responses = _api()

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "help@acme.test"})

    assert reply.status == 201
    assert NOTE_HEADER not in responses[-1]["headers"]
    assert sandbox.directory.get_address("help@acme.test").account_id == account.account_id
    assert production_directory.get_address("help@acme.test") is None
    assert production_directory.list_addresses(PRODUCTION_ACCOUNT.account_id) == []


def test_the_production_stack_refuses_an_address_the_sandbox_holds_once_both_are_updated(
        monkeypatch, production_directory):
    """The second half of the deploy order: production is updated with sandbox's table ARN in turn."""
    from relaydesk.wiring import aws_stores

    sandbox_env = _deploy_sandbox(monkeypatch, _arn_of(production_directory))
    sandbox_stores = aws_stores()
    sandbox_account, _ = lifecycle.create_account(sandbox_stores, "acme", "Acme", "sandbox")
    lifecycle.add_forwarding_address(sandbox_stores, sandbox_account.account_id, "support@acme.test")
    sandbox_stores.directory.claim_address(sandbox_account.account_id, "support@acme.test")  # verified in sandbox
    sandbox_arn = boto3.client("dynamodb").describe_table(
        TableName=sandbox_env["RELAYDESK_DIRECTORY_TABLE"])["Table"]["TableArn"]
    _deploy(monkeypatch, "relaydesk-production-2", "production", "mail.relaydesk.test", sandbox_arn)
    production_account, _ = lifecycle.create_account(aws_stores(), "acme", "Acme", "production")
    api, _ = _api()

    reply = api.post("/support_addresses", {"account_id": production_account.account_id,
                                            "email": "support@acme.test"})

    assert (reply.status, reply.body["code"]) == (409, "address_in_use")
    assert "already a support address in the sandbox environment" in reply.body["message"]
    assert aws_stores().directory.get_address("support@acme.test") is None


def test_a_missing_other_table_adds_the_address_with_a_note_and_logs_why(monkeypatch, production_directory, caplog):
    gone = _arn_of(production_directory).replace("relaydesk-production", "relaydesk-deleted")
    _deploy_sandbox(monkeypatch, gone)
    from relaydesk.wiring import aws_stores

    account, _ = lifecycle.create_account(aws_stores(), "acme", "Acme", "sandbox")
    api, responses = _api()

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "help@acme.test"})

    assert reply.status == 201
    assert responses[-1]["headers"][NOTE_HEADER].startswith(
        "the production environment could not be checked for this address")
    assert aws_stores().directory.get_address("help@acme.test") is not None
    (warning,) = [record for record in caplog.records if record.levelname == "WARNING"]
    assert warning.reason.endswith("(ResourceNotFoundException)")
    assert "ResourceNotFound" not in reply.raw + responses[-1]["headers"][NOTE_HEADER]


def test_without_the_parameter_the_api_does_not_read_another_table(monkeypatch, production_directory):
    production_directory.create_address(SupportAddress(email="support@acme.test", forwarding=VERIFIED,
                                                       account_id=PRODUCTION_ACCOUNT.account_id))
    _deploy_sandbox(monkeypatch, "")
    from relaydesk.wiring import aws_stores

    account, _ = lifecycle.create_account(aws_stores(), "acme", "Acme", "sandbox")
    api, responses = _api()

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "support@acme.test"})

    assert reply.status == 201  # as before this check existed: docs/ADMIN.md says to deploy with the parameter
    assert NOTE_HEADER not in responses[-1]["headers"]
    assert aws_stores().peers == ()


def test_the_other_environment_may_be_in_another_region(monkeypatch, production_directory):
    """docs/DEPLOY.md advises separate accounts or regions: the ARN says where the table is."""
    dynamodb = boto3.resource("dynamodb", region_name="eu-west-1")
    table = dynamodb.create_table(
        TableName="relaydesk-production-eu-directory", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    DynamoDirectory(table).create_address(SupportAddress(email="support@acme.test", account_id="A-PROD-EU",
                                                         forwarding=VERIFIED))
    _deploy_sandbox(monkeypatch, table.table_arn)
    from relaydesk.wiring import aws_stores

    account, _ = lifecycle.create_account(aws_stores(), "acme", "Acme", "sandbox")
    api, _ = _api()

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "support@acme.test"})

    assert table.table_arn.startswith("arn:aws:dynamodb:eu-west-1:")
    assert (reply.status, reply.body["code"]) == (409, "address_in_use")
    assert aws_stores().directory.get_address("support@acme.test") is None


def test_access_denied_on_the_other_table_adds_the_address_with_a_note_not_a_500(sandbox, production_directory):
    """The other account's table without a resource policy for us: AWS answers AccessDeniedException."""
    import dataclasses

    from botocore.stub import Stubber
    from relaydesk.api.routes import build_resolver
    from relaydesk.store.peer_directory import PeerDirectory

    table = boto3.session.Session().resource("dynamodb").Table(_arn_of(production_directory))
    stubber = Stubber(table.meta.client)
    stubber.add_client_error("get_item", service_error_code="AccessDeniedException", http_status_code=400,
                             service_message="User: arn:aws:sts::123456789012:assumed-role/api is not authorized")
    stores = dataclasses.replace(sandbox, peers=(("production", PeerDirectory(table, "production")),))
    account, _ = lifecycle.create_account(stores, "acme", "Acme", "sandbox")
    resolver, responses = build_resolver(lambda: stores), []
    api = ApiClient(lambda event: responses.append(resolver.resolve(event, CONTEXT)) or responses[-1])

    with stubber:
        reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "help@acme.test"})

    assert reply.status == 201
    assert responses[-1]["headers"][NOTE_HEADER].startswith("the production environment could not be checked")
    assert "not authorized" not in reply.raw and "assumed-role" not in responses[-1]["headers"][NOTE_HEADER]
    assert sandbox.directory.get_address("help@acme.test") is not None
