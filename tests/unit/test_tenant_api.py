"""The tenant API against the in-memory stores: the gate (401 / 404 / 403 before any route code), every route acting
for the caller's own account only, hostile input, and nothing secret or foreign in any response."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from relaydesk.addresses import lifecycle
from relaydesk.api.gate import Refused, admit
from relaydesk.api.identity import Role
from relaydesk.api.routing import RouteTable
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.credentials import SmtpCredentials

from tests.unit.api_client import ApiClient, http_event, jwt_authorizer
from tests.unit.test_api import PASSWORD, passing_checker

CLIENT_ID = "cli-client"


def claims(account_id: str, *groups: str, **overrides) -> dict:
    token = {"sub": f"user-of-{account_id}", "aud": CLIENT_ID, "token_use": "id", "custom:account_id": account_id,
             "cognito:groups": list(groups), "exp": int(time.time()) + 3600, "iss": "https://cognito-idp.test/pool"}
    token.update(overrides)
    return {name: value for name, value in token.items() if value is not None}


@pytest.fixture
def acme(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme Corp", "production")
    return account


@pytest.fixture
def globex(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "globex", "Globex Industries", "production")
    return account


@pytest.fixture
def tenant_api(memory_stores):
    api = build_tenant_api(lambda account_id: memory_stores, console_client_id="console-client")
    return api


def client(tenant_api, token_claims: dict | None) -> ApiClient:
    return ApiClient(lambda event: tenant_api.resolve(event, None),
                     authorizer=jwt_authorizer(token_claims) if token_claims is not None else {})


@pytest.fixture
def acme_connector(memory_stores, acme):
    credentials = SmtpCredentials(host="smtp.acme.com", username="support@acme.com", password=PASSWORD)
    address, _ = lifecycle.connect_address(memory_stores, acme.account_id, "support@acme.com", credentials,
                                           "Acme Support", checker=passing_checker)
    return address


def base(account) -> str:
    return f"/accounts/{account.account_id}"


def address_path(account, email: str) -> str:
    return f"{base(account)}/support_addresses/{quote(email, safe='')}"


# --- own account -----------------------------------------------------------------------------------------------

def test_an_admin_lists_shows_adds_renames_and_deletes_in_its_own_account(tenant_api, memory_stores, acme):
    api = client(tenant_api, claims(acme.account_id, "admin"))

    assert api.get(base(acme)).body["system_address"] == "support@acme.mail.relaydesk.test"
    created = api.post(f"{base(acme)}/support_addresses", {"email": "Help@Acme.com", "name": "Acme Help"})
    assert (created.status, created.body["account_id"]) == (201, acme.account_id)
    assert [a["email"] for a in api.get(f"{base(acme)}/support_addresses").body["support_addresses"]] == [
        "help@acme.com", "support@acme.mail.relaydesk.test"]
    assert api.put(address_path(acme, "help@acme.com"), {"name": "Helpdesk"}).body["name"] == "Helpdesk"
    assert api.delete(address_path(acme, "help@acme.com")).status == 200
    assert memory_stores.directory.get_account_address(acme.account_id, "help@acme.com") is None


def test_an_agent_reads_but_every_change_is_403_and_changes_nothing(tenant_api, memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com", "Acme Help")
    api = client(tenant_api, claims(acme.account_id, "agent"))

    assert api.get(f"{base(acme)}/support_addresses").status == 200
    assert api.get(address_path(acme, "help@acme.com")).status == 200
    replies = [api.post(f"{base(acme)}/support_addresses", {"email": "new@acme.com"}),
               api.put(address_path(acme, "help@acme.com"), {"name": "Renamed"}),
               api.delete(address_path(acme, "help@acme.com"))]

    assert [(r.status, r.body["code"]) for r in replies] == [(403, "forbidden")] * 3
    assert "needs the admin role; your role is agent" in replies[0].body["message"]
    assert memory_stores.directory.get_account_address(acme.account_id, "help@acme.com").name == "Acme Help"
    assert memory_stores.directory.get_account_address(acme.account_id, "new@acme.com") is None


def test_a_user_in_no_group_may_do_nothing(tenant_api, acme):
    reply = client(tenant_api, claims(acme.account_id)).get(base(acme))

    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    assert "no role" in reply.body["message"]


def test_an_admin_in_both_groups_acts_as_admin(tenant_api, acme):
    reply = client(tenant_api, claims(acme.account_id, "agent", "admin")).post(
        f"{base(acme)}/support_addresses", {"email": "help@acme.com"})

    assert reply.status == 201


# --- another account -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("method,suffix,body", [
    ("GET", "", None), ("GET", "/support_addresses", None), ("POST", "/support_addresses", {"email": "x@globex.com"}),
    ("GET", "/support_addresses/help%40globex.com", None), ("PUT", "/support_addresses/help%40globex.com",
                                                            {"name": "IT Security - action required"}),
    ("DELETE", "/support_addresses/help%40globex.com", None)])
def test_another_accounts_paths_answer_404_exactly_like_an_account_that_does_not_exist(
        tenant_api, memory_stores, acme, globex, method, suffix, body):
    lifecycle.add_forwarding_address(memory_stores, globex.account_id, "help@globex.com", "Globex Help")
    api = client(tenant_api, claims(acme.account_id, "admin"))

    theirs = api.request(method, base(globex) + suffix, body=body)
    nobodys = api.request(method, "/accounts/A00000000000000NONE" + suffix, body=body)

    assert (theirs.status, theirs.raw) == (nobodys.status, nobodys.raw) == (404, theirs.raw)
    assert theirs.body == {"code": "not_found", "message": "no such resource"}
    victim = memory_stores.directory.get_account_address(globex.account_id, "help@globex.com")
    assert victim is not None and victim.name == "Globex Help"
    assert memory_stores.directory.get_account_address(globex.account_id, "x@globex.com") is None


def test_another_accounts_address_under_ones_own_path_is_not_found_like_a_missing_one(
        tenant_api, memory_stores, acme, globex):
    lifecycle.add_forwarding_address(memory_stores, globex.account_id, "help@globex.com", "Globex Help")
    api = client(tenant_api, claims(acme.account_id, "admin"))

    for method, body in (("GET", None), ("PUT", {"name": "Pwned"}), ("DELETE", None)):
        theirs = api.request(method, address_path(acme, "help@globex.com"), body=body)
        missing = api.request(method, address_path(acme, "nobody@globex.com"), body=body)
        assert theirs.status == missing.status == 404
        assert theirs.body["message"].replace("help@", "nobody@") == missing.body["message"]
    assert memory_stores.directory.get_account_address(globex.account_id, "help@globex.com").name == "Globex Help"


def test_no_response_names_another_tenant_or_carries_a_secret(tenant_api, memory_stores, acme, globex,
                                                               acme_connector):
    api = client(tenant_api, claims(globex.account_id, "admin"))
    own = client(tenant_api, claims(acme.account_id, "admin"))
    replies = [api.get(base(acme)), api.get(address_path(acme, "support@acme.com")),
               api.post(f"{base(globex)}/support_addresses", {"email": "support@acme.com"}),
               own.get(address_path(acme, "support@acme.com")), own.get(f"{base(acme)}/support_addresses"),
               own.delete(address_path(acme, "support@acme.com"))]

    assert replies[-1].body["secret_deletion_scheduled"] is True
    for reply in replies[:3]:
        for foreign in (acme.account_id, acme.name, "acme.mail.relaydesk.test", "Acme Support"):
            assert foreign not in reply.raw
    for reply in replies:
        assert PASSWORD not in reply.raw
        assert acme_connector.connector.secret_arn not in reply.raw and "secretsmanager" not in reply.raw


def test_a_url_encoded_account_id_of_ones_own_account_is_the_same_account(tenant_api, acme):
    encoded = "".join(f"%{ord(ch):02X}" for ch in acme.account_id)
    reply = client(tenant_api, claims(acme.account_id, "agent")).get(f"/accounts/{encoded}/support_addresses")

    assert reply.status == 200
    assert all(a["account_id"] == acme.account_id for a in reply.body["support_addresses"])


@pytest.mark.parametrize("twist", [str.lower, lambda a: a + "%00", lambda a: a + "/..", lambda a: " " + a])
def test_a_look_alike_of_ones_own_account_id_is_another_account(tenant_api, acme, twist):
    reply = client(tenant_api, claims(acme.account_id, "admin")).get(
        f"/accounts/{twist(acme.account_id)}/support_addresses")

    assert reply.status == 404


# --- no identity -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("token", [
    None,  # no authorizer context at all
    {"jwt": {"claims": {}}},
    jwt_authorizer(claims("A1", "admin", exp=int(time.time()) - 1)),  # expired
    jwt_authorizer(claims("A1", "admin", token_use="access")),  # an access token carries no account
    jwt_authorizer(claims("A1", "admin", **{"custom:account_id": None})),
    jwt_authorizer(claims("A1", "admin", exp="tomorrow")),
    jwt_authorizer(claims("A1/../A2", "admin")),
], ids=["none", "empty", "expired", "access-token", "no-account", "bad-exp", "hostile-account"])
def test_without_a_valid_id_token_every_route_is_401(tenant_api, memory_stores, token):
    event = http_event("POST", "/accounts/A1/support_addresses", body={"email": "x@acme.com"}, authorizer=token)
    if token is None:
        del event["requestContext"]["authorizer"]

    response = tenant_api.resolve(event, None)

    assert response["statusCode"] == 401
    assert json.loads(response["body"])["code"] == "unauthorized"
    assert response["headers"]["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("event", [None, [], "GET /", {}, {"requestContext": None}, {"rawPath": "/accounts/x"}])
def test_malformed_events_get_401_never_a_traceback(tenant_api, event):
    response = tenant_api.resolve(event, None)

    assert response["statusCode"] == 401


def test_an_authenticated_event_without_method_or_path_is_400(tenant_api, acme):
    event = {"requestContext": {"authorizer": jwt_authorizer(claims(acme.account_id, "admin"))}}

    response = tenant_api.resolve(event, None)

    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "bad_request"


# --- hostile input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [
    "{not json", "\x00", '{"email": "a@b.com", "email": ', b"\xff\xfe".decode("latin-1")])
def test_a_body_that_is_not_json_is_400(tenant_api, acme, body):
    reply = client(tenant_api, claims(acme.account_id, "admin")).post(f"{base(acme)}/support_addresses", body)

    assert (reply.status, reply.body["code"]) == (400, "bad_request")


def test_a_base64_body_that_is_not_base64_is_400_not_500(tenant_api, acme):
    event = http_event("POST", f"{base(acme)}/support_addresses", body="***not base64***",
                       authorizer=jwt_authorizer(claims(acme.account_id, "admin")))
    event["isBase64Encoded"] = True

    response = tenant_api.resolve(event, None)

    assert response["statusCode"] in (400, 422)


@pytest.mark.parametrize("email", ["help\x00@acme.com", "help@acme.com\r\nBcc: all@acme.com", "he\x1blp@acme.com",
                                   "help@acme.com\x7f", "x" * 65 + "@acme.com", "a@" + "b" * 250 + ".com"],
                         ids=["nul", "crlf", "esc", "del", "long-local-part", "too-long"])
def test_an_address_with_control_characters_or_too_long_is_refused_and_not_echoed(tenant_api, memory_stores, acme,
                                                                                   email):
    reply = client(tenant_api, claims(acme.account_id, "admin")).post(f"{base(acme)}/support_addresses",
                                                                       {"email": email})

    assert (reply.status, reply.body["code"]) == (422, "validation_error")
    assert email not in reply.raw
    assert len(memory_stores.directory.list_addresses(acme.account_id)) == 1  # the system address only


@pytest.mark.parametrize("name", ["Acme\r\nBcc: everyone@example.com", "Acme\x00", "x" * 256])
def test_a_name_with_control_characters_or_over_255_characters_is_refused(tenant_api, memory_stores, acme, name):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com", "Acme Help")
    api = client(tenant_api, claims(acme.account_id, "admin"))

    created = api.post(f"{base(acme)}/support_addresses", {"email": "new@acme.com", "name": name})
    renamed = api.put(address_path(acme, "help@acme.com"), {"name": name})

    assert created.status == renamed.status == 422
    assert memory_stores.directory.get_account_address(acme.account_id, "help@acme.com").name == "Acme Help"


def test_a_connector_address_cannot_be_created_through_the_tenant_api(tenant_api, memory_stores, acme):
    reply = client(tenant_api, claims(acme.account_id, "admin")).post(
        f"{base(acme)}/support_addresses", {"email": "help@acme.com", "kind": "smtp_connector",
                                            "password": PASSWORD})

    assert (reply.status, reply.body["code"]) == (422, "connector_requires_admin_path")
    assert PASSWORD not in reply.raw


def test_an_unknown_route_of_ones_own_account_is_404(tenant_api, acme):
    api = client(tenant_api, claims(acme.account_id, "admin"))

    assert api.request("DELETE", f"{base(acme)}/support_addresses").status == 404
    assert api.get(f"{base(acme)}/secrets").body["code"] == "route_not_found"
    assert api.get("/support_addresses").status == 404  # the operator's paths are not on this API


# --- the route table -------------------------------------------------------------------------------------------

def test_a_console_only_route_admits_only_tokens_of_the_console_app_client():
    app = APIGatewayHttpResolver()
    table = RouteTable(app)

    @table.post("/support_addresses/<id>/connector", role=Role.ADMIN, console_only=True)
    def connect(account_id: str, id: str) -> dict:
        return {}

    event = http_event("POST", "/accounts/A1/support_addresses/x/connector")
    event["requestContext"]["authorizer"] = jwt_authorizer(claims("A1", "admin"))
    with pytest.raises(Refused) as refused:
        admit(event, table, console_client_id="console-client")
    assert (refused.value.status, refused.value.body.code) == (403, "console_only")

    event["requestContext"]["authorizer"] = jwt_authorizer(claims("A1", "admin", aud="console-client"))
    assert admit(event, table, console_client_id="console-client").account_id == "A1"
    with pytest.raises(Refused):
        admit(event, table, console_client_id="")  # no console configured: nobody


def test_every_tenant_route_names_its_role_and_lies_under_the_account():
    table = build_tenant_api(lambda account_id: None).table

    assert table.rules
    for rule in table.rules:
        assert rule.rule.startswith("/accounts/<account_id>")
        assert rule.role in (Role.AGENT, Role.ADMIN)
    tickets = [rule for rule in table.rules if rule.rule.startswith("/accounts/<account_id>/tickets")]
    writes = [rule for rule in table.rules if rule.method != "GET" and rule not in tickets]
    assert writes and all(rule.role is Role.ADMIN for rule in writes)  # an agent only reads the account's set-up
    assert tickets and all(rule.role is Role.AGENT for rule in tickets)  # and works its tickets (admins may too)


def test_base64_encoded_json_body_from_api_gateway_is_read(tenant_api, memory_stores, acme):
    body = base64.b64encode(json.dumps({"email": "help@acme.com"}).encode()).decode()
    event = http_event("POST", f"{base(acme)}/support_addresses", body=body,
                       authorizer=jwt_authorizer(claims(acme.account_id, "admin")))
    event["isBase64Encoded"] = True

    response = tenant_api.resolve(event, None)

    assert response["statusCode"] == 201
