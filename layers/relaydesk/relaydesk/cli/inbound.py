"""`relaydesk inbound replay`: reprocess inbound mail that failed after Lambda's retries (inbound DLQ or S3 key).
`relaydesk inbound original`: the full view of a comment that came by mail: its raw mail, whole, as SES stored it."""

from __future__ import annotations

import argparse

from relaydesk.cli import context
from relaydesk.cli.output import EXIT_ERROR, EXIT_NOT_FOUND, EXIT_OK, emit, progress


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("inbound", help="inbound mail: replay what failed").add_subparsers(
        dest="inbound_command", required=True)
    replay = group.add_parser("replay", help="reprocess failed inbound mail from the inbound DLQ (or by S3 key)")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("--ses-message-id", metavar="ID",
                       help="this message: from the DLQ if it is there, else from s3://<bucket>/inbound/ID")
    which.add_argument("--all", action="store_true", help="every message in the inbound DLQ")
    replay.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")
    replay.set_defaults(func=cmd_replay)
    original = group.add_parser("original", help="the raw mail a ticket's comment came from, whole (the full view)")
    original.add_argument("ticket_id")
    original.add_argument("--comment", metavar="ID", help="this comment (default: the ticket's first)")
    original.add_argument("--output", "-o", metavar="FILE", help="write it here instead of to stdout")
    original.set_defaults(func=cmd_original)


def _row(ses_message_id: str, result, error: str | None) -> dict[str, str]:
    if error:
        return {"ses_message_id": ses_message_id, "outcome": "failed", "reason": error, "ticket": "-"}
    return {"ses_message_id": ses_message_id, "outcome": result.outcome.value, "reason": result.reason or "-",
            "ticket": result.ticket_id or "-"}


def cmd_replay(args: argparse.Namespace) -> int:
    from relaydesk.inbound.replay import replay_dead_letters, replay_from_s3
    from relaydesk.store.inbound_dynamodb import aws_dead_letters, aws_inbound_ports
    from relaydesk.store.retrying import retrying

    # A throttled store call is tried a few times (no invocation clock here), as the inbound function does.
    stores = retrying(context.load_stores(args), None)
    ports = retrying(aws_inbound_ports(), None)
    rows: list[dict[str, str]] = []
    if stores.settings.inbound_dlq_url:
        progress("reading the inbound DLQ ...")
        dead = aws_dead_letters(stores.settings.inbound_dlq_url)
        for item in replay_dead_letters(stores, ports, dead, ses_message_id=args.ses_message_id):
            rows.append(_row(item.ses_message_id, item.result, item.error))
    if args.ses_message_id and not any(r["ses_message_id"] == args.ses_message_id for r in rows):
        progress(f"{args.ses_message_id} is not in the DLQ; replaying it from its raw mail in S3 ...")
        result = replay_from_s3(stores, ports, args.ses_message_id)
        rows.append(_row(args.ses_message_id, result, None))
    emit(rows, as_json=args.json, columns=["ses_message_id", "outcome", "reason", "ticket"])
    if args.ses_message_id and not rows:
        return EXIT_NOT_FOUND
    return EXIT_ERROR if any(r["outcome"] == "failed" for r in rows) else EXIT_OK


def raw_mail_of(stores, ticket_id: str, comment_id: str | None) -> str:
    """The S3 key of the raw mail behind a ticket's comment (NotFoundError when there is none)."""
    from relaydesk.errors import NotFoundError
    from relaydesk.inbound.receipt import raw_mail_key

    ticket = stores.tickets.get_ticket(ticket_id)
    if ticket is None:
        raise NotFoundError(f"no ticket {ticket_id!r}", action="List tickets with `relaydesk tickets list`.")
    comment = next((c for c in ticket.comments if comment_id in (None, c.comment_id)), None)
    if comment is None or not comment.ses_message_id:
        which = f"comment {comment_id}" if comment_id else "first comment"
        raise NotFoundError(f"ticket {ticket_id} has no {which} that came by mail",
                            action="`relaydesk tickets show TICKET --json` lists its comments and their ids.")
    return raw_mail_key(comment.ses_message_id)


def cmd_original(args: argparse.Namespace) -> int:
    import sys

    stores = context.load_stores(args)
    key = raw_mail_of(stores, args.ticket_id, args.comment)
    if args.output:
        with open(args.output, "wb") as out:
            for chunk in stores.blobs.chunks(key):
                out.write(chunk)
        progress(f"wrote s3://{stores.settings.raw_mail_bucket}/{key} to {args.output}")
    else:
        for chunk in stores.blobs.chunks(key):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    return EXIT_OK
