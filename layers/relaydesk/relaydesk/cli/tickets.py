"""`relaydesk tickets list|show`: an account's tickets a page at a time, and one ticket with its conversation and
the delivery of every notification. The commands that change a ticket are in `cli/ticket_actions.py`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from relaydesk.cli import context, identity, tenant_tickets, ticket_actions
from relaydesk.cli.addresses import add_json_flag, when
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.tickets import queries
from relaydesk.tickets.model import Comment, DeliveryAttempt, Ticket, TicketStatus

BODY_SHOWN = 2000  # characters of a comment shown in the terminal; --json has all of it


def ticket_row(ticket: Ticket) -> dict[str, str]:
    return {
        "ticket": ticket.ticket_id,
        "status": ticket.status.value + (f" ({ticket.suspension_reason.value})" if ticket.suspension_reason else ""),
        "requester": ticket.requester,
        "assignee": ticket.assignee.name if ticket.assignee else "-",
        "subject": ticket.subject[:60],
        "updated": when(ticket.updated_at),
    }


def since(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date or time like 2026-11-24T09:00, not {value[:40]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cmd_list(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.list_tickets(args, session)
    stores = context.load_stores(args)
    ticket_actions.require_account(args)
    stores.directory.get_account(args.account)
    tickets, cursor = queries.list_page(stores, args.account, status=args.status, requester=args.requester,
                                        updated_since=args.updated_since, limit=args.limit, cursor=args.cursor)
    if args.json:
        emit([t.model_dump(mode="json") for t in tickets], as_json=True)
    else:
        print_table([ticket_row(t) for t in tickets],
                    ["ticket", "status", "requester", "assignee", "subject", "updated"])
    if cursor:  # on stderr, so --json output stays the list it always was
        progress(f"more: relaydesk tickets list --account {args.account} --cursor {cursor}")
    return EXIT_OK


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    view: dict[str, Any] = {
        "ticket": ticket.ticket_id,
        "account_id": ticket.account_id,
        "status": ticket.status.value,
        "subject": ticket.subject,
        "requester": ticket.requester,
        "support_address": ticket.support_address,
        "assignee": f"{ticket.assignee.name} ({ticket.assignee.agent_id})" if ticket.assignee else "-",
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


def server_said(attempt: DeliveryAttempt) -> str:
    """The code and the server's reply once: the reply usually starts with the code already."""
    code = " ".join(str(p) for p in (attempt.smtp_code, attempt.enhanced_status) if p)
    reply = " ".join(attempt.reply.split())
    return reply if not code or reply.startswith(code) else f"{code} {reply}".strip()


def delivery_rows(ticket: Ticket) -> list[dict[str, str]]:
    rows = []
    for record in ticket.notifications:
        if not record.attempts:
            rows.append({"notification": record.notification_id, "status": record.status.value,
                         "recipients": ", ".join(record.recipients), "route": "-", "reply": "", "at": "-"})
        for attempt in record.attempts:
            rows.append({"notification": record.notification_id, "status": attempt.status.value,
                         "recipients": ", ".join(record.recipients), "route": attempt.route or "-",
                         "reply": server_said(attempt)[:80], "at": when(attempt.at)})
    return rows


def comment_lines(comment: Comment, ticket: Ticket) -> list[str]:
    kind = "reply" if comment.agent and comment.public else "internal note" if not comment.public else "mail"
    head = f"--- {when(comment.created_at)}  {comment.author}  ({kind})"
    body = comment.body if len(comment.body) <= BODY_SHOWN else comment.body[:BODY_SHOWN] + "\n[... --json has all]"
    lines = [head, *(f"    {line}" for line in body.splitlines() or ["(no text)"])]
    lines += [f"    attachment: {a.filename} ({a.size} bytes)" for a in comment.attachments]
    records = {r.notification_id: r for r in ticket.notifications}
    for notification_id in comment.notification_ids:
        record = records.get(notification_id)
        state = f"{record.status.value} to {', '.join(record.recipients)}" if record else "not queued"
        lines.append(f"    mail {notification_id}: {state}")
    return lines


def cmd_show(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.show_ticket(args, session)
    stores = context.load_stores(args)
    account_id = args.account or ticket_actions.account_of(stores, args.ticket_id)
    ticket = queries.ticket_of(stores, account_id, args.ticket_id)
    if args.json:
        emit(ticket.model_dump(mode="json"), as_json=True)
        return EXIT_OK
    emit(ticket_view(ticket), as_json=False)
    print("\nconversation:")
    for comment in sorted(ticket.comments, key=lambda c: c.created_at):
        print("\n".join(comment_lines(comment, ticket)))
    print("\nnotifications:")
    print_table(delivery_rows(ticket), ["notification", "status", "recipients", "route", "reply", "at"])
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("tickets", help="tickets: read them, answer them, change them")
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("list", help="an account's tickets, newest update first, a page at a time")
    sub.add_argument("--account", help="account id (signed in: your own, the default)")
    sub.add_argument("--status", choices=[s.value for s in TicketStatus], help="only tickets with this status")
    sub.add_argument("--requester", help="only tickets of this requester (an email address)")
    sub.add_argument("--updated-since", type=since, help="only tickets updated since (ISO date or time, UTC)")
    sub.add_argument("--limit", type=int, default=25, choices=range(1, 101), metavar="1-100", help="per page")
    sub.add_argument("--cursor", help="the next page, as the previous page printed it")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_list)

    sub = commands.add_parser("show", help="one ticket: its conversation, status and every delivery")
    sub.add_argument("ticket_id")
    sub.add_argument("--account", help="account id (checked against the ticket's)")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_show)

    ticket_actions.register(commands)
