"""Which identity and which stack a command uses: said on stderr before every command that changes something, and the
rule for which commands a signed-in tenant user may run (the rest are the operator's, with AWS credentials)."""

from __future__ import annotations

import os
from argparse import Namespace

from relaydesk.cli import context
from relaydesk.cli import session as sessions
from relaydesk.errors import ConfigurationError

# Commands that only read; every other command changes something and says who does it, where.
READ_ONLY = {("addresses", "list"), ("addresses", "show"), ("accounts", "show"), ("accounts", "list"),
             ("suppressions", "list"), ("dns", "check"), ("dlq", "list"),
             ("tickets", "list"), ("tickets", "show"), ("whoami", None), ("token", None), ("login", None),
             ("logout", None)}
# What a tenant user may do through the tenant API; everything else needs the operator (--operator).
TENANT_COMMANDS = {("addresses", "list"), ("addresses", "show"), ("addresses", "add"), ("addresses", "rename"),
                   ("addresses", "set-default"), ("addresses", "delete"), ("accounts", "show"),
                   *(("tickets", command) for command in ("list", "show", "reply", "note", "status", "assign", "cc",
                                                           "followers"))}
SESSION_COMMANDS = {"login", "logout", "whoami", "token"}


def command_of(args: Namespace) -> tuple[str, str | None]:
    return args.group, getattr(args, "command", None)


def tenant_session(args: Namespace) -> sessions.Session | None:
    """The signed-in user's session, unless --operator asks for the operator's AWS credentials."""
    if getattr(args, "operator", False) or args.group in SESSION_COMMANDS:
        return None
    return sessions.load()


def check_allowed(args: Namespace) -> None:
    session = tenant_session(args)
    if session is not None and command_of(args) not in TENANT_COMMANDS:
        name = " ".join(part for part in command_of(args) if part)
        raise ConfigurationError(
            f"`relaydesk {name}` is an operator command; you are signed in as {session.username}, a user of "
            f"account {session.account_id}",
            action="Run it with --operator and the operator's AWS credentials, or `relaydesk logout` first.")


def describe(args: Namespace) -> str:
    session = tenant_session(args)
    if session is not None:
        return (f"as {session.username} ({session.role} of account {session.account_id}) on the tenant API "
                f"{session.api_url}")
    return f"as the operator ({_aws_identity()}) on {_stack(args)}"


def _aws_identity() -> str:
    """Named from the environment only (no AWS call): a profile, or the access key id's last four characters."""
    if os.environ.get("AWS_PROFILE"):
        return f"AWS profile {os.environ['AWS_PROFILE']}"
    key = os.environ.get("AWS_ACCESS_KEY_ID", "")
    return f"AWS access key ...{key[-4:]}" if key else "the default AWS credential chain"


def _stack(args: Namespace) -> str:
    if os.environ.get("RELAYDESK_TICKETS_TABLE"):
        endpoint = os.environ.get("AWS_ENDPOINT_URL")
        return f"the local stack at {endpoint}" if endpoint else "the stack named by the RELAYDESK_* environment"
    name = getattr(args, "stack", None) or context.stack_name_from_samconfig(getattr(args, "env", None))
    return f"stack {name}" if name else "no stack yet"
