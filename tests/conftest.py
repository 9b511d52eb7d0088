"""Every test runs with fake AWS credentials and no profile, so nothing can reach a real account."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

# Shared fixtures: AWS resources built from template.yaml in moto, and local SMTP servers with a local CA.
pytest_plugins = ["tests.fixtures_aws", "tests.fixtures_smtp"]

# The suite is a gate: every run tries the same generated examples, so a pass on a fresh clone means the same as a
# pass here. `HYPOTHESIS_PROFILE=explore make test` draws new examples each run, to look for new failures.
settings.register_profile("gate", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "gate"))

for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "relaydesk-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "RelaydeskTests",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_DEV": "false",
    # The local stack runs the handlers in threads of the test process: their EMF metric lines (printed to stdout at
    # each flush) would land in whatever a test is capturing from stdout at that moment, such as a CLI's --json.
    "POWERTOOLS_METRICS_DISABLED": "true",
    # Test smarthosts and token endpoints listen on loopback: allowed as the operator allows a private smarthost.
    "RELAYDESK_ALLOWED_DESTINATIONS": "127.0.0.0/8,::1/128",
    "RELAYDESK_ALLOWED_TOKEN_HOSTS": "127.0.0.1,localhost",
    # No test ever uses a developer's own `relaydesk login` session; a test that signs in sets its own file.
    "RELAYDESK_SESSION_FILE": os.path.join(os.path.dirname(__file__), ".no-session", "session.json"),
})


@pytest.fixture
def memory_stores():
    """The storage ports as in-memory fakes (unit tests)."""
    from relaydesk.config import Settings
    from relaydesk.store.memory import MemoryBlobs, MemoryDirectory, MemoryQueue, MemorySecrets, MemoryTickets
    from relaydesk.wiring import Stores

    settings = Settings(mail_domain="mail.relaydesk.test", tickets_table="t", directory_table="d",
                        idempotency_table="i", counters_table="c", raw_mail_bucket="b",
                        notifications_queue_url="https://sqs.invalid/q")
    return Stores(directory=MemoryDirectory(), tickets=MemoryTickets(), blobs=MemoryBlobs(),
                  secrets=MemorySecrets(), queue=MemoryQueue(), settings=settings)
