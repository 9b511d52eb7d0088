"""The relay's credential lookups against Secrets Manager (moto, from template.yaml): each stage gets its own
version, whatever the cache holds."""

from __future__ import annotations

from relaydesk.credentials import SmtpCredentials
from relaydesk.outbound.credentials import CredentialCache


def _value(password: str) -> str:
    return SmtpCredentials(host="smtp.acme.test", username="support@acme.test", password=password).to_secret_string()


def test_pending_lookup_gets_the_pending_version_even_with_current_cached(aws_stack):
    secrets = aws_stack.secrets
    arn = secrets.create(aws_stack.settings.secret_prefix + "support@acme.test", _value("current-pw"), {})
    cache = CredentialCache(secrets, 3600)
    current = cache.get(arn, "AWSCURRENT")
    pending_version = secrets.put_version(arn, _value("pending-pw"), ["AWSPENDING"])

    pending = cache.get(arn, "AWSPENDING")

    assert pending.version_id == pending_version != current.version_id
    assert pending.credentials.password.get_secret_value() == "pending-pw"
    assert cache.get(arn, "AWSCURRENT").credentials.password.get_secret_value() == "current-pw"


def test_after_a_refusal_the_rotated_current_version_is_read_past_the_cache(aws_stack):
    secrets = aws_stack.secrets
    arn = secrets.create(aws_stack.settings.secret_prefix + "support@acme.test", _value("old-pw"), {})
    cache = CredentialCache(secrets, 3600)
    refused = cache.get(arn)
    secrets.put_version(arn, _value("rotated-pw"), ["AWSCURRENT"])

    [fresh] = cache.alternatives(arn, {refused.version_id})

    assert fresh.credentials.password.get_secret_value() == "rotated-pw"
    assert fresh.version_id != refused.version_id
