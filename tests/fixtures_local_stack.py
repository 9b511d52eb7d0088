"""What the tests that run against the whole local stack share: the admin's `relaydesk` in its own process (the
demo's runner, `local/cli_runner.py`) and the stores the test observes with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from local.cli_runner import run_cli

AdminRun = Callable[..., tuple[int, str, str]]


def admin_cli(stack: Any, *, timeout: float) -> AdminRun:
    """`run("addresses", "show", ..., stdin=...)` -> (exit code, stdout, stderr), with the env the stack wrote."""

    def run(*argv: str, stdin: str = "") -> tuple[int, str, str]:
        done = run_cli(list(argv), env=stack.env, stdin=stdin, timeout=timeout)
        return done.code, done.stdout, done.stderr

    return run


def observed_stores() -> Any:
    """The stack's stores as the test reads them (the CLI is what the admin acts with), settings read afresh."""
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    get_settings.cache_clear()
    aws_stores.cache_clear()
    return aws_stores()
