"""The ticket routes' AWS side, against moto built from template.yaml: the user pool read as an account's agents (who
may be assigned a ticket), and the upload form the tenant function signs (an S3 POST policy for one key of the
caller's account)."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest
from relaydesk.accounts import Account
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.store.cognito import CognitoUsers
from relaydesk.store.cognito_users import CognitoUsers as UserDirectory
from relaydesk.tickets.model import Ticket

from tests.unit.api_client import ApiClient, jwt_authorizer

ACME, GLOBEX = "A01ACMEAGENTS00001", "A01GLOBEXAGENTS001"
TICKET = "T01M8000000000000AW"


@pytest.fixture
def pool(aws_stack):
    pool_id = aws_stack.settings.user_pool_id
    users = CognitoUsers(boto3.client("cognito-idp"), pool_id)
    users.add("ann@acme.test", ACME, "agent", password="Ann-Passw0rd-1234", name="Ann Agent\r\nBcc: x@y.z")
    users.add("ada@acme.test", ACME, "admin", password="Ada-Passw0rd-1234")
    users.add("gus@globex.test", GLOBEX, "agent", password="Gus-Passw0rd-1234")
    users.add("off@acme.test", ACME, "agent", password="Off-Passw0rd-1234")
    boto3.client("cognito-idp").admin_disable_user(UserPoolId=pool_id, Username="off@acme.test")
    cognito = boto3.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=pool_id, Username="none@acme.test", MessageAction="SUPPRESS",
                              UserAttributes=[{"Name": "email", "Value": "none@acme.test"},
                                              {"Name": "custom:account_id", "Value": ACME}])
    return pool_id


def test_an_accounts_agents_are_its_enabled_users_in_a_role_group(aws_stack, pool):
    agents = UserDirectory(lambda: boto3.client("cognito-idp"), pool)

    ann = agents.agent(ACME, "ann@acme.test")
    ada = agents.agent(ACME, "ada@acme.test")

    assert (ann.name, ann.email) == ("Ann Agent Bcc: x@y.z", "ann@acme.test") and ann.agent_id  # one line
    assert (ada.name, ada.email) == ("ada", "ada@acme.test")  # no name: the address's local part
    for account, email in ((ACME, "gus@globex.test"), (GLOBEX, "ann@acme.test"), (ACME, "off@acme.test"),
                           (ACME, "none@acme.test"), (ACME, "ghost@acme.test")):
        assert agents.agent(account, email) is None, email


def test_the_tenant_function_assigns_to_a_user_of_the_account_and_signs_an_upload_form_for_it(aws_stack, pool):
    aws_stack.directory.create_account(Account(account_id=ACME, subdomain="acmeagents", name="Acme"))
    aws_stack.tickets.create_ticket(Ticket(ticket_id=TICKET, account_id=ACME, support_address="support@acme.test",
                                           subject="Printer jammed", requester="jane@example.net"))
    api = build_tenant_api(lambda account_id: aws_stack)
    token = {"sub": "sub-bob", "aud": "cli", "token_use": "id", "custom:account_id": ACME, "email": "bob@acme.test",
             "cognito:groups": ["agent"], "exp": int(time.time()) + 3600}
    client = ApiClient(lambda event: api.resolve(event, None), authorizer=jwt_authorizer(token))
    base = f"/accounts/{ACME}/tickets/{TICKET}"

    assigned = client.put(f"{base}/assignee", {"assignee": "Ann@Acme.test"})
    foreign = client.put(f"{base}/assignee", {"assignee": "gus@globex.test"})
    form = client.post(f"{base}/uploads", {"filename": "quote.pdf", "content_type": "application/pdf",
                                           "size": 1234}).body

    assert assigned.body["assignee"]["name"] == "Ann Agent Bcc: x@y.z"

    def assigned_to(who: str) -> list[str]:
        return [t["ticket_id"] for t in client.get(f"/accounts/{ACME}/tickets", assignee=who).body["tickets"]]

    assert [assigned_to(who) for who in ("ANN@acme.test", "ada@acme.test", "none")] == [[TICKET], [], []]
    client.put(f"{base}/assignee", {"assignee": None})
    assert [assigned_to(who) for who in ("ann@acme.test", "none")] == [[], [TICKET]]  # DynamoDB's filter
    assert (foreign.status, foreign.body["code"]) == (422, "assignee_not_agent")
    assert form["key"].startswith(f"attachments/{ACME}/uploads/") and form["key"].endswith("/quote.pdf")
    policy = json.loads(base64.b64decode(form["fields"]["policy"]))
    assert {"key": form["key"]} in policy["conditions"]
    assert {"Content-Type": "application/pdf"} in policy["conditions"]
    assert ["content-length-range", 1, 1234] in policy["conditions"]


def test_an_upload_form_is_signed_by_a_session_of_the_uploads_role_tagged_with_the_callers_account(
        aws_stack, monkeypatch):
    from botocore.client import BaseClient
    from relaydesk.tickets import uploads
    from relaydesk.wiring import _account_sessions, tenant_stores

    _account_sessions.cache_clear()
    assumed = []
    make_call = BaseClient._make_api_call

    def recording(client, operation, params):
        if operation == "AssumeRole":
            assumed.append(params)
        return make_call(client, operation, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", recording)

    first = uploads.upload_form(tenant_stores(ACME), ACME, "quote.pdf", "application/pdf", 10)
    again = uploads.upload_form(tenant_stores(ACME), ACME, "quote.pdf", "application/pdf", 10)
    other = uploads.upload_form(tenant_stores(GLOBEX), GLOBEX, "quote.pdf", "application/pdf", 10)

    uploads_role = [call for call in assumed if call["RoleArn"] == aws_stack.settings.tenant_uploads_role_arn]
    assert [call["Tags"] for call in uploads_role] == [[{"Key": "relaydesk:account-id", "Value": ACME}],
                                                       [{"Key": "relaydesk:account-id", "Value": GLOBEX}]]
    assert first.fields["x-amz-security-token"] == again.fields["x-amz-security-token"]  # one session per account
    assert first.fields["x-amz-security-token"] != other.fields["x-amz-security-token"]
    assert first.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"  # SigV4: S3 refuses SigV2 on KMS objects
    assert not first.fields["x-amz-credential"].startswith("testing/")  # not the function's own credentials
    _account_sessions.cache_clear()
