"""Fixtures: every data resource of template.yaml, created in moto, and the environment the functions would get
Each test gets a fresh moto account, so no state leaks between tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


def _clear_caches() -> None:
    from relaydesk import destinations
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    get_settings.cache_clear()
    aws_stores.cache_clear()
    destinations.policy.cache_clear()


@pytest.fixture
def aws_stack_env(monkeypatch: pytest.MonkeyPatch):
    """moto running, template.yaml provisioned in it; yields the RELAYDESK_* (and POWERTOOLS_*) environment, set."""
    import boto3
    from moto import mock_aws

    from local.aws_resources import provision

    with mock_aws():
        env = provision(boto3.session.Session(), template_path=TEMPLATE)
        for name, value in env.items():
            if name.startswith("RELAYDESK_"):  # POWERTOOLS_* stay as tests/conftest.py sets them
                monkeypatch.setenv(name, value)
        _clear_caches()
        yield env
        _clear_caches()


@pytest.fixture
def aws_stack(aws_stack_env):
    """The `Stores` backed by moto resources built from template.yaml (aws_stores(), caches cleared)."""
    from relaydesk.wiring import aws_stores

    return aws_stores()


@pytest.fixture
def aws_cli(aws_stack, monkeypatch, capsys):
    """Runs `relaydesk ...` in process against `aws_stack` (stdin given per call); returns (exit code, stdout,
    stderr)."""
    import io

    from relaydesk.cli import main

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def atomic_moto_writes(monkeypatch):
    """For tests that write from several threads: DynamoDB applies each request to an item atomically; moto's backend
    does not (two threads appending 300 CCs each to one list kept 819 of 900; an update deep-copying an item while
    another thread adds an attribute raises "dictionary changed size during iteration"). One lock around each
    backend request gives moto that property and nothing more: the threads still interleave between requests, as two
    Lambdas do."""
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("get_item", "put_item", "update_item", "delete_item", "query", "transact_write_items"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def serialized(*args, _original=original, **kwargs):
            with lock:
                return _original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, serialized)
