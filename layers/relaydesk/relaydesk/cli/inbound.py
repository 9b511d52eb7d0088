"""`relaydesk inbound replay`: reprocess inbound mail that failed after Lambda's retries (inbound DLQ or S3 key)."""

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


def _row(ses_message_id: str, result, error: str | None) -> dict[str, str]:
    if error:
        return {"ses_message_id": ses_message_id, "outcome": "failed", "reason": error, "ticket": "-"}
    return {"ses_message_id": ses_message_id, "outcome": result.outcome.value, "reason": result.reason or "-",
            "ticket": result.ticket_id or "-"}


def cmd_replay(args: argparse.Namespace) -> int:
    from relaydesk.inbound.replay import replay_dead_letters, replay_from_s3
    from relaydesk.store.inbound_dynamodb import aws_dead_letters, aws_inbound_ports

    stores = context.load_stores(args)
    ports = aws_inbound_ports()
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
