"""samconfig.toml deploys each environment as its own stack with the right parameters; production asks first."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import pytest
from relaydesk.cli.context import stack_name_from_samconfig

from local.aws_resources import load_template

ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG = ROOT / "samconfig.toml"


def _deploy(environment: str) -> dict:
    return tomllib.loads(SAMCONFIG.read_text())[environment]["deploy"]["parameters"]


def _overrides(environment: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in shlex.split(_deploy(environment)["parameter_overrides"]))


# Regions where SES has received email longest (the SES endpoints page, "Email receiving", may list more now):
# a region outside them is a deploy whose inbound mail never arrives.
SES_RECEIVING_REGIONS = {"us-east-1", "us-west-2", "eu-west-1"}


def _global(environment: str) -> dict:
    return tomllib.loads(SAMCONFIG.read_text())[environment]["global"]["parameters"]


@pytest.mark.parametrize("environment, stack", [("sandbox", "relaydesk-sandbox"),
                                                ("production", "relaydesk-production")])
def test_each_environment_deploys_its_own_stack_with_its_environment_parameter(environment, stack):
    deploy = _deploy(environment)
    declared = load_template(ROOT / "template.yaml")["Parameters"]

    assert _global(environment)["stack_name"] == stack
    assert _global(environment)["region"] in SES_RECEIVING_REGIONS
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert _overrides(environment)["Environment"] == stack.removeprefix("relaydesk-")
    assert set(_overrides(environment)) <= set(declared)  # a misspelt parameter would fail the deploy
    assert "MailDomain" in _overrides(environment)  # it has no default


def test_production_shows_the_change_set_before_deploying():
    assert _deploy("production")["confirm_changeset"] is True


def test_the_cli_finds_the_stack_of_each_environment_in_samconfig():
    assert stack_name_from_samconfig(None, SAMCONFIG) == "relaydesk-sandbox"  # the CLI's default is the sandbox
    assert stack_name_from_samconfig("production", SAMCONFIG) == "relaydesk-production"


@pytest.mark.parametrize("environment", ["sandbox", "production"])
def test_every_resource_is_tagged_with_the_project_and_its_environment(environment):
    tags = dict(item.split("=", 1) for item in shlex.split(_deploy(environment)["tags"]))

    assert tags == {"project": "relaydesk", "environment": environment}


def test_there_is_no_default_environment_to_deploy_by_omission():
    default = tomllib.loads(SAMCONFIG.read_text())["default"]

    assert "deploy" not in default and "stack_name" not in default.get("global", {}).get("parameters", {})
