"""The destination guard where Relaydesk connects: a smarthost or token endpoint on loopback (as a stand-in for the
metadata service or a private network) is refused by the live check, the relay and the token fetch, and no byte
reaches it; the operator's allow-list is what lets the local stack and the rest of the suite use 127.0.0.1."""

from __future__ import annotations

import pytest
from relaydesk import destinations
from relaydesk.addresses.live_check import run_live_check
from relaydesk.credentials import AuthKind, SmtpCredentials, TlsMode
from relaydesk.errors import OAuthTokenError
from relaydesk.oauth import AccessTokens
from relaydesk.tickets.model import DeliveryStatus

from tests.integration.relay_harness import relay_harness


@pytest.fixture
def public_only(monkeypatch):
    """The operator allowed nothing beyond public addresses and the providers' token hosts."""
    monkeypatch.setenv("RELAYDESK_ALLOWED_DESTINATIONS", "")
    monkeypatch.setenv("RELAYDESK_ALLOWED_TOKEN_HOSTS", "")
    destinations.policy.cache_clear()
    yield
    destinations.policy.cache_clear()


def credentials_for(server) -> SmtpCredentials:
    return SmtpCredentials(host="127.0.0.1", port=server.port, tls_mode=TlsMode.STARTTLS, username=server.username,
                           password=server.password, ca_bundle_pem=server.ca_pem)


def test_the_live_check_refuses_a_loopback_smarthost_at_dns_and_never_connects(smarthost, public_only):
    report = run_live_check(credentials_for(smarthost), timeout=5)

    assert not report.ok
    assert report.failed_step.name == "dns"
    assert "127.0.0.1, a loopback address Relaydesk never connects to" in report.failed_step.detail
    assert smarthost.stats.connections == 0


def test_the_live_check_connects_when_the_operator_allows_the_address(smarthost):
    report = run_live_check(credentials_for(smarthost), timeout=5)  # the suite's allow-list: 127.0.0.0/8

    assert report.ok and smarthost.stats.connections == 1


def test_the_relay_refuses_a_smarthost_that_resolves_to_a_non_public_address(aws_stack_env, monkeypatch, smarthost):
    for relay in relay_harness(aws_stack_env, monkeypatch):
        relay.connect("support@acme.test", smarthost)
        monkeypatch.setenv("RELAYDESK_ALLOWED_DESTINATIONS", "")
        destinations.policy.cache_clear()
        notification = relay.notification("support@acme.test")
        relay.enqueue(notification)

        relay.poll()

        record = relay.record(notification)
        # As a TLS policy it cannot meet: deferred (then the DLQ) until the settings or the allow-list change.
        assert record.status is DeliveryStatus.DEFERRED
        assert "loopback address Relaydesk never connects to" in record.attempts[-1].reply
        assert smarthost.stats.connections == 0
        address = relay.stores.directory.get_account_address(notification.account_id, "support@acme.test")
        assert "RELAYDESK_ALLOWED_DESTINATIONS" in address.last_error  # what to do, on the address
        destinations.policy.cache_clear()


def oauth_credentials(token_url: str, smarthost: str = "smtp.office365.com") -> SmtpCredentials:
    return SmtpCredentials(host=smarthost, username="support@acme.test", auth_kind=AuthKind.OAUTH2,
                           oauth_client_id="app-1", oauth_client_secret="client-S3cret", oauth_token_url=token_url)


def test_a_token_url_off_the_providers_host_is_refused_before_the_secret_is_sent(token_server, public_only):
    with pytest.raises(OAuthTokenError) as refused:
        AccessTokens().token(oauth_credentials(token_server.token_url))

    assert refused.value.oauth_error == "destination_refused" and not refused.value.transient
    assert "client-S3cret" not in refused.value.message
    assert token_server.requests == 0


def test_an_allowed_token_host_on_a_non_public_address_is_refused_at_connect(token_server, monkeypatch,
                                                                              public_only):
    monkeypatch.setenv("RELAYDESK_ALLOWED_TOKEN_HOSTS", "127.0.0.1")  # the host, but not the address
    destinations.policy.cache_clear()

    with pytest.raises(OAuthTokenError) as refused:
        AccessTokens().token(oauth_credentials(token_server.token_url))

    assert refused.value.oauth_error == "destination_refused"
    assert token_server.requests == 0
