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


@pytest.mark.parametrize("environment, stack", [("default", "relaydesk-sandbox"), ("sandbox", "relaydesk-sandbox"),
                                                ("production", "relaydesk-production")])
def test_each_environment_deploys_its_own_stack_with_its_environment_parameter(environment, stack):
    deploy = _deploy(environment)
    declared = load_template(ROOT / "template.yaml")["Parameters"]

    assert deploy["stack_name"] == stack
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert _overrides(environment)["Environment"] == stack.removeprefix("relaydesk-")
    assert set(_overrides(environment)) <= set(declared)  # a misspelt parameter would fail the deploy
    assert "MailDomain" in _overrides(environment)  # it has no default


def test_production_shows_the_change_set_before_deploying():
    assert _deploy("production")["confirm_changeset"] is True


def test_the_cli_finds_the_stack_of_each_environment_in_samconfig():
    assert stack_name_from_samconfig(None, SAMCONFIG) == "relaydesk-sandbox"
    assert stack_name_from_samconfig("production", SAMCONFIG) == "relaydesk-production"
