"""An address's sending limits through the console's routes: an admin of the account sees the provider's figures
beside the ones in force, lowers them (never above a provider's published figure: 400 with the provider's figure)
and resets them; agents, other accounts and hostile values change nothing, and no response carries a secret."""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.limits import limits_of, set_limits
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.credentials import SmtpCredentials

from tests.unit.api_client import ApiClient, jwt_authorizer

PASSWORD = "Limits-s3cret-Pa55!"
MAILBOX = "support@acme.com"


def passing(credentials, **_):
    steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate", "auth")]
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps)


@pytest.fixture
def acme(memory_stores):
    account = lifecycle.create_account(memory_stores, "acme", "Acme Corp", "production")[0]
    # as `relaydesk addresses connect --preset microsoft365 --host ...` leaves it: the provider named, no limit set
    lifecycle.connect_address(memory_stores, account.account_id, MAILBOX,
                              SmtpCredentials(host="127.0.0.1", username=MAILBOX, password=PASSWORD), checker=passing)
    set_limits(memory_stores.directory, account.account_id, MAILBOX, provider="microsoft365")
    return account


@pytest.fixture
def globex(memory_stores):
    return lifecycle.create_account(memory_stores, "globex", "Globex Industries", "production")[0]


@pytest.fixture
def api(memory_stores):
    return build_tenant_api(lambda account_id: memory_stores, console_client_id="console-client")


def as_user(api, account, *groups) -> ApiClient:
    claims = {"sub": f"user-of-{account.account_id}", "aud": "console-client", "token_use": "id",
              "custom:account_id": account.account_id, "cognito:groups": list(groups),
              "exp": int(time.time()) + 3600, "iss": "https://cognito-idp.test/pool"}
    return ApiClient(lambda event: api.resolve(event, None), authorizer=jwt_authorizer(claims))


def limits_path(account, email: str = MAILBOX) -> str:
    return f"/accounts/{account.account_id}/support_addresses/{quote(email, safe='')}/limits"


def by_name(body: dict) -> dict[str, dict]:
    return {row["name"]: row for row in body["limits"]}


def in_force(stores, account) -> dict:
    return limits_of(stores.directory.get_account_address(account.account_id, MAILBOX)).model_dump()


def test_an_admin_sees_microsofts_published_limits_beside_the_ones_in_force(api, acme):
    shown = as_user(api, acme, "admin").get(limits_path(acme))

    assert shown.status == 200
    assert (shown.body["provider"], shown.body["published"]) == ("microsoft365", True)
    rows = by_name(shown.body)
    assert rows["messages_per_minute"] == {"name": "messages_per_minute", "provider_value": 30, "value": 30,
                                           "lowered": False, "maximum": 30}
    assert (rows["recipients_per_day"]["value"], rows["recipients_per_message"]["value"],
            rows["connections"]["value"]) == (10_000, 500, 3)
    assert rows["messages_per_day"]["provider_value"] is None  # Microsoft publishes none: no limit
    assert PASSWORD not in shown.raw and "arn:" not in shown.raw


def test_lowering_keeps_the_value_for_the_relay_and_reset_gives_the_providers_back(memory_stores, api, acme):
    admin = as_user(api, acme, "admin")

    lowered = admin.put(limits_path(acme), {"messages_per_minute": 12, "connections": 1})

    assert lowered.status == 200
    rows = by_name(lowered.body)
    assert (rows["messages_per_minute"]["value"], rows["messages_per_minute"]["lowered"]) == (12, True)
    assert (rows["connections"]["value"], rows["recipients_per_day"]["lowered"]) == (1, False)
    assert in_force(memory_stores, acme)["messages_per_minute"] == 12  # what the relay's shaper reads
    assert by_name(admin.get(limits_path(acme)).body)["messages_per_minute"]["value"] == 12
    # the body replaces the set: a limit left out follows the provider's again
    assert by_name(admin.put(limits_path(acme), {"connections": 2}).body)["messages_per_minute"]["value"] == 30

    reset = admin.delete(limits_path(acme))

    assert reset.status == 200
    assert not any(row["lowered"] for row in reset.body["limits"])
    assert memory_stores.directory.get_account_address(acme.account_id, MAILBOX).connector.limits is None


def test_raising_a_published_limit_is_refused_with_the_providers_figure_and_nothing_changes(memory_stores, api, acme):
    admin = as_user(api, acme, "admin")
    admin.put(limits_path(acme), {"messages_per_minute": 12})

    refused = admin.put(limits_path(acme), {"messages_per_minute": 31})

    assert refused.status == 400
    assert "Microsoft 365 allows at most 30 for messages per minute; 31 is above it" in refused.body["message"]
    assert in_force(memory_stores, acme)["messages_per_minute"] == 12


@pytest.mark.parametrize("hostile", [
    {"messages_per_minute": "10"}, {"messages_per_minute": 10.5}, {"messages_per_minute": True},
    {"messages_per_minute": 0}, {"messages_per_minute": -5}, {"messages_per_minute": 10**30},
    {"connections": 21}, {"recipients_per_message": [5]}, {"secret_arn": "arn:aws:secretsmanager:x"},
    {"provider": "postfix"},  # choosing another profile (higher ceilings) is not a console change
])
def test_a_hostile_value_is_refused_with_words_and_nothing_changes(memory_stores, api, acme, hostile):
    before = in_force(memory_stores, acme)

    refused = as_user(api, acme, "admin").put(limits_path(acme), hostile)

    assert refused.status in (400, 422)
    assert refused.body["message"] and "Traceback" not in refused.raw
    assert in_force(memory_stores, acme) == before


def test_a_body_that_is_not_json_is_a_400(memory_stores, api, acme):
    refused = as_user(api, acme, "admin").request("PUT", limits_path(acme), body="{not json")
    assert (refused.status, refused.body["code"]) == (400, "bad_request")


def test_an_agent_may_neither_see_nor_change_the_limits(memory_stores, api, acme):
    agent = as_user(api, acme, "agent")

    assert agent.get(limits_path(acme)).status == 403
    assert agent.put(limits_path(acme), {"messages_per_minute": 1}).status == 403
    assert agent.delete(limits_path(acme)).status == 403
    assert in_force(memory_stores, acme)["messages_per_minute"] == 30


def test_another_accounts_address_is_not_found_and_untouched(memory_stores, api, acme, globex):
    intruder = as_user(api, globex, "admin")

    assert intruder.get(limits_path(globex)).status == 404  # acme's address under globex's own path
    assert intruder.put(limits_path(globex), {"messages_per_minute": 1}).status == 404
    assert intruder.put(limits_path(acme), {"messages_per_minute": 1}).status == 404  # acme's path: not its own
    assert intruder.delete(limits_path(acme)).status == 404
    assert in_force(memory_stores, acme)["messages_per_minute"] == 30


def test_a_forwarding_address_has_no_limits_to_show(memory_stores, api, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")
    refused = as_user(api, acme, "admin").get(limits_path(acme, "help@acme.com"))
    assert (refused.status, refused.body["code"]) == (409, "not_a_connector")


def test_a_server_without_published_limits_takes_any_bounded_value(memory_stores, api, acme):
    set_limits(memory_stores.directory, acme.account_id, MAILBOX, provider="postfix", reset=True)
    admin = as_user(api, acme, "admin")

    raised = admin.put(limits_path(acme), {"messages_per_minute": 600})

    assert raised.status == 200 and raised.body["published"] is False
    assert by_name(raised.body)["messages_per_minute"] == {"name": "messages_per_minute", "provider_value": 60,
                                                           "value": 600, "lowered": True, "maximum": 6000}
    assert admin.put(limits_path(acme), {"messages_per_minute": 6001}).status == 422  # past the sanity bound


def test_the_wizards_microsoft_365_preset_gives_the_mailbox_microsofts_limits_whatever_its_host(
        memory_stores, api, globex, monkeypatch):
    from dataclasses import replace

    from relaydesk.jobs import runner
    from relaydesk.store.memory import MemoryJobs, MemoryLauncher

    stores = replace(memory_stores, jobs=MemoryJobs(), launcher=MemoryLauncher())
    wizard_api = build_tenant_api(lambda account_id: stores, console_client_id="console-client")
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", passing)
    form = {"email": "support@globex.com", "preset": "microsoft365", "host": "relay.globex.com", "port": 587,
            "tls_mode": "starttls", "password": PASSWORD}

    assert as_user(wizard_api, globex, "admin").post(f"/accounts/{globex.account_id}/connections", form).status == 202
    runner.run(stores, *stores.launcher.launched.pop())

    shown = as_user(wizard_api, globex, "admin").get(limits_path(globex, "support@globex.com"))
    assert (shown.body["provider"], by_name(shown.body)["messages_per_minute"]["maximum"]) == ("microsoft365", 30)
