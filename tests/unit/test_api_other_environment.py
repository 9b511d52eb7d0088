"""POST /support_addresses keeps an address out of both environments: sandbox and production are separate stacks, and
the API reads the other one's directory as the CLI's `connect` does (memory stores: two directories)."""

from __future__ import annotations

import dataclasses

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import AddressKind, Connector, SupportAddress, Verification, VerificationStatus
from relaydesk.api.routes import build_resolver
from relaydesk.api.uniqueness import NOTE_HEADER
from relaydesk.errors import OtherEnvironmentUnreadable
from relaydesk.store.memory import MemoryDirectory

from tests.unit.api_client import ApiClient, address_path

PRODUCTION_ACCOUNT = Account(account_id="A-PROD-GLOBEX-7", subdomain="globex-prod", name="Globex Corp Production")
PRODUCTION_SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:relaydesk/connector/A-PROD/x-AbCdEf"
VERIFIED = Verification(status=VerificationStatus.VERIFIED)  # the account proved control: it owns the address


class UnreadableDirectory(MemoryDirectory):
    """The other stack's table when this stack may not read it (or it is gone)."""

    def owner_of(self, email: str) -> str | None:
        raise OtherEnvironmentUnreadable("the production environment's directory could not be read "
                                         "(AccessDeniedException)")


@pytest.fixture
def production() -> MemoryDirectory:
    directory = MemoryDirectory()
    directory.create_account(PRODUCTION_ACCOUNT)
    directory.create_address(SupportAddress(email="help@globex.com", account_id=PRODUCTION_ACCOUNT.account_id,
                                            name="Globex Help", forwarding=VERIFIED))
    directory.create_address(SupportAddress(
        email="support@globex.com", account_id=PRODUCTION_ACCOUNT.account_id, kind=AddressKind.SMTP_CONNECTOR,
        forwarding=VERIFIED,
        connector=Connector(host="smtp.globex-internal.example", secret_arn=PRODUCTION_SECRET_ARN)))
    return directory


def sandbox_with(memory_stores, peers):
    return dataclasses.replace(memory_stores, peers=peers)


def client(stores) -> tuple[ApiClient, list[dict]]:
    """The API on `stores`, and the raw Lambda responses (for headers)."""
    resolver = build_resolver(lambda: stores)
    responses: list[dict] = []

    def call(event: dict) -> dict:
        responses.append(resolver.resolve(event, None))
        return responses[-1]

    return ApiClient(call), responses


@pytest.fixture
def sandbox_account(memory_stores) -> Account:
    account, _ = lifecycle.create_account(memory_stores, "globex", "Globex", "sandbox")
    return account


@pytest.fixture
def api(memory_stores):
    resolver = build_resolver(lambda: memory_stores)
    return ApiClient(lambda event: resolver.resolve(event, None))


def test_address_in_production_is_refused_in_sandbox_with_409_address_in_use(memory_stores, sandbox_account,
                                                                               production):
    stores = sandbox_with(memory_stores, (("production", production),))
    api, _ = client(stores)

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "Help@Globex.com"})

    assert reply.status == 409
    assert reply.body["code"] == "address_in_use"
    assert "help@globex.com is already a support address in the production environment" in reply.body["message"]
    assert "never to a sandbox and a production account" in reply.body["message"]
    assert "relaydesk --env production addresses delete help@globex.com" in reply.body["action"]
    assert api.get(address_path("help@globex.com")).status == 404  # not created in sandbox
    assert [a.email for a in stores.directory.list_addresses(sandbox_account.account_id)] == [
        "support@globex.mail.relaydesk.test"]


def test_refusal_names_the_environment_but_not_the_other_account(memory_stores, sandbox_account, production):
    api, _ = client(sandbox_with(memory_stores, (("production", production),)))

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "help@globex.com"})

    assert reply.status == 409
    for detail in (PRODUCTION_ACCOUNT.account_id, PRODUCTION_ACCOUNT.subdomain, PRODUCTION_ACCOUNT.name,
                   "Globex Help"):
        assert detail not in reply.raw


def test_address_free_in_both_environments_is_added_without_a_note(memory_stores, sandbox_account, production):
    stores = sandbox_with(memory_stores, (("production", production),))
    api, responses = client(stores)

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "billing@globex.com"})

    assert reply.status == 201 and reply.body["email"] == "billing@globex.com"
    assert NOTE_HEADER not in responses[-1]["headers"]
    assert stores.directory.get_address("billing@globex.com") is not None
    assert production.get_address("billing@globex.com") is None  # the other environment is only read


def test_production_refuses_an_address_that_is_in_the_sandbox(memory_stores):
    sandbox = MemoryDirectory()
    sandbox.create_address(SupportAddress(email="support@acme.com", account_id="A-SANDBOX", forwarding=VERIFIED))
    production_settings = memory_stores.settings.model_copy(update={"environment": "production"})
    stores = dataclasses.replace(memory_stores, settings=production_settings, peers=(("sandbox", sandbox),))
    account, _ = lifecycle.create_account(stores, "acme", "Acme", "production")
    api, _ = client(stores)

    reply = api.post("/support_addresses", {"account_id": account.account_id, "email": "support@acme.com"})

    assert (reply.status, reply.body["code"]) == (409, "address_in_use")
    assert "in the sandbox environment" in reply.body["message"]
    assert stores.directory.get_address("support@acme.com") is None


def test_unreadable_other_environment_adds_the_address_with_a_note_as_the_cli_does(memory_stores, sandbox_account):
    stores = sandbox_with(memory_stores, (("production", UnreadableDirectory()),))
    api, responses = client(stores)

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "help@globex.com"})

    assert reply.status == 201
    assert stores.directory.get_address("help@globex.com") is not None
    note = responses[-1]["headers"][NOTE_HEADER]
    assert note == ("the production environment could not be checked for this address; make sure the address is "
                    "not a support address there")
    assert "AccessDenied" not in reply.raw + note  # the AWS reason goes to the log, not to the caller


def test_without_an_other_environment_post_behaves_as_before(api, memory_stores, sandbox_account):
    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "help@globex.com"})

    assert reply.status == 201
    assert memory_stores.peers == ()
    assert "environment" not in reply.raw


def test_the_other_environment_is_checked_after_this_ones_rules(memory_stores, sandbox_account, production):
    """A system address is still a 422, not a note or a lookup elsewhere."""
    api, _ = client(sandbox_with(memory_stores, (("production", UnreadableDirectory()),)))

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id,
                                            "email": "support@globex.mail.relaydesk.test"})

    assert (reply.status, reply.body["code"]) == (422, "system_address")


def test_put_cannot_change_an_address_into_one_of_the_other_environment(memory_stores, sandbox_account, production):
    stores = sandbox_with(memory_stores, (("production", production),))
    lifecycle.add_forwarding_address(stores, sandbox_account.account_id, "billing@globex.com")
    api, _ = client(stores)

    reply = api.put(address_path("billing@globex.com"), {"email": "help@globex.com"})

    assert (reply.status, reply.body["code"]) == (422, "validation_error")
    assert stores.directory.get_address("billing@globex.com") is not None
    assert stores.directory.get_address("help@globex.com") is None


def test_refusing_a_production_connector_address_leaks_neither_its_secret_nor_its_smarthost(
        memory_stores, sandbox_account, production):
    api, _ = client(sandbox_with(memory_stores, (("production", production),)))

    reply = api.post("/support_addresses", {"account_id": sandbox_account.account_id, "email": "support@globex.com"})

    assert (reply.status, reply.body["code"]) == (409, "address_in_use")
    for detail in (PRODUCTION_SECRET_ARN, "relaydesk/connector", "smtp.globex-internal.example",
                   PRODUCTION_ACCOUNT.account_id):
        assert detail not in reply.raw
