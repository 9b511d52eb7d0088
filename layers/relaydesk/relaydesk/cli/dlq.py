"""`relaydesk dlq list|redrive`: the notifications that ran out of attempts, and sending them again."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.errors import NotFoundError
from relaydesk.outbound import dead_letters
from relaydesk.store.sqs_dlq import DeadLetter

COLUMNS = ["notification", "ticket", "address", "recipients", "receives", "last_error"]


def describe(stores: Any, letter: DeadLetter) -> dict[str, Any]:
    """What an operator needs to decide: whose notification, to whom, and the last thing the server said."""
    view = dead_letters.describe(stores, letter)
    return {"notification": view.notification_id or "-", "ticket": view.ticket_id or "-",
            "address": view.support_address or "-", "recipients": ", ".join(view.recipients) or "-",
            "receives": view.receives, "last_error": view.last_error, "sqs_message_id": view.sqs_message_id}


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    rows = [describe(stores, letter) for letter in dead_letters.queue(stores).peek()]
    if args.json:
        emit(rows, as_json=True)
    else:
        print_table(rows, COLUMNS)
    return EXIT_OK


def cmd_redrive(args: argparse.Namespace) -> int:
    if not args.all and not args.notification_id:
        print("error: name a notification with --notification-id ID, or pass --all", file=sys.stderr)
        return 2
    stores = context.load_stores(args)
    moved, missing = dead_letters.redrive(stores, None if args.all else set(args.notification_id))
    for notification_id in moved:
        progress(f"sent {notification_id} back to the notifications queue")
    if args.json:
        emit({"redriven": moved, "not_found": missing}, as_json=True)
    else:
        print(f"{len(moved)} notification(s) sent back to the queue")
    if missing:
        raise NotFoundError(f"not in the DLQ: {', '.join(missing)}",
                            action="Run `relaydesk dlq list` to see what is there.")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    dlq = subparsers.add_parser("dlq", help="notifications that ran out of delivery attempts")
    commands = dlq.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="what waits in the notifications DLQ, with its last error")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    listing.set_defaults(func=cmd_list)
    redrive = commands.add_parser("redrive", help="send notifications back to the queue and out of the DLQ")
    redrive.add_argument("--notification-id", action="append", metavar="ID", help="this notification (repeatable)")
    redrive.add_argument("--all", action="store_true", help="everything in the DLQ")
    redrive.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    redrive.set_defaults(func=cmd_redrive)
