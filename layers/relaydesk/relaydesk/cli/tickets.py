"""`relaydesk tickets ...`: status, requester, suspension reason and the delivery of every notification."""

from __future__ import annotations

import argparse
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.addresses import add_json_flag, when
from relaydesk.cli.output import EXIT_OK, emit, print_table
from relaydesk.errors import NotFoundError
from relaydesk.tickets.model import DeliveryStatus, Ticket


def delivery_summary(ticket: Ticket) -> str:
    if not ticket.notifications:
        return "-"
    delivered = sum(1 for n in ticket.notifications if n.status is DeliveryStatus.DELIVERED)
    return f"{delivered}/{len(ticket.notifications)} delivered"


def ticket_row(ticket: Ticket) -> dict[str, str]:
    return {
        "ticket": ticket.ticket_id,
        "status": ticket.status.value + (f" ({ticket.suspension_reason.value})" if ticket.suspension_reason else ""),
        "requester": ticket.requester,
        "support_address": ticket.support_address,
        "subject": ticket.subject[:60],
        "notifications": delivery_summary(ticket),
        "updated": when(ticket.updated_at),
    }


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    stores.directory.get_account(args.account)
    tickets = sorted(stores.tickets.list_tickets(args.account), key=lambda t: t.created_at)
    if args.status:
        tickets = [t for t in tickets if t.status.value == args.status]
    if args.json:
        emit([t.model_dump(mode="json") for t in tickets], as_json=True)
    else:
        print_table([ticket_row(t) for t in tickets],
                    ["ticket", "status", "requester", "support_address", "subject", "notifications", "updated"])
    return EXIT_OK


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    view: dict[str, Any] = {
        "ticket": ticket.ticket_id,
        "account_id": ticket.account_id,
        "status": ticket.status.value,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "support_address": ticket.support_address,
        "ccs": ", ".join(ticket.ccs) or "-",
        "followers": ", ".join(ticket.followers) or "-",
        "comments": len(ticket.comments),
        "created_at": when(ticket.created_at),
        "updated_at": when(ticket.updated_at),
    }
    if ticket.suspension_reason is not None:
        view["suspension_reason"] = ticket.suspension_reason.value
        view["suspension_explanation"] = ticket.suspension_explanation or "-"
    if ticket.flags:
        view["flags"] = ", ".join(ticket.flags)
    return view


def delivery_rows(ticket: Ticket) -> list[dict[str, str]]:
    rows = []
    for record in ticket.notifications:
        if not record.attempts:
            rows.append({"notification": record.notification_id, "status": record.status.value,
                         "recipients": ", ".join(record.recipients), "route": "-", "reply": "", "at": "-"})
        for attempt in record.attempts:
            code = " ".join(str(p) for p in (attempt.smtp_code, attempt.enhanced_status) if p)
            rows.append({"notification": record.notification_id, "status": attempt.status.value,
                         "recipients": ", ".join(record.recipients), "route": attempt.route or "-",
                         "reply": f"{code} {attempt.reply}".strip()[:80], "at": when(attempt.at)})
    return rows


def cmd_show(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    ticket = stores.tickets.get_ticket(args.ticket_id)
    if ticket is None:
        raise NotFoundError(f"no ticket {args.ticket_id!r}",
                            action="List tickets with `relaydesk tickets list --account ID`.")
    if args.json:
        emit(ticket.model_dump(mode="json"), as_json=True)
        return EXIT_OK
    emit(ticket_view(ticket), as_json=False)
    print()
    print("notifications:")
    print_table(delivery_rows(ticket), ["notification", "status", "recipients", "route", "reply", "at"])
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("tickets", help="tickets and the delivery of their notifications")
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("list", help="an account's tickets")
    sub.add_argument("--account", required=True, help="account id")
    sub.add_argument("--status", help="only tickets with this status (e.g. suspended)")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_list)

    sub = commands.add_parser("show", help="one ticket: status, requester, suspension reason, deliveries")
    sub.add_argument("ticket_id")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_show)
