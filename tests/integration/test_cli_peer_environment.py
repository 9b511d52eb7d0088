"""Sandbox and production are separate stacks: the CLI reads the other one's directory so that an address is never
in both (the stack names come from samconfig.toml, the table from the stack's outputs)."""

from __future__ import annotations

import json

import boto3
import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import SupportAddress, Verification, VerificationStatus
from relaydesk.cli import context
from relaydesk.errors import RuleViolation
from relaydesk.store.dynamodb import DynamoDirectory

from tests.unit.test_addresses_rules import creds, passing_checker

PRODUCTION_TEMPLATE = {
    "Resources": {"Directory": {"Type": "AWS::DynamoDB::Table", "Properties": {
        "TableName": "relaydesk-production-directory", "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                                 {"AttributeName": "sk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}}},
    "Outputs": {"DirectoryTableName": {"Value": {"Ref": "Directory"}}},
}


@pytest.fixture
def production_stack(aws_stack):
    boto3.client("cloudformation").create_stack(StackName="relaydesk-production",
                                                TemplateBody=json.dumps(PRODUCTION_TEMPLATE))
    table = boto3.resource("dynamodb").Table("relaydesk-production-directory")
    return DynamoDirectory(table)


def test_address_connected_in_production_is_refused_in_sandbox(aws_stack, production_stack):
    production_stack.create_address(SupportAddress(email="support@acme.test", account_id="A-PROD",
                                                    forwarding=Verification(status=VerificationStatus.VERIFIED)))
    account, _ = lifecycle.create_account(aws_stack, "acme", "Acme", "sandbox")

    label, directory, reason = context.peer_directory("relaydesk-sandbox", "sandbox")
    assert (label, reason) == ("production", "")

    with pytest.raises(RuleViolation) as caught:
        lifecycle.connect_address(aws_stack, account.account_id, "support@acme.test", creds(),
                                  checker=passing_checker(), peers=[(label, directory)])
    assert caught.value.code == "address_in_use"
    assert "relaydesk --env production addresses delete support@acme.test" in caught.value.action


def test_missing_other_stack_is_reported_not_fatal(aws_stack):
    label, directory, reason = context.peer_directory("relaydesk-sandbox", "sandbox")
    assert label == "production" and directory is None
    assert "relaydesk-production could not be read" in reason
