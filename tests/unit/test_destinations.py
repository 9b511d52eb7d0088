"""Where Relaydesk connects on a customer's behalf: public addresses only, unless the operator allows more; the token
URL of a provider's smarthost only on that provider's token host."""

from __future__ import annotations

import pytest
from relaydesk import destinations
from relaydesk.destinations import DestinationRefused


@pytest.fixture
def no_allow_list(monkeypatch):
    monkeypatch.setenv("RELAYDESK_ALLOWED_DESTINATIONS", "")
    monkeypatch.setenv("RELAYDESK_ALLOWED_TOKEN_HOSTS", "")
    destinations.policy.cache_clear()
    yield
    destinations.policy.cache_clear()


@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.8.9.10", "::1",  # loopback
    "169.254.169.254", "169.254.170.2", "fe80::1", "fd00:ec2::254",  # link-local, the metadata services
    "10.0.0.5", "172.16.3.4", "192.168.1.1", "fc00::1",  # private
    "100.64.0.1",  # shared (carrier-grade NAT)
    "0.0.0.0", "::",  # unspecified  # noqa: S104 - an address to refuse, nothing binds to it
    "224.0.0.1", "ff02::1",  # multicast
    "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
    "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a9fe:a9fe::1",  # NAT64, 6to4 carrying the above
    "192.0.2.1", "198.51.100.7", "240.0.0.1",  # documentation, reserved
])
def test_non_public_addresses_are_refused(no_allow_list, address):
    with pytest.raises(DestinationRefused) as refused:
        destinations.check("smtp.evil.example", [address])

    assert "nothing was sent" in refused.value.message
    assert refused.value.code == "destination_refused"


@pytest.mark.parametrize("address", ["52.96.223.2", "142.250.102.108", "2603:1036:3000::1", "2a00:1450:400c::6c"])
def test_public_addresses_are_allowed(no_allow_list, address):
    assert destinations.check("smtp.office365.com", [address]) == [address]


def test_one_private_answer_refuses_the_whole_host(no_allow_list):
    with pytest.raises(DestinationRefused):
        destinations.check("rebind.example", ["52.96.223.2", "169.254.169.254"])


def test_the_operators_allow_list_admits_a_private_smarthost_and_nothing_else(monkeypatch, no_allow_list):
    monkeypatch.setenv("RELAYDESK_ALLOWED_DESTINATIONS", "10.0.4.0/24, 127.0.0.1")
    destinations.policy.cache_clear()

    assert destinations.check("mail.internal", ["10.0.4.25"]) == ["10.0.4.25"]
    assert destinations.check("localhost", ["127.0.0.1"]) == ["127.0.0.1"]
    with pytest.raises(DestinationRefused):
        destinations.check("mail.internal", ["10.0.5.25"])
    with pytest.raises(DestinationRefused):
        destinations.check("metadata", ["169.254.169.254"])


def test_a_malformed_allow_list_fails_at_once_naming_the_setting(monkeypatch, no_allow_list):
    monkeypatch.setenv("RELAYDESK_ALLOWED_DESTINATIONS", "10.0.0.0/8,not-a-network")

    with pytest.raises(destinations.ConfigurationError) as error:
        destinations.Policy.from_environment()

    assert "RELAYDESK_ALLOWED_DESTINATIONS" in error.value.message


@pytest.mark.parametrize("smarthost,url", [
    ("smtp.office365.com", "https://login.microsoftonline.com/tenant/oauth2/v2.0/token"),
    ("smtp.gmail.com", "https://oauth2.googleapis.com/token"),
])
def test_a_providers_token_url_on_its_own_host_is_allowed(no_allow_list, smarthost, url):
    assert destinations.token_url_refusal(url, smarthost) is None


@pytest.mark.parametrize("smarthost,url", [
    ("smtp.office365.com", "https://login.microsoftonline.com.evil.example/token"),
    ("smtp.office365.com", "https://attacker.example/token"),
    ("smtp.gmail.com", "https://login.microsoftonline.com/t/oauth2/v2.0/token"),
    ("mail.acme.example", "https://login.acme.example/token"),  # no known provider: only what the operator allows
    ("smtp.office365.com", "https://169.254.169.254/latest/meta-data/"),
])
def test_any_other_token_host_is_refused_before_anything_is_sent(no_allow_list, smarthost, url):
    refused = destinations.token_url_refusal(url, smarthost)

    assert refused is not None and "is not allowed" in refused.message


def test_the_operator_may_allow_another_token_host(monkeypatch, no_allow_list):
    monkeypatch.setenv("RELAYDESK_ALLOWED_TOKEN_HOSTS", "adfs.acme.example")
    destinations.policy.cache_clear()

    assert destinations.token_url_refusal("https://adfs.acme.example/adfs/oauth2/token", "mail.acme.example") is None
