"""The tenant boundary in template.yaml: the user pool (one account per user, immutable; roles as groups), the app
clients, the tenant API's JWT authorizer on every route, and the account-tagged role for connector secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from relaydesk.api.tenant_routes import build_tenant_api

from local.aws_resources import http_api_routes, load_template

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
TAG = "relaydesk:account-id"


@pytest.fixture(scope="module")
def resources() -> dict:
    return load_template(TEMPLATE)["Resources"]


def test_a_user_belongs_to_one_account_it_cannot_change_and_nobody_signs_up_alone(resources):
    pool = resources["UserPool"]["Properties"]
    (account,) = [attribute for attribute in pool["Schema"] if attribute["Name"] == "account_id"]

    assert account["Mutable"] is False and account["AttributeDataType"] == "String"
    assert account["StringAttributeConstraints"]["MaxLength"] == "64"
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "OPTIONAL" and pool["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert pool["Policies"]["PasswordPolicy"]["MinimumLength"] >= 12
    assert resources["UserPool"]["DeletionPolicy"] == "Retain"


def test_roles_are_the_admin_and_agent_groups(resources):
    groups = {res["Properties"]["GroupName"]: res["Properties"] for res in resources.values()
              if res["Type"] == "AWS::Cognito::UserPoolGroup"}

    assert set(groups) == {"admin", "agent"}
    assert all(group["UserPoolId"] == {"Ref": "UserPool"} for group in groups.values())
    assert groups["admin"]["Precedence"] < groups["agent"]["Precedence"]


def test_app_clients_are_public_read_the_account_and_can_never_write_it(resources):
    clients = {name: res["Properties"] for name, res in resources.items()
               if res["Type"] == "AWS::Cognito::UserPoolClient"}

    assert set(clients) == {"CliClient", "ConsoleClient"}
    assert set(clients["CliClient"]["ExplicitAuthFlows"]) == {
        "ALLOW_USER_SRP_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    assert set(clients["ConsoleClient"]["ExplicitAuthFlows"]) == {"ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"}
    for client in clients.values():
        assert client["GenerateSecret"] is False  # a CLI and a browser cannot keep a secret
        assert "custom:account_id" in client["ReadAttributes"]
        assert not [a for a in client["WriteAttributes"] if a.startswith("custom:")]
        assert client["PreventUserExistenceErrors"] == "ENABLED"


def test_the_tenant_api_takes_only_id_tokens_of_the_pool_for_its_two_clients(resources):
    auth = resources["TenantApi"]["Properties"]["Auth"]
    config = auth["Authorizers"][auth["DefaultAuthorizer"]]["JwtConfiguration"]

    assert config["issuer"] == {"Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"}
    assert config["audience"] == [{"Ref": "CliClient"}, {"Ref": "ConsoleClient"}]
    variables = resources["TenantApiFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["RELAYDESK_CONSOLE_CLIENT_ID"] == {"Ref": "ConsoleClient"}


def test_the_template_routes_of_the_tenant_api_are_the_route_table_and_all_on_it(resources):
    table = build_tenant_api(lambda account_id: None).table
    events = resources["TenantApiFunction"]["Properties"]["Events"].values()

    assert {(method, path) for method, path, _ in http_api_routes(TEMPLATE)["TenantApi"]} == {
        (rule.method, rule.openapi_path) for rule in table.rules}
    assert all(e["Properties"]["ApiId"] == {"Ref": "TenantApi"} for e in events)
    assert all(e["Properties"]["Path"].startswith("/accounts/{account_id}") for e in events)
    operator = resources["AddressesApiFunction"]["Properties"]["Events"].values()
    assert all(e["Properties"]["ApiId"] == {"Ref": "AddressesApi"} for e in operator)


def test_the_tenant_function_reaches_connector_secrets_only_through_the_account_tagged_role(resources):
    statements = [s for policy in resources["TenantApiFunction"]["Properties"]["Policies"]
                  if "Statement" in policy for s in policy["Statement"]]
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    role = resources["TenantSecretsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    (policy,) = role["Policies"]
    # Every statement on connector secrets is bound to the session's account: by the secret's tag, or, to create
    # one, by the tag it is created with. DKIM keys (one secret per domain) are checked by the code.
    connector = [s for s in policy["PolicyDocument"]["Statement"]
                 if "Connector" in str(s["Resource"]) and str(s["Action"]).count("secretsmanager:")]
    (secrets, *others) = connector
    for statement in others:
        condition = statement["Condition"]["StringEquals"]
        assert set(condition.values()) == {f"${{aws:PrincipalTag/{TAG}}}"}, statement["Sid"]
        assert set(condition) <= {f"secretsmanager:ResourceTag/{TAG}", f"aws:RequestTag/{TAG}"}

    assert not [a for a in actions if a.startswith("secretsmanager:")]
    (assume,) = [s for s in statements if "sts:AssumeRole" in s["Action"]]
    assert set(assume["Action"]) == {"sts:AssumeRole", "sts:TagSession"}
    assert assume["Resource"] == [{"Fn::GetAtt": ["TenantSecretsRole", "Arn"]},
                                  {"Fn::GetAtt": ["TenantUploadsRole", "Arn"]}]
    assert trust["Condition"]["StringLike"] == {f"aws:RequestTag/{TAG}": "?*"}
    assert trust["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": [TAG]}
    same_account = {f"secretsmanager:ResourceTag/{TAG}": f"${{aws:PrincipalTag/{TAG}}}"}
    assert secrets["Condition"] == {"StringEquals": same_account}
    assert secrets["Resource"]["Fn::Sub"][0].endswith(":secret:${Prefix}*")


def test_the_secret_tag_and_the_session_tag_are_one_name():
    from relaydesk.addresses.lifecycle import TAG_ACCOUNT
    from relaydesk.store.account_secrets import ACCOUNT_TAG

    assert TAG_ACCOUNT == ACCOUNT_TAG == TAG


def test_upload_forms_are_signed_only_by_a_session_that_may_upload_under_its_accounts_prefix(resources):
    function = resources["TenantApiFunction"]["Properties"]
    statements = [s for policy in function["Policies"] if "Statement" in policy for s in policy["Statement"]]
    role = resources["TenantUploadsRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    (policy,) = role["Policies"]
    upload, key = policy["PolicyDocument"]["Statement"]

    assert not [s for s in statements if "s3:PutObject" in s["Action"]]  # the function itself uploads nothing
    assert function["Environment"]["Variables"]["RELAYDESK_TENANT_UPLOADS_ROLE_ARN"] == {
        "Fn::GetAtt": ["TenantUploadsRole", "Arn"]}
    assert trust["Condition"] == resources["TenantSecretsRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"][0]["Condition"]  # exactly one session tag: the account
    assert upload["Action"] == "s3:PutObject"
    assert upload["Resource"] == {"Fn::Sub": f"${{RawMailBucket.Arn}}/attachments/${{!aws:PrincipalTag/{TAG}}}"
                                             "/uploads/*"}
    assert (key["Action"], key["Resource"]) == ("kms:GenerateDataKey", {"Fn::GetAtt": ["DataKey", "Arn"]})
