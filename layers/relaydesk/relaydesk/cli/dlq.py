"""`relaydesk dlq list|redrive`: the notifications that ran out of attempts, whether they went after all, and
sending them again (`relaydesk.outbound.dead_letters` says what a redrive sends and what it takes out)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.errors import NotFoundError
from relaydesk.outbound import dead_letters
from relaydesk.store.ports import DeadLetter

COLUMNS = ["notification", "ticket", "address", "recipients", "receives", "state", "last_error"]


def stored_outcomes(stores: Any) -> Any:
    """The relay's once guard, read-only here: the operator's view also knows outcomes not on a ticket yet."""
    from relaydesk.store.once_dynamodb import dynamo_once

    return dynamo_once(stores.settings.idempotency_table)


def describe(stores: Any, letter: DeadLetter, once: Any = None) -> dict[str, Any]:
    """What an operator needs to decide: whose notification, to whom, whether it went after all, and the last thing
    the server said."""
    view = dead_letters.describe(stores, letter, once)
    return {"notification": view.notification_id or "-", "ticket": view.ticket_id or "-",
            "address": view.support_address or "-", "recipients": ", ".join(view.recipients) or "-",
            "receives": view.receives, "state": view.state, "last_error": view.last_error,
            "sqs_message_id": view.sqs_message_id}


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    once = stored_outcomes(stores)
    rows = [describe(stores, letter, once) for letter in dead_letters.queue(stores).peek()]
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
    once = stored_outcomes(stores)
    done = dead_letters.redrive(stores, None if args.all else set(args.notification_id), once=once)
    for notification_id in done.decided:
        progress(f"{notification_id} was delivered (or failed for good) already, its ticket says so: taken out of "
                 "the DLQ, not sent again")
    for notification_id in done.moved:
        stored = once.stored(notification_id)
        note = " (its outcome is stored: the relay records it on the ticket and sends nothing)" if stored else ""
        progress(f"sent {notification_id} back to the notifications queue{note}")
    if args.json:
        emit({"redriven": done.moved, "already_delivered": done.decided, "not_found": done.not_found}, as_json=True)
    else:
        print(f"{len(done.moved)} notification(s) sent back to the queue")
        if done.decided:
            print(f"{len(done.decided)} already delivered or failed for good, taken out of the DLQ: "
                  f"{', '.join(done.decided)}")
    if done.not_found:
        raise NotFoundError(f"not in the DLQ: {', '.join(done.not_found)}",
                            action="Run `relaydesk dlq list` to see what is there.")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    dlq = subparsers.add_parser("dlq", help="notifications that ran out of delivery attempts")
    commands = dlq.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="what waits in the notifications DLQ, its state and its last error")
    listing.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    listing.set_defaults(func=cmd_list)
    redrive = commands.add_parser("redrive", help="send notifications back to the queue and out of the DLQ")
    redrive.add_argument("--notification-id", action="append", metavar="ID", help="this notification (repeatable)")
    redrive.add_argument("--all", action="store_true", help="everything in the DLQ")
    redrive.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    redrive.set_defaults(func=cmd_redrive)
