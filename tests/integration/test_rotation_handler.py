"""The rotation function's handler as Secrets Manager invokes it (the secret's ARN, the token, the step), against
moto and the local smarthost."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
from relaydesk.addresses import rotation
from relaydesk.errors import RotationRefusedError
from relaydesk.store.ports import CURRENT

from tests.integration.test_rotation import EMAIL, NEW_PASSWORD, connected, credentials_for, secret_password
from tests.tenancy import account_of

__all__ = ["connected"]  # the fixture, shared with test_rotation

APP = Path(__file__).resolve().parents[2] / "functions" / "rotation" / "app.py"
CONTEXT = SimpleNamespace(function_name="rotation", memory_limit_in_mb=256, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:rotation")


@pytest.fixture
def handler(aws_stack):
    spec = importlib.util.spec_from_file_location("rotation_app_integration", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


def test_the_four_invocations_rotate_the_secret(aws_stack, smarthost, connected, handler):
    secret_arn = connected.connector.secret_arn
    smarthost.set_password(smarthost.username, NEW_PASSWORD)
    token = rotation.stage_rotation(aws_stack, account_of(aws_stack, EMAIL),
                                    EMAIL, credentials_for(smarthost, NEW_PASSWORD),
                                    start=lambda *_: None)

    for step in rotation.Step:
        handler({"SecretId": secret_arn, "ClientRequestToken": token, "Step": step.value}, CONTEXT)

    assert secret_password(aws_stack, secret_arn, CURRENT) == NEW_PASSWORD
    assert aws_stack.directory.get_address(EMAIL).connector.credentials_version == token


def test_an_invocation_with_nothing_staged_fails_and_changes_nothing(aws_stack, connected, handler):
    secret_arn = connected.connector.secret_arn
    before = aws_stack.secrets.describe_stages(secret_arn)

    with pytest.raises(RotationRefusedError):
        handler({"SecretId": secret_arn, "ClientRequestToken": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9",
                 "Step": "createSecret"}, CONTEXT)

    assert aws_stack.secrets.describe_stages(secret_arn) == before
