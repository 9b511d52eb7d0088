"""Provider profiles: the published limits are a table; an admin lowers them per address, never raises a provider's."""

from __future__ import annotations

import pytest
from relaydesk.addresses.limits import limits_of, set_limits
from relaydesk.addresses.model import AddressKind, Connector, ConnectorState, SupportAddress
from relaydesk.addresses.presets import PRESETS, PROFILE_OF_PRESET
from relaydesk.addresses.providers import PROFILES, LimitOverrides, effective_limits, profile_for
from relaydesk.errors import ConfigurationError
from relaydesk.store.memory import MemoryDirectory


def test_the_published_limits_are_the_providers():
    microsoft, google = PROFILES["microsoft365"].limits, PROFILES["google"].limits
    assert (microsoft.messages_per_minute, microsoft.recipients_per_day, microsoft.connections) == (30, 10_000, 3)
    assert (google.messages_per_day, google.recipients_per_message) == (2000, 100)
    assert PROFILES["amazon-ses"].limits.recipients_per_message == 50


def test_every_preset_names_a_profile_and_the_host_tells_the_provider_when_nothing_does():
    assert set(PROFILE_OF_PRESET) <= set(PRESETS) and set(PROFILE_OF_PRESET.values()) <= set(PROFILES)
    assert profile_for(None, "smtp.office365.com").name == "microsoft365"
    assert profile_for(None, "SMTP.Gmail.com.").name == "google"
    assert profile_for(None, "email-smtp.eu-west-1.amazonaws.com").name == "amazon-ses"
    assert profile_for(None, "mail.acme.test").name == "other"
    assert profile_for("exchange", "mail.acme.test").name == "exchange"
    assert profile_for("no-such-provider", "smtp.office365.com").name == "microsoft365"


def test_lower_limits_apply_and_a_published_one_is_never_raised():
    microsoft = PROFILES["microsoft365"]
    lowered = effective_limits(microsoft, LimitOverrides(messages_per_minute=10, connections=1))
    assert (lowered.messages_per_minute, lowered.connections, lowered.recipients_per_day) == (10, 1, 10_000)
    assert effective_limits(microsoft, LimitOverrides(messages_per_minute=100)).messages_per_minute == 30
    own_server = effective_limits(PROFILES["postfix"], LimitOverrides(messages_per_minute=600))
    assert own_server.messages_per_minute == 600  # the customer's own server: its own limits


@pytest.fixture
def directory():
    directory = MemoryDirectory()
    directory.create_address(SupportAddress(
        email="support@acme.test", account_id="A1", kind=AddressKind.SMTP_CONNECTOR,
        connector=Connector(host="smtp.office365.com", secret_arn="arn:secret", state=ConnectorState.ACTIVE)))
    return directory


def test_an_admin_lowers_an_addresss_limits_and_they_are_kept_with_its_connector(directory):
    set_limits(directory, "A1", "support@acme.test", overrides=LimitOverrides(messages_per_minute=12))
    set_limits(directory, "A1", "support@acme.test", overrides=LimitOverrides(connections=2))
    address = directory.get_account_address("A1", "support@acme.test")
    assert address.connector.limits.given() == {"messages_per_minute": 12, "connections": 2}
    assert limits_of(address).messages_per_minute == 12
    set_limits(directory, "A1", "support@acme.test", reset=True)
    assert limits_of(directory.get_account_address("A1", "support@acme.test")).messages_per_minute == 30


def test_raising_microsofts_limit_is_refused_naming_the_providers_figure(directory):
    with pytest.raises(ConfigurationError) as refused:
        set_limits(directory, "A1", "support@acme.test", overrides=LimitOverrides(messages_per_minute=31))
    assert "Microsoft 365 allows at most 30 for messages per minute" in refused.value.message
    assert directory.get_account_address("A1", "support@acme.test").connector.limits is None  # nothing saved


@pytest.mark.parametrize("hostile", [0, -1, 10**12])
def test_a_limit_outside_its_bounds_is_refused(hostile):
    with pytest.raises(ValueError):
        LimitOverrides(messages_per_minute=hostile)


def test_naming_the_provider_changes_the_profile(directory):
    address = set_limits(directory, "A1", "support@acme.test", provider="postfix",
                         overrides=LimitOverrides(messages_per_minute=120))
    assert address.connector.provider == "postfix" and limits_of(address).messages_per_minute == 120
    with pytest.raises(ConfigurationError):
        set_limits(directory, "A1", "support@acme.test", provider="hotmail")
