"""`relaydesk dlq list|redrive`: the notifications that ran out of attempts, and sending them again.

A notification found delivered (its ticket's delivery record says so) is never sent back: redrive takes it out of
the DLQ and says so. One whose outcome the relay stored but whose ticket does not say so yet is sent back: the relay
replays the stored outcome onto the ticket without sending anything.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.errors import ConfigurationError, NotFoundError
from relaydesk.notification import Notification
from relaydesk.outbound.relay import DECIDED, parse_record
from relaydesk.store.sqs_dlq import DeadLetter, SqsDeadLetters

COLUMNS = ["notification", "ticket", "address", "recipients", "receives", "state", "last_error"]
DECIDED_STATES = {outcome.value for outcome in DECIDED.values()}


def dead_letters(stores: Any) -> SqsDeadLetters:
    from relaydesk.wiring import aws_client

    settings = stores.settings
    if not settings.notifications_dlq_url:
        raise ConfigurationError("the stack names no notifications DLQ (RELAYDESK_NOTIFICATIONS_DLQ_URL)")
    return SqsDeadLetters(aws_client("sqs"), settings.notifications_dlq_url, settings.notifications_queue_url)


def stored_outcomes(stores: Any) -> Any:
    from relaydesk.store.once_dynamodb import dynamo_once

    return dynamo_once(stores.settings.idempotency_table)


def delivery_state(stores: Any, once: Any, notification: Notification) -> str:
    """"delivered" / "failed" as the ticket's delivery record has it; "stored <outcome>" when only the relay's stored
    outcome knows; else "waiting"."""
    if notification.ticket_id:
        record = stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is not None and record.status in DECIDED:
            return DECIDED[record.status].value
    stored = once.stored(notification.notification_id)
    return f"stored {stored.get('outcome', '?')}" if stored else "waiting"


def describe(stores: Any, letter: DeadLetter, once: Any) -> dict[str, Any]:
    """What an operator needs to decide: whose notification, to whom, whether it went after all, and the last thing
    the server said."""
    notification = parse_record({"body": letter.body})
    if notification is None:
        return {"notification": "-", "ticket": "-", "address": "-", "recipients": "-",
                "receives": letter.receive_count, "state": "unreadable",
                "last_error": "not a Notification (unreadable body)", "sqs_message_id": letter.message_id}
    last_error = ""
    if notification.ticket_id:
        record = stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is not None and record.attempts:
            attempt = record.attempts[-1]
            last_error = f"{attempt.route} {attempt.reply}".strip()
    return {"notification": notification.notification_id, "ticket": notification.ticket_id or "-",
            "address": notification.support_address,
            "recipients": ", ".join([*notification.recipients, *notification.cc]),
            "receives": letter.attempts or letter.receive_count, "state": delivery_state(stores, once, notification),
            "last_error": last_error or letter.reason or "unknown", "sqs_message_id": letter.message_id}


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    once = stored_outcomes(stores)
    rows = [describe(stores, letter, once) for letter in dead_letters(stores).peek()]
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
    dlq = dead_letters(stores)
    once = stored_outcomes(stores)
    wanted = set(args.notification_id or [])
    moved: list[str] = []
    delivered: list[str] = []
    skipped: list[DeadLetter] = []
    while True:
        batch = dlq.take()
        if not batch:
            break
        for letter in batch:
            notification = parse_record({"body": letter.body})
            notification_id = notification.notification_id if notification else None
            if not (args.all or notification_id in wanted):
                skipped.append(letter)
                continue
            state = delivery_state(stores, once, notification) if notification else "unreadable"
            if notification is not None and state in DECIDED_STATES:
                dlq.discard(letter)  # its ticket says it went (or failed for good): never sent again
                delivered.append(notification.notification_id)
                progress(f"{notification.notification_id} was {state} already (its ticket says so): taken out of "
                         "the DLQ, not sent again")
                continue
            dlq.redrive(letter, notification_id)
            moved.append(notification_id or letter.message_id)
            note = " (its outcome is stored: the relay records it on the ticket and sends nothing)" \
                if state.startswith("stored") else ""
            progress(f"sent {notification_id or letter.message_id} back to the notifications queue{note}")
        if not args.all and wanted <= {*moved, *delivered}:
            break
    for letter in skipped:
        dlq.release(letter)
    missing = sorted(wanted - {*moved, *delivered})
    if args.json:
        emit({"redriven": moved, "already_delivered": delivered, "not_found": missing}, as_json=True)
    else:
        print(f"{len(moved)} notification(s) sent back to the queue")
        if delivered:
            print(f"{len(delivered)} already delivered or failed for good, taken out of the DLQ: "
                  f"{', '.join(delivered)}")
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
