"""`relaydesk users add | role`: the operator creates a user of one account, in the admin or agent role. The account
is set once, when the user is created, and can never change (the user pool's attribute is immutable)."""

from __future__ import annotations

import argparse
import os
import sys

from relaydesk.cli import context
from relaydesk.cli.addresses import add_json_flag
from relaydesk.cli.output import EXIT_OK, emit, progress
from relaydesk.errors import ConfigurationError

NAME_MAX_LENGTH = 120  # as an agent's name on a ticket


def _users():
    from relaydesk.cli.context import aws_client
    from relaydesk.store.cognito import CognitoUsers

    pool = os.environ.get("RELAYDESK_USER_POOL_ID", "")
    if not pool:
        raise ConfigurationError("the stack names no user pool", action="Deploy the stack with its UserPool first.")
    return CognitoUsers(aws_client("cognito-idp"), pool)


def cmd_add(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    account = stores.directory.get_account(args.account)  # NotFoundError: no user for an account that is not there
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else None
    email = args.email.strip().lower()
    name = " ".join((args.name or "").split())[:NAME_MAX_LENGTH] or None  # one line: it goes into a From
    _users().add(email, account.account_id, args.role, password=password, name=name)
    how = "with the password given" if password else "Cognito emails an invitation with a temporary password"
    progress(f"{email} is a user of account {account.account_id} ({args.role}); {how}")
    emit({"email": email, "account_id": account.account_id, "role": args.role}, as_json=args.json)
    return EXIT_OK


def cmd_role(args: argparse.Namespace) -> int:
    context.ensure_stack_environment(args)
    _users().set_role(args.email.strip().lower(), args.role)
    progress(f"{args.email} is now {args.role}; it takes effect at the user's next sign-in or token refresh")
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("users", help="users of an account (the operator): add, change role")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("add", help="a user of one account, in the admin or agent role")
    sub.add_argument("email")
    sub.add_argument("--account", required=True, help="the account the user belongs to (never changes)")
    sub.add_argument("--role", choices=["admin", "agent"], required=True)
    sub.add_argument("--name", help="the user's name, shown in the From of its replies (\"Bob Agent\")")
    sub.add_argument("--password-stdin", action="store_true",
                     help="set this password (from stdin) instead of Cognito's emailed invitation")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_add)
    sub = commands.add_parser("role", help="move a user to the admin or agent role")
    sub.add_argument("email")
    sub.add_argument("--role", choices=["admin", "agent"], required=True)
    sub.set_defaults(func=cmd_role)
