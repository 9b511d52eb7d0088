"""Every connector rule of issue 5, against the in-memory stores: what an admin sees when a change is refused."""

from __future__ import annotations

import json

import pytest
from relaydesk.addresses import lifecycle
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.addresses.model import AddressKind, ConnectorState, VerificationStatus
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError, ConflictError, RuleViolation
from relaydesk.store.ports import CURRENT

from tests.tenancy import account_of

PASSWORD = "s3cret-Pa55word!"


def passing_checker(calls: list | None = None):
    def check(credentials: SmtpCredentials, **kwargs) -> LiveCheckReport:
        if calls is not None:
            calls.append((credentials, kwargs))
        steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate", "auth")]
        return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode,
                               steps=steps)
    return check


def failing_auth_checker(credentials: SmtpCredentials, **kwargs) -> LiveCheckReport:
    reply = "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."
    steps = [CheckStep(name="dns", ok=True), CheckStep(name="tcp", ok=True),
             CheckStep(name="auth", ok=False, detail=reply, smtp_code=535, enhanced_status="5.7.139")]
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps,
                           summary="SMTP AUTH is disabled", fix="Set-CASMailbox ...")


def creds() -> SmtpCredentials:
    return SmtpCredentials(host="smtp.office365.com", username="support@acme.com", password=PASSWORD)


@pytest.fixture
def acme(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme", "sandbox")
    return account


def connect(stores, account_id, email="support@acme.com", checker=None):
    return lifecycle.connect_address(stores, account_id, email, creds(), "Acme Support",
                                     checker=checker or passing_checker())


def verified(stores, email):
    address = stores.directory.get_address(email)
    address.forwarding.status = VerificationStatus.VERIFIED
    address.outbound.status = VerificationStatus.VERIFIED
    if address.connector:
        address.connector.state = ConnectorState.ACTIVE
    stores.directory.put_address(address)
    return address


def test_new_account_has_its_system_address_as_verified_default(memory_stores, acme):
    system = memory_stores.directory.get_address("support@acme.mail.relaydesk.test")
    assert system.kind is AddressKind.SYSTEM
    assert system.is_default
    assert system.forwarding.status is VerificationStatus.VERIFIED


def test_connect_saves_one_tagged_secret_and_a_pending_address(memory_stores, acme):
    address, report = connect(memory_stores, acme.account_id)

    assert report.ok
    assert address.kind is AddressKind.SMTP_CONNECTOR
    assert address.connector.state is ConnectorState.PENDING
    name = f"relaydesk/connector/{acme.account_id}/support@acme.com"
    assert address.connector.secret_arn == name
    stored = json.loads(memory_stores.secrets.get(name, CURRENT).value)
    assert stored["password"] == PASSWORD and stored["host"] == "smtp.office365.com"
    # the directory holds no credentials
    assert PASSWORD not in memory_stores.directory.get_address("support@acme.com").model_dump_json()


def test_connect_runs_the_live_check_with_the_address_as_sender(memory_stores, acme):
    calls: list = []
    connect(memory_stores, acme.account_id, checker=passing_checker(calls))
    assert calls[0][1]["sender"] == "support@acme.com"


def test_failed_live_check_saves_nothing_and_explains(memory_stores, acme):
    with pytest.raises(AuthenticationFailedError) as caught:
        connect(memory_stores, acme.account_id, checker=failing_auth_checker)

    assert "SMTP AUTH is disabled" in caught.value.message
    assert caught.value.enhanced_status == "5.7.139"
    assert memory_stores.directory.get_address("support@acme.com") is None
    assert not memory_stores.secrets.versions


def test_system_address_cannot_be_connected(memory_stores, acme):
    with pytest.raises(RuleViolation) as caught:
        connect(memory_stores, acme.account_id, email="support@acme.mail.relaydesk.test")
    assert caught.value.code == "system_address"


def test_another_accounts_system_address_cannot_be_connected(memory_stores, acme):
    lifecycle.create_account(memory_stores, "globex", "Globex", "production")
    with pytest.raises(RuleViolation) as caught:
        connect(memory_stores, acme.account_id, email="SUPPORT@globex.mail.relaydesk.test")
    assert caught.value.code == "system_address"


def test_connector_requires_ccs_and_followers(memory_stores, acme):
    lifecycle.update_account_settings(memory_stores, acme.account_id, ccs_and_followers_enabled=False)
    with pytest.raises(RuleViolation) as caught:
        connect(memory_stores, acme.account_id)
    assert caught.value.code == "ccs_and_followers_required"
    assert "--ccs-and-followers on" in caught.value.action


def test_ccs_and_followers_cannot_be_turned_off_while_connected(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    with pytest.raises(RuleViolation) as caught:
        lifecycle.update_account_settings(memory_stores, acme.account_id, ccs_and_followers_enabled=False)
    assert caught.value.code == "ccs_and_followers_required"


def test_account_settings_change(memory_stores, acme):
    account = lifecycle.update_account_settings(memory_stores, acme.account_id, include_attachments_in_email=False)
    assert account.settings.include_attachments_in_email is False
    assert memory_stores.directory.get_account(acme.account_id).settings.include_attachments_in_email is False


def test_unverified_address_cannot_become_default(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    with pytest.raises(RuleViolation) as caught:
        lifecycle.set_default(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    assert caught.value.code == "default_requires_verification"
    assert "forwarding" in caught.value.message and "outbound" in caught.value.message


def test_only_forwarding_verified_is_not_enough_for_default(memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")
    address = memory_stores.directory.get_address("help@acme.com")
    address.forwarding.status = VerificationStatus.VERIFIED
    memory_stores.directory.put_address(address)
    with pytest.raises(RuleViolation):
        lifecycle.update_address(memory_stores, account_of(memory_stores, "help@acme.com"),
                                 "help@acme.com", is_default=True)


def test_verified_address_becomes_the_only_default(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    verified(memory_stores, "support@acme.com")

    lifecycle.set_default(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")

    defaults = [a.email for a in memory_stores.directory.list_addresses(acme.account_id) if a.is_default]
    assert defaults == ["support@acme.com"]


def test_api_path_cannot_create_connector_addresses(memory_stores, acme):
    with pytest.raises(RuleViolation) as caught:
        lifecycle.add_forwarding_address(memory_stores, acme.account_id, "support@acme.com", kind="smtp_connector")
    assert caught.value.code == "connector_requires_admin_path"
    assert memory_stores.directory.get_address("support@acme.com") is None


def test_api_path_adds_forwarding_addresses(memory_stores, acme):
    address = lifecycle.add_forwarding_address(memory_stores, acme.account_id, "Help@Acme.com", "Help")
    assert address.email == "help@acme.com"
    assert address.kind is AddressKind.FORWARDING and address.connector is None


def test_forwarding_address_cannot_switch_to_connector_in_place(memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "support@acme.com")
    with pytest.raises(RuleViolation) as caught:
        connect(memory_stores, acme.account_id)
    assert caught.value.code == "forwarding_cannot_switch"
    assert "addresses delete support@acme.com" in caught.value.action


def test_forwarding_address_removed_and_added_again_as_connector(memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "support@acme.com")
    lifecycle.delete_address(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    address, _ = connect(memory_stores, acme.account_id)
    assert address.kind is AddressKind.SMTP_CONNECTOR


def test_connecting_twice_points_to_rotate(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    with pytest.raises(ConflictError) as caught:
        connect(memory_stores, acme.account_id)
    assert "rotate" in caught.value.action


def test_delete_removes_address_and_schedules_secret_deletion(memory_stores, acme):
    address, _ = connect(memory_stores, acme.account_id)
    lifecycle.delete_address(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    assert memory_stores.directory.get_address("support@acme.com") is None
    assert address.connector.secret_arn in memory_stores.secrets.deleted


def test_reconnect_after_delete_reuses_the_secret_with_new_credentials(memory_stores, acme):
    address, _ = connect(memory_stores, acme.account_id)
    lifecycle.delete_address(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    new = SmtpCredentials(host="smtp.office365.com", username="support@acme.com", password="another-one")
    lifecycle.connect_address(memory_stores, acme.account_id, "support@acme.com", new, checker=passing_checker())
    stored = json.loads(memory_stores.secrets.get(address.connector.secret_arn, CURRENT).value)
    assert stored["password"] == "another-one"


def test_system_and_default_addresses_cannot_be_deleted(memory_stores, acme):
    with pytest.raises(RuleViolation) as caught:
        lifecycle.delete_address(memory_stores, account_of(memory_stores, "support@acme.mail.relaydesk.test"),
                                 "support@acme.mail.relaydesk.test")
    assert caught.value.code == "system_address"
    connect(memory_stores, acme.account_id)
    verified(memory_stores, "support@acme.com")
    lifecycle.set_default(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    with pytest.raises(RuleViolation) as caught:
        lifecycle.delete_address(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    assert caught.value.code == "default_required"


def test_disable_falls_back_and_enable_requires_outbound_verification_again(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    verified(memory_stores, "support@acme.com")

    disabled = lifecycle.disable(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    assert disabled.connector.state is ConnectorState.DISABLED
    assert not disabled.sends_through_connector

    enabled = lifecycle.enable(memory_stores, account_of(memory_stores, "support@acme.com"), "support@acme.com")
    assert enabled.connector.state is ConnectorState.PENDING
    assert enabled.outbound.status is VerificationStatus.UNVERIFIED
    assert enabled.forwarding.status is VerificationStatus.VERIFIED
    assert not enabled.sends_through_connector


def test_forwarding_address_cannot_be_disabled(memory_stores, acme):
    lifecycle.add_forwarding_address(memory_stores, acme.account_id, "help@acme.com")
    with pytest.raises(RuleViolation) as caught:
        lifecycle.disable(memory_stores, account_of(memory_stores, "help@acme.com"), "help@acme.com")
    assert caught.value.code == "not_a_connector"


def test_update_address_renames(memory_stores, acme):
    connect(memory_stores, acme.account_id)
    assert lifecycle.update_address(memory_stores, account_of(memory_stores, "support@acme.com"),
                                    "support@acme.com", name="Acme Help").name == "Acme Help"


def test_address_verified_in_the_other_environments_stack_is_refused(memory_stores, acme):
    from relaydesk.addresses.model import SupportAddress, Verification
    from relaydesk.store.memory import MemoryDirectory

    production = MemoryDirectory()
    production.create_address(SupportAddress(email="support@acme.com", account_id="A-PROD",
                                             forwarding=Verification(status=VerificationStatus.VERIFIED)))

    with pytest.raises(RuleViolation) as caught:
        lifecycle.connect_address(memory_stores, acme.account_id, "support@acme.com", creds(),
                                  checker=passing_checker(), peers=[("production", production)])
    assert caught.value.code == "address_in_use"
    assert "production environment" in caught.value.message
    with pytest.raises(RuleViolation):
        lifecycle.add_forwarding_address(memory_stores, acme.account_id, "support@acme.com",
                                         peers=[("production", production)])
    assert memory_stores.directory.get_address("support@acme.com") is None


def test_address_only_added_in_the_other_environments_stack_blocks_nothing(memory_stores, acme):
    from relaydesk.addresses.model import SupportAddress
    from relaydesk.store.memory import MemoryDirectory

    production = MemoryDirectory()
    production.create_address(SupportAddress(email="support@acme.com", account_id="A-PROD"))

    address = lifecycle.add_forwarding_address(memory_stores, acme.account_id, "support@acme.com",
                                               peers=[("production", production)])

    assert address.account_id == acme.account_id
