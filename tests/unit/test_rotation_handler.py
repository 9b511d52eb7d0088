"""The rotation function as Secrets Manager invokes it: one step per event; no password in its logs or errors."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
from relaydesk.addresses import lifecycle, rotation
from relaydesk.errors import AuthenticationFailedError, RotationRefusedError
from relaydesk.store.ports import CURRENT

from tests.tenancy import account_of
from tests.unit.test_rotation import EMAIL, NEW_PASSWORD, OLD_PASSWORD, FakeSmarthost, creds

APP = Path(__file__).resolve().parents[2] / "functions" / "rotation" / "app.py"
CONTEXT = SimpleNamespace(function_name="rotation", memory_limit_in_mb=256, aws_request_id="req-1",
                          invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:rotation")


def load_handler(stores, monkeypatch, smarthost):
    spec = importlib.util.spec_from_file_location("rotation_app_under_test", APP)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "aws_stores", lambda: stores)
    real_run_step = rotation.run_step
    monkeypatch.setattr(module, "run_step",
                        lambda stores, secret, token, step: real_run_step(stores, secret, token, step,
                                                                          checker=smarthost))
    return module.handler


@pytest.fixture
def connected(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme", "sandbox")
    address, _ = lifecycle.connect_address(memory_stores, account.account_id, EMAIL, creds(OLD_PASSWORD),
                                           checker=FakeSmarthost(OLD_PASSWORD))
    return address


def events(secret: str, token: str) -> list[dict]:
    return [{"SecretId": secret, "ClientRequestToken": token, "Step": step.value} for step in rotation.Step]


def test_the_four_events_promote_the_staged_credentials(memory_stores, connected, monkeypatch):
    handler = load_handler(memory_stores, monkeypatch, FakeSmarthost(NEW_PASSWORD))
    secret = connected.connector.secret_arn
    token = rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL),
                                    EMAIL, creds(NEW_PASSWORD), start=lambda *_: None)

    for event in events(secret, token):
        handler(event, CONTEXT)

    assert memory_stores.secrets.get(secret, CURRENT).version_id == token


def test_create_event_with_nothing_staged_fails_the_rotation(memory_stores, connected, monkeypatch):
    handler = load_handler(memory_stores, monkeypatch, FakeSmarthost(NEW_PASSWORD))

    with pytest.raises(RotationRefusedError):
        handler({"SecretId": connected.connector.secret_arn, "ClientRequestToken": "t" * 36,
                 "Step": "createSecret"}, CONTEXT)


def test_no_password_in_logs_errors_or_the_address(memory_stores, connected, monkeypatch, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    secret = connected.connector.secret_arn
    wrong = "wr0ng-Pa55word#"
    handler = load_handler(memory_stores, monkeypatch, FakeSmarthost(NEW_PASSWORD))
    seen: list[str] = []

    failing = rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL),
                                      EMAIL, creds(wrong), start=lambda *_: None)
    for event in events(secret, failing)[:3]:
        try:
            handler(event, CONTEXT)
        except AuthenticationFailedError as error:
            seen += [str(error), repr(error), error.server_reply, error.action or ""]
    working = rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL),
                                      EMAIL, creds(NEW_PASSWORD), start=lambda *_: None)
    for event in events(secret, working):
        handler(event, CONTEXT)

    out = capsys.readouterr()
    seen += [out.out, out.err, caplog.text, memory_stores.directory.get_address(EMAIL).model_dump_json()]
    assert any("rotation step failed" in text for text in seen)  # the failure was logged ...
    for password in (OLD_PASSWORD, NEW_PASSWORD, wrong):
        assert all(password not in text for text in seen)  # ... and no password anywhere
