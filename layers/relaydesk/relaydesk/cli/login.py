"""`relaydesk login | logout | whoami | token`: a tenant user's session (Cognito), for the tenant API."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from relaydesk.cli import session as sessions
from relaydesk.cli.output import EXIT_OK, emit, progress
from relaydesk.errors import ConfigurationError


def _setting(value: str | None, variable: str, what: str) -> str:
    found = value or os.environ.get(variable, "")
    if not found:
        raise ConfigurationError(f"no {what}", action=f"Pass it, or set {variable} (your operator gives it).")
    return found


def _ask(prompt: str) -> str:
    return getpass.getpass(prompt)


def cmd_login(args: argparse.Namespace) -> int:
    username = args.username or input("username (email): ").strip()
    password = sys.stdin.readline().rstrip("\r\n") if args.password_stdin else getpass.getpass("password: ")
    session = sessions.sign_in(
        username=username, password=password,
        user_pool_id=_setting(args.user_pool_id, "RELAYDESK_USER_POOL_ID", "user pool id"),
        client_id=_setting(args.client_id, "RELAYDESK_CLI_CLIENT_ID", "app client id"),
        api_url=_setting(args.api_url, "RELAYDESK_TENANT_API_URL", "tenant API URL"), ask=_ask)
    sessions.save(session)
    progress(f"signed in as {session.username} ({session.role} of account {session.account_id}) on "
             f"{session.api_url}; tokens kept in {sessions.cache_path()} (readable by you only)")
    return EXIT_OK


def cmd_logout(args: argparse.Namespace) -> int:
    session = sessions.forget()
    if session is None:
        progress("not signed in")
        return EXIT_OK
    try:
        sessions.revoke(session)
        progress(f"signed out {session.username}; the refresh token is revoked")
    except sessions.SignInError as error:
        progress(f"signed out {session.username} on this machine; Cognito did not revoke the refresh token "
                 f"({error.message}): it stops working when it expires")
    return EXIT_OK


def cmd_whoami(args: argparse.Namespace) -> int:
    session = sessions.load()
    if session is None:
        emit({"identity": "operator (AWS credentials)", "signed_in": False}, as_json=args.json)
        return EXIT_OK
    emit({"identity": session.username, "account_id": session.account_id, "role": session.role,
          "api": session.api_url, "session_expires_in_s": max(0, int(session.expires_at - _now()))},
         as_json=args.json)
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    """The ID token, refreshed if needed, for `curl -H "Authorization: Bearer $(relaydesk token)"`."""
    session = sessions.load()
    if session is None:
        raise sessions.SignInError("not signed in", action="Sign in first: `relaydesk login`.")
    print(sessions.fresh(session).id_token)
    return EXIT_OK


def _now() -> float:
    import time

    return time.time()


def register(groups: argparse._SubParsersAction) -> None:
    sub = groups.add_parser("login", help="sign in as a user of your account (the tenant API)")
    sub.add_argument("--username", help="your email address")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    sub.add_argument("--user-pool-id", help="default: RELAYDESK_USER_POOL_ID")
    sub.add_argument("--client-id", help="default: RELAYDESK_CLI_CLIENT_ID")
    sub.add_argument("--api-url", help="the stack's TenantApiUrl (https://); default: RELAYDESK_TENANT_API_URL")
    sub.set_defaults(func=cmd_login)
    groups.add_parser("logout", help="forget the session and revoke its refresh token").set_defaults(func=cmd_logout)
    groups.add_parser("whoami", help="who the CLI acts as: a signed-in user, or the operator").set_defaults(
        func=cmd_whoami)
    groups.add_parser("token", help="print your ID token (refreshed when needed), for curl").set_defaults(
        func=cmd_token)
