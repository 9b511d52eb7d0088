"""Credential rotation against the in-memory stores: staging labels, the four steps, what the admin sees."""

from __future__ import annotations

import dataclasses
import json

import pytest
from relaydesk.addresses import lifecycle, rotation
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.addresses.model import ConnectorState, VerificationStatus
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError, NotFoundError, RotationRefusedError, RuleViolation
from relaydesk.store.ports import CURRENT, PENDING, PREVIOUS

from tests.tenancy import account_of

OLD_PASSWORD = "0ld-Pa55word!"
NEW_PASSWORD = "n3w-Pa55word?"
EMAIL = "support@acme.com"


def creds(password: str, username: str = EMAIL) -> SmtpCredentials:
    return SmtpCredentials(host="smtp.acme.com", username=username, password=password)


def report_for(credentials: SmtpCredentials, ok: bool) -> LiveCheckReport:
    steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate")]
    if ok:
        steps.append(CheckStep(name="auth", ok=True, detail="235 2.7.0 Authentication successful"))
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps)
    steps.append(CheckStep(name="auth", ok=False, detail="5.7.8 Error: authentication failed", smtp_code=535,
                           enhanced_status="5.7.8"))
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps,
                           summary="The server refused the username or password",
                           fix="Check the password set on the mailbox, then rotate again.")


class FakeSmarthost:
    """Accepts exactly one password, as the customer's server does after the admin changed it there."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.checked: list[tuple[SmtpCredentials, dict]] = []

    def __call__(self, credentials: SmtpCredentials, **kwargs) -> LiveCheckReport:
        self.checked.append((credentials, kwargs))
        return report_for(credentials, credentials.password.get_secret_value() == self.password)


@pytest.fixture
def connected(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme", "sandbox")
    address, _ = lifecycle.connect_address(memory_stores, account.account_id, EMAIL, creds(OLD_PASSWORD),
                                           checker=FakeSmarthost(OLD_PASSWORD))
    return address


def in_process(stores, smarthost):
    return lambda secret_id, token: rotation.rotate_in_process(stores, secret_id, token, checker=smarthost)


def value(stores, secret_id: str, stage: str) -> SmtpCredentials:
    return SmtpCredentials.model_validate_json(stores.secrets.get(secret_id, stage).value)


def set_state(stores, state: ConnectorState, outbound: VerificationStatus) -> None:
    address = stores.directory.get_address(EMAIL)
    address.connector.state = state
    address.outbound.status = outbound
    stores.directory.put_address(address)


# --- stage_rotation -----------------------------------------------------------------------------------------------

def test_rotate_promotes_new_credentials_and_keeps_the_old_as_previous(memory_stores, connected):
    secret = connected.connector.secret_arn
    old_version = memory_stores.secrets.get(secret, CURRENT).version_id

    token = rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds(NEW_PASSWORD),
                                    start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))

    assert value(memory_stores, secret, CURRENT).password.get_secret_value() == NEW_PASSWORD
    assert memory_stores.secrets.get(secret, CURRENT).version_id == token
    assert memory_stores.secrets.get(secret, PREVIOUS).version_id == old_version
    assert memory_stores.secrets.pending_value(secret) is None
    assert memory_stores.directory.get_address(EMAIL).connector.credentials_version == token


def test_rotate_with_a_rotation_function_stages_pending_and_calls_rotate_secret(memory_stores, connected):
    stores = dataclasses.replace(memory_stores, settings=memory_stores.settings.model_copy(
        update={"rotation_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:rotation"}))
    secret = connected.connector.secret_arn

    token = rotation.stage_rotation(stores, account_of(stores, EMAIL), EMAIL, creds(NEW_PASSWORD))

    assert stores.secrets.rotations == [(secret, token, "arn:aws:lambda:us-east-1:123456789012:function:rotation")]
    assert stores.secrets.get(secret, PENDING).version_id == token
    assert value(stores, secret, PENDING).password.get_secret_value() == NEW_PASSWORD
    assert value(stores, secret, CURRENT).password.get_secret_value() == OLD_PASSWORD  # not promoted yet


def test_test_step_logs_in_with_the_pending_credentials_as_the_support_address(memory_stores, connected):
    smarthost = FakeSmarthost(NEW_PASSWORD)

    rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL),
                            EMAIL, creds(NEW_PASSWORD, username="helpdesk@acme.com"),
                            start=in_process(memory_stores, smarthost))

    (tested, kwargs), = smarthost.checked
    assert tested.username == "helpdesk@acme.com"
    assert tested.password.get_secret_value() == NEW_PASSWORD
    assert kwargs["sender"] == EMAIL


def test_rotating_a_forwarding_address_is_refused(memory_stores, connected):
    lifecycle.add_forwarding_address(memory_stores, connected.account_id, "help@acme.com")

    with pytest.raises(RuleViolation) as caught:
        rotation.stage_rotation(memory_stores, account_of(memory_stores, "help@acme.com"),
                                "help@acme.com", creds(NEW_PASSWORD), start=lambda *_: None)

    assert caught.value.code == "not_a_connector"


def test_rotating_an_unknown_address_says_not_found(memory_stores, connected):
    with pytest.raises(NotFoundError):
        rotation.stage_rotation(memory_stores, connected.account_id, "nobody@acme.com", creds(NEW_PASSWORD),
                                start=lambda *_: None)


# --- the four steps -----------------------------------------------------------------------------------------------

def stage_only(stores, password: str = NEW_PASSWORD) -> str:
    return rotation.stage_rotation(stores, account_of(stores, EMAIL), EMAIL, creds(password), start=lambda *_: None)


def test_create_keeps_the_staged_version(memory_stores, connected):
    token = stage_only(memory_stores)
    before = memory_stores.secrets.describe_stages(connected.connector.secret_arn)

    rotation.run_step(memory_stores, connected.connector.secret_arn, token, "createSecret")

    assert memory_stores.secrets.describe_stages(connected.connector.secret_arn) == before
    assert memory_stores.secrets.pending_value(connected.connector.secret_arn) == creds(NEW_PASSWORD).to_secret_string()


def test_create_with_nothing_staged_refuses_and_changes_nothing(memory_stores, connected):
    secret = connected.connector.secret_arn
    before = memory_stores.secrets.describe_stages(secret)

    with pytest.raises(RotationRefusedError) as caught:
        rotation.run_step(memory_stores, secret, "a-token-nobody-staged-0000000000000", "createSecret")

    assert "cannot invent a password" in caught.value.message
    assert memory_stores.secrets.describe_stages(secret) == before
    assert value(memory_stores, secret, CURRENT).password.get_secret_value() == OLD_PASSWORD


def test_create_refuses_a_token_that_is_not_the_staged_one(memory_stores, connected):
    stage_only(memory_stores)

    with pytest.raises(RotationRefusedError):
        rotation.run_step(memory_stores, connected.connector.secret_arn, "another-token-0000000000000000000",
                          "createSecret")


def test_set_has_nothing_to_do(memory_stores, connected):
    token = stage_only(memory_stores)
    before = memory_stores.secrets.describe_stages(connected.connector.secret_arn)

    outcome = rotation.run_step(memory_stores, connected.connector.secret_arn, token, "setSecret")

    assert "nothing to set" in outcome
    assert memory_stores.secrets.describe_stages(connected.connector.secret_arn) == before


def test_failed_test_keeps_current_live_and_records_why(memory_stores, connected):
    secret = connected.connector.secret_arn
    current_before = memory_stores.secrets.get(secret, CURRENT).version_id

    with pytest.raises(AuthenticationFailedError) as caught:
        rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds("wrong-password"),
                                start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))

    assert "current credentials stay live" in caught.value.message
    assert memory_stores.secrets.get(secret, CURRENT).version_id == current_before
    assert value(memory_stores, secret, CURRENT).password.get_secret_value() == OLD_PASSWORD
    assert memory_stores.secrets.pending_value(secret) is None  # abandoned: the relay stops trying it
    last_error = memory_stores.directory.get_address(EMAIL).last_error
    assert "rotation failed at auth" in last_error
    assert "5.7.8 Error: authentication failed" in last_error
    assert "wrong-password" not in last_error


def test_a_step_for_a_version_that_is_not_pending_is_refused(memory_stores, connected):
    with pytest.raises(RotationRefusedError):
        rotation.run_step(memory_stores, connected.connector.secret_arn, "not-staged-0000000000000000000000",
                          "finishSecret")


def test_an_unknown_step_is_refused(memory_stores, connected):
    token = stage_only(memory_stores)

    with pytest.raises(RotationRefusedError) as caught:
        rotation.run_step(memory_stores, connected.connector.secret_arn, token, "dropSecret")

    assert "unknown rotation step" in caught.value.message


def test_finish_run_twice_is_harmless(memory_stores, connected):
    secret = connected.connector.secret_arn
    token = rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds(NEW_PASSWORD),
                                    start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))
    stages = memory_stores.secrets.describe_stages(secret)

    assert rotation.run_step(memory_stores, secret, token, "finishSecret") == "already current"
    assert memory_stores.secrets.describe_stages(secret) == stages


@pytest.mark.parametrize(("state", "outbound", "expected"), [
    (ConnectorState.AUTH_FAILED, VerificationStatus.VERIFIED, ConnectorState.ACTIVE),
    (ConnectorState.AUTH_FAILED, VerificationStatus.UNVERIFIED, ConnectorState.PENDING),
    (ConnectorState.ACTIVE, VerificationStatus.VERIFIED, ConnectorState.ACTIVE),
    (ConnectorState.DISABLED, VerificationStatus.VERIFIED, ConnectorState.DISABLED),
    (ConnectorState.PENDING, VerificationStatus.UNVERIFIED, ConnectorState.PENDING),
])
def test_finish_clears_an_auth_failed_hold(memory_stores, connected, state, outbound, expected):
    set_state(memory_stores, state, outbound)
    address = memory_stores.directory.get_address(EMAIL)
    address.last_error = "535 5.7.8 authentication failed"
    memory_stores.directory.put_address(address)

    rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds(NEW_PASSWORD),
                            start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))

    after = memory_stores.directory.get_address(EMAIL)
    assert after.connector.state is expected
    assert after.connector.held_since is None
    assert after.last_error is None


def test_finish_releases_the_notifications_held_for_the_address(memory_stores, connected, monkeypatch):
    released: list[str] = []
    monkeypatch.setattr(lifecycle, "release_held_notifications",
                        lambda _stores, _account, email: released.append(email))
    set_state(memory_stores, ConnectorState.AUTH_FAILED, VerificationStatus.VERIFIED)

    rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds(NEW_PASSWORD),
                            start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))

    assert released == [EMAIL]


def test_failed_rotation_releases_nothing(memory_stores, connected, monkeypatch):
    released: list[str] = []
    monkeypatch.setattr(lifecycle, "release_held_notifications",
                        lambda _stores, _account, email: released.append(email))

    with pytest.raises(AuthenticationFailedError):
        rotation.stage_rotation(memory_stores, account_of(memory_stores, EMAIL), EMAIL, creds("wrong"),
                                start=in_process(memory_stores, FakeSmarthost(NEW_PASSWORD)))

    assert released == []


def test_a_secret_of_no_support_address_is_never_rotated(memory_stores, connected):
    memory_stores.secrets.create("relaydesk/connector/A1/ghost@acme.com", creds(OLD_PASSWORD).to_secret_string(), {})
    token = memory_stores.secrets.put_version("relaydesk/connector/A1/ghost@acme.com",
                                              creds(NEW_PASSWORD).to_secret_string(), [PENDING])

    with pytest.raises(NotFoundError):
        rotation.run_step(memory_stores, "relaydesk/connector/A1/ghost@acme.com", token, "finishSecret")

    assert memory_stores.secrets.pending_value("relaydesk/connector/A1/ghost@acme.com") is not None


def test_a_staged_value_that_is_not_credentials_is_refused_without_echoing_it(memory_stores, connected):
    secret = connected.connector.secret_arn
    token = memory_stores.secrets.put_version(secret, json.dumps({"password": NEW_PASSWORD}), [PENDING],
                                              token="bad-value-token-00000000000000000")

    with pytest.raises(RotationRefusedError) as caught:
        rotation.run_step(memory_stores, secret, token, "createSecret")

    assert NEW_PASSWORD not in str(caught.value)


def test_secret_name_is_read_from_the_arn_secrets_manager_passes():
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:relaydesk/connector/A1/support@acme.com-AbC123"

    assert rotation.secret_name_of(arn) == "relaydesk/connector/A1/support@acme.com"
    assert rotation.secret_name_of("relaydesk/connector/A1/x@y.z") == "relaydesk/connector/A1/x@y.z"
