"""`relaydesk suppressions list|remove`: recipients an account no longer sends to, because SES reported a permanent
bounce or a spam complaint for them (docs/OPERATIONS.md)."""

from __future__ import annotations

import argparse
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.addresses import add_json_flag, when
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.errors import ConfigurationError, NotFoundError


def _suppressions(stores: Any):
    if stores.suppressions is None:
        raise ConfigurationError("this stack keeps no suppression list")
    return stores.suppressions


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    stores.directory.get_account(args.account)  # NotFoundError for a mistyped id, not an empty table
    entries = sorted(_suppressions(stores).list(args.account), key=lambda s: s.since)
    if args.json:
        emit([s.model_dump(mode="json") for s in entries], as_json=True)
    else:
        print_table([{"recipient": s.recipient, "reason": s.reason.value, "since": when(s.since),
                      "notification": s.notification_id or "-", "detail": s.detail or "-"} for s in entries],
                    ["recipient", "reason", "since", "notification", "detail"])
    return EXIT_OK


def cmd_remove(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    stores.directory.get_account(args.account)
    if not _suppressions(stores).remove(args.account, args.recipient):
        raise NotFoundError(f"{args.recipient} is not suppressed for account {args.account}",
                            action=f"`relaydesk suppressions list --account {args.account}` shows who is.")
    progress(f"{args.recipient}: notifications of account {args.account} go to it again")
    emit({"recipient": args.recipient.lower(), "account_id": args.account, "removed": True}, as_json=args.json)
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("suppressions", help="recipients not sent to after a bounce or a complaint")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("list", help="the account's suppressed recipients, why and since when")
    sub.add_argument("--account", required=True, help="account id")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_list)
    sub = commands.add_parser("remove", help="send to a recipient again (after it was fixed)")
    sub.add_argument("recipient")
    sub.add_argument("--account", required=True, help="account id")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_remove)
