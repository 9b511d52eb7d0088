"""Connector credentials: cached with a bounded age, per version stage, read again after a refusal."""

from __future__ import annotations

import pytest
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import ConfigurationError
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.store.memory import MemorySecrets

SECRET = "relaydesk/connector/support@acme.test"


def _value(password: str) -> str:
    return SmtpCredentials(host="smtp.acme.test", username="support@acme.test", password=password).to_secret_string()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def secrets() -> MemorySecrets:
    store = MemorySecrets()
    store.create(SECRET, _value("current-pw"), {})
    return store


def test_a_warm_container_reads_the_secret_once_within_the_cache_age(secrets):
    clock = Clock()
    cache = CredentialCache(secrets, 300, clock=clock)
    first = cache.get(SECRET)
    clock.now += 299
    assert cache.get(SECRET) == first
    assert secrets.reads == 1
    clock.now += 2
    cache.get(SECRET)
    assert secrets.reads == 2


def test_asking_for_the_pending_version_gets_the_pending_version_not_the_cached_current(secrets):
    cache = CredentialCache(secrets, 300)
    current = cache.get(SECRET, "AWSCURRENT")
    secrets.put_version(SECRET, _value("pending-pw"), ["AWSPENDING"])
    pending = cache.get(SECRET, "AWSPENDING")
    assert current.credentials.password.get_secret_value() == "current-pw"
    assert pending.credentials.password.get_secret_value() == "pending-pw"
    assert pending.version_id != current.version_id and pending.stage == "AWSPENDING"


def test_after_a_refusal_the_new_current_and_a_staged_version_are_offered_past_the_cache(secrets):
    cache = CredentialCache(secrets, 300)
    old = cache.get(SECRET)
    secrets.put_version(SECRET, _value("rotated-pw"), ["AWSCURRENT"])
    secrets.put_version(SECRET, _value("staged-pw"), ["AWSPENDING"])
    assert cache.get(SECRET) == old  # still cached
    offered = cache.alternatives(SECRET, {old.version_id})
    assert [v.credentials.password.get_secret_value() for v in offered] == ["rotated-pw", "staged-pw"]
    assert cache.get(SECRET).credentials.password.get_secret_value() == "rotated-pw"  # the cache refreshed


def test_nothing_new_after_a_refusal_means_no_alternative(secrets):
    cache = CredentialCache(secrets, 300)
    old = cache.get(SECRET)
    assert cache.alternatives(SECRET, {old.version_id}) == []


def test_a_malformed_secret_names_the_field_never_the_value(secrets):
    secrets.put_version(SECRET, '{"host": "smtp.acme.test", "port": "not-a-port", "password": "leaky-pw"}',
                        ["AWSCURRENT"])
    with pytest.raises(ConfigurationError) as raised:
        CredentialCache(secrets, 0).get(SECRET)
    assert "leaky-pw" not in str(raised.value) and "port" in str(raised.value)
