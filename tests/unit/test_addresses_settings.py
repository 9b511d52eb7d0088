"""Changing a connector's smarthost without deleting the address (`relaydesk addresses set`): live-checked first,
nothing changes on a failure, and a hold ends when the new settings work. And `verify` on a held address: the hold
ends when the test mail goes, or the exit code and the words say it stays."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest
from relaydesk.addresses import connector_settings, lifecycle, rotation, state, verification
from relaydesk.addresses.check_report import CheckStep, LiveCheckReport
from relaydesk.addresses.model import ConnectorState
from relaydesk.cli import context, main
from relaydesk.cli.output import EXIT_AUTH, EXIT_CONFLICT, EXIT_ERROR, EXIT_OK, EXIT_RULE, EXIT_SMTP
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import (
    ConfigurationError,
    ConflictError,
    RuleViolation,
    TlsRequiredError,
)
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store.memory import MemoryHeld
from relaydesk.store.ports import CURRENT, PENDING

from tests.tenancy import account_of

EMAIL = "support@acme.com"


def owner(stores) -> str:
    return account_of(stores, EMAIL)
PASSWORD = "Tr0ub4dor&3-settings"


class Smarthost:
    """The live check against a smarthost reachable only at `works` (host, port, TLS mode)."""

    def __init__(self, works: tuple[str, int, TlsMode]) -> None:
        self.works = works
        self.checked: list[SmtpCredentials] = []

    def __call__(self, credentials: SmtpCredentials, *, sender=None, on_step=None, **_) -> LiveCheckReport:
        self.checked.append(credentials)
        ok = (credentials.host, credentials.port, credentials.tls_mode) == self.works
        steps = [CheckStep(name="dns", ok=True), CheckStep(name="tcp", ok=True), CheckStep(name="greeting", ok=True)]
        steps.append(CheckStep(name="starttls", ok=ok, detail="STARTTLS (TLSv1.3)" if ok else
                               "STARTTLS extension not supported by server"))
        if ok:
            steps += [CheckStep(name="certificate", ok=True), CheckStep(name="auth", ok=True),
                      CheckStep(name="sender", ok=True)]
        for step in steps:
            if on_step:
                on_step(step)
        report = LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                                 steps=steps)
        if not ok:
            report.summary = f"{credentials.host} does not offer STARTTLS on port {credentials.port}"
            report.fix = "Enable STARTTLS on the submission port, or use port 465 with --tls implicit."
            report.error = TlsRequiredError(f"{credentials.host} did not offer STARTTLS; nothing was sent")
        return report


@pytest.fixture
def stores(memory_stores):
    stores = replace(memory_stores, held=MemoryHeld())
    account, _ = lifecycle.create_account(stores, "acme", "Acme", "sandbox")
    credentials = SmtpCredentials(host="mail.acme.com", port=587, username=EMAIL, password=PASSWORD)
    lifecycle.connect_address(stores, account.account_id, EMAIL, credentials,
                              checker=Smarthost(("mail.acme.com", 587, TlsMode.STARTTLS)))
    return stores


def held_for_tls(stores) -> Notification:
    """The server stopped offering STARTTLS on 587: the relay held the address and parked a notification."""
    address = stores.directory.get_address(EMAIL)
    note = Notification(notification_id=new_id("N"), account_id=address.account_id, support_address=EMAIL,
                        recipients=["jane@example.net"], subject="Printer jammed", text_body="On it.")
    stores.held.park(EMAIL, note)
    state.change(stores, owner(stores), EMAIL,
                 state.Hold(state.HoldReason.TLS, "tls_failed: mail.acme.com did not offer STARTTLS"))
    return note


def test_new_settings_that_pass_the_live_check_become_the_current_secret_and_end_the_hold(stores):
    note = held_for_tls(stores)
    secret = stores.directory.get_address(EMAIL).connector.secret_arn
    before = stores.secrets.get(secret, CURRENT).version_id
    smarthost = Smarthost(("mail.acme.com", 465, TlsMode.IMPLICIT))

    address, report = connector_settings.change_settings(stores, owner(stores), EMAIL, port=465, tls_mode="implicit",
                                                         checker=smarthost)

    assert report.ok and smarthost.checked[0].password.get_secret_value() == PASSWORD  # the current credentials
    current = stores.secrets.get(secret, CURRENT)
    assert current.version_id != before and rotation.current_credentials(stores, owner(stores), EMAIL).port == 465
    assert (address.connector.port, address.connector.tls_mode) == (465, TlsMode.IMPLICIT)
    assert address.connector.credentials_version == current.version_id
    assert address.connector.state is ConnectorState.PENDING  # outbound was never verified for this address
    assert address.last_error is None and address.events[-1].transition == "change_settings"
    assert [n.notification_id for n, _ in stores.queue.sent] == [note.notification_id] and not stores.held.list(EMAIL)


def test_settings_that_fail_the_live_check_change_nothing(stores):
    held_for_tls(stores)
    before = stores.directory.get_address(EMAIL)
    secret_versions = stores.secrets.describe_stages(before.connector.secret_arn)

    with pytest.raises(TlsRequiredError) as refused:
        connector_settings.change_settings(stores, owner(stores), EMAIL, host="other.acme.com",
                                           checker=Smarthost(("mail.acme.com", 465, TlsMode.IMPLICIT)))

    assert "the new settings were not saved; the current ones stay" in refused.value.message
    assert refused.value.action.startswith("Enable STARTTLS")
    assert stores.directory.get_address(EMAIL) == before
    assert stores.secrets.describe_stages(before.connector.secret_arn) == secret_versions
    assert stores.queue.sent == [] and len(stores.held.list(EMAIL)) == 1


def test_no_change_a_rotation_under_way_or_an_address_without_a_connector_is_refused(stores):
    with pytest.raises(ConfigurationError, match="already uses these settings"):
        connector_settings.change_settings(stores, owner(stores), EMAIL, port=587,
                                           checker=Smarthost(("x", 1, TlsMode.STARTTLS)))
    secret = stores.directory.get_address(EMAIL).connector.secret_arn
    token = stores.secrets.put_version(secret, stores.secrets.get(secret).value, [PENDING])
    with pytest.raises(ConflictError, match="rotation"):
        connector_settings.change_settings(stores, owner(stores), EMAIL, port=465,
                                           checker=Smarthost(("x", 1, TlsMode.STARTTLS)))
    stores.secrets.move_stage(secret, PENDING, to_version=None, from_version=token)
    system = next(a for a in stores.directory.list_addresses(stores.directory.get_address(EMAIL).account_id)
                  if a.connector is None)
    with pytest.raises(RuleViolation, match="does not use the SMTP connector"):
        connector_settings.change_settings(stores, system.account_id, system.email, port=465)


@pytest.fixture
def cli(stores, monkeypatch, capsys):
    monkeypatch.setattr(context, "load_stores", lambda args: stores)

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_addresses_set_checks_the_new_settings_live_and_says_the_hold_ended(cli, stores, monkeypatch):
    held_for_tls(stores)
    monkeypatch.setattr(connector_settings, "run_live_check", Smarthost(("mail.acme.com", 465, TlsMode.IMPLICIT)))

    code, out, err = cli("addresses", "set", EMAIL, "--port", "465", "--tls", "implicit", "--json")

    assert code == EXIT_OK, err
    assert "live check of mail.acme.com:465 (implicit)" in err and "[ok  ] auth" in err
    assert "the hold has ended" in err
    assert json.loads(out)["connector"]["port"] == 465 and PASSWORD not in out + err


def test_addresses_set_that_fails_the_check_exits_with_the_smtp_code_and_changes_nothing(cli, stores, monkeypatch):
    monkeypatch.setattr(connector_settings, "run_live_check", Smarthost(("mail.acme.com", 587, TlsMode.STARTTLS)))

    code, _, err = cli("addresses", "set", EMAIL, "--host", "new.acme.com")

    assert code == EXIT_SMTP and "[FAIL] starttls" in err and "the current ones stay" in err
    assert stores.directory.get_address(EMAIL).connector.host == "mail.acme.com"
    assert cli("addresses", "set", EMAIL)[0] == EXIT_ERROR  # nothing to change
    assert cli("addresses", "set", "support@acme.mail.relaydesk.test", "--port", "465")[0] == EXIT_RULE


def test_enable_of_a_connector_that_is_not_disabled_is_a_conflict(cli):
    code, _, err = cli("addresses", "enable", EMAIL)
    assert code == EXIT_CONFLICT and "cannot enable" in err and "not disabled" in err


def _held_by_the_relay(stores, password_on_server: str) -> None:
    """What the relay does with a held address's verification mail: the smarthost takes it (the hold ends) or
    refuses it (the hold stays and the outbound verification fails)."""
    [(note, _)] = stores.queue.sent
    stores.queue.sent.clear()
    if password_on_server == PASSWORD:
        state.change(stores, owner(stores), EMAIL, state.Release("v1", why="the verification mail was accepted"))
        verification.on_verification_mail(stores, token=note.verification_token, recipient=EMAIL, forwarding_hops=1)
    else:
        reason = "auth_failed: mail.acme.com refused the credentials (535 5.7.8)"
        state.change(stores, owner(stores), EMAIL, state.Hold(state.HoldReason.CREDENTIALS, reason, "v1"))
        state.change(stores, owner(stores), EMAIL, state.VerificationFailed(state.Direction.OUTBOUND, reason,
                                                             token=note.verification_token))


@pytest.mark.parametrize(("server_password", "code", "words"), [
    (PASSWORD, EXIT_OK, "the hold has ended"),
    ("still-changed", EXIT_AUTH, "the hold stays (auth_failed)")])
def test_verify_of_a_held_address_ends_the_hold_or_says_it_stays(cli, stores, monkeypatch, server_password, code,
                                                                 words):
    address = stores.directory.get_address(EMAIL)
    for transition in (state.StartVerification(state.Direction.FORWARDING, "F"),
                       state.VerificationPassed(state.Direction.FORWARDING),
                       state.StartVerification(state.Direction.OUTBOUND, "O"),
                       state.VerificationPassed(state.Direction.OUTBOUND),
                       state.Hold(state.HoldReason.CREDENTIALS, "auth_failed: 535", "v1")):
        state.change(stores, address.account_id, address.email, transition)
    parked = Notification(notification_id=new_id("N"), account_id=address.account_id, support_address=EMAIL,
                          recipients=["jane@example.net"], subject="s", text_body="b")
    stores.held.park(EMAIL, parked)
    original = verification.wait_for

    def relay_then_wait(stores_, account_id, email, direction, **kwargs):
        if direction is state.Direction.OUTBOUND:
            _held_by_the_relay(stores, server_password)
        return original(stores_, account_id, email, direction, **kwargs)

    monkeypatch.setattr(verification, "wait_for", relay_then_wait)

    exit_code, _, err = cli("addresses", "verify", EMAIL, "--timeout", "5", "--poll", "0.01")

    assert exit_code == code and words in err
    after = stores.directory.get_address(EMAIL)
    if code == EXIT_OK:
        assert after.connector.state is ConnectorState.ACTIVE and after.last_error is None
        assert [n.notification_id for n, _ in stores.queue.sent] == [parked.notification_id]
    else:
        assert after.connector.state is ConnectorState.AUTH_FAILED and "535" in after.last_error
        assert stores.held.list(EMAIL) and stores.queue.sent == []
