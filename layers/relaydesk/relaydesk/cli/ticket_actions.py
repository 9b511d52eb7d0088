"""`relaydesk tickets reply|note|status|assign|cc|followers`: an agent's work on a ticket, with the same rules as
the API. A comment's text comes from stdin or a file, never from an argument (shell history, the process list)."""

from __future__ import annotations

import argparse
import mimetypes
import os
import sys
from pathlib import Path

from relaydesk.cli import context, identity, tenant_tickets
from relaydesk.cli.addresses import add_json_flag
from relaydesk.cli.output import EXIT_OK, UsageError, emit, progress
from relaydesk.errors import NotFoundError, RuleViolation
from relaydesk.tickets import assignees, participants, replies, requests, status, uploads
from relaydesk.tickets.model import Agent, Ticket
from relaydesk.tickets.status import AGENT_STATUSES

AGENT_ENV = ("RELAYDESK_AGENT_NAME", "RELAYDESK_AGENT_EMAIL", "RELAYDESK_AGENT_ID")


def require_account(args: argparse.Namespace) -> None:
    if not args.account:
        raise UsageError("--account is required as the operator", action="Name the ticket's account: --account ID "
                         "(a signed-in user acts for its own account without it).")


def account_of(stores, ticket_id: str) -> str:
    ticket = stores.tickets.get_ticket(ticket_id) if len(ticket_id) <= 40 else None
    if ticket is None:
        raise NotFoundError(f"no ticket {ticket_id[:40]!r}",
                            action="List tickets with `relaydesk tickets list --account ID`.")
    return ticket.account_id


def agent_of(args: argparse.Namespace) -> Agent:
    name = args.agent_name or os.environ.get("RELAYDESK_AGENT_NAME", "")
    email = (args.agent_email or os.environ.get("RELAYDESK_AGENT_EMAIL", "")).strip().lower() or None
    agent_id = args.agent_id or os.environ.get("RELAYDESK_AGENT_ID", "") or email or ""
    if not name.strip() or not agent_id:
        raise RuleViolation("who is answering? an agent needs a name and an id or email", rule="agent_required",
                            action="Pass --agent-name and --agent-email (or set RELAYDESK_AGENT_NAME and "
                                   "RELAYDESK_AGENT_EMAIL).")
    try:
        return Agent(agent_id=agent_id[:128], name=" ".join(name.split())[:120], email=email)
    except ValueError as error:
        raise RuleViolation(f"the agent is not valid: {error.errors()[0]['msg']}",  # type: ignore[attr-defined]
                            rule="agent_required") from None


def body_of(args: argparse.Namespace) -> str:
    if args.body_file and args.body_file != "-":
        try:
            return Path(args.body_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise RuleViolation(f"cannot read {args.body_file}: {error}", rule="body_file") from None
    if sys.stdin.isatty():
        progress("Type the comment; end with Ctrl-D on a line of its own.")
    return sys.stdin.read(replies.MAX_BODY_CHARS * 4 + 1)  # bounded: the rule check says what is too long


def upload(stores, account_id: str, path: str) -> str:
    """The file POSTed to S3 with a presigned form, as the console's browser does; returns its key."""
    from relaydesk.cli.uploader import post_form

    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise RuleViolation(f"cannot read {path}: {error}", rule="attachment_file") from None
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    form = uploads.upload_form(stores, account_id, file.name, kind, len(data))
    post_form(form.url, form.fields, file.name, kind, data)
    progress(f"uploaded {file.name} ({len(data)} bytes)")
    return form.key


def cmd_comment(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.comment(args, session, body_of(args))
    require_account(args)
    stores = context.load_stores(args)
    agent = agent_of(args)
    text = body_of(args)
    replies.checked_body(text)  # refused before anything is uploaded
    keys = [upload(stores, args.account, path) for path in args.attach or []]
    request_id = args.request_id or requests.new_request_id()
    try:
        if args.command == "reply":
            posted = replies.reply(stores, args.account, args.ticket_id, agent=agent, body=text, attachments=keys,
                                   status=args.status, request_id=request_id)
        else:
            posted = replies.note(stores, args.account, args.ticket_id, agent=agent, body=text, attachments=keys,
                                  request_id=request_id)
    except (RuleViolation, NotFoundError):  # refused before anything was written
        raise
    except Exception:  # a store failed mid-way: say how to finish it without repeating anything
        progress(f"interrupted: run the same command with --request-id {request_id} to finish it "
                 "(nothing is written or sent twice)")
        raise
    result = {"ticket": args.ticket_id, "comment_id": posted.comment.comment_id, "public": posted.comment.public,
              "notifications": posted.notification_ids, "status": posted.ticket.status.value,
              "request_id": posted.request_id}
    emit(result, as_json=args.json)
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.change_status(args, session)
    require_account(args)
    stores = context.load_stores(args)
    change = status.change_status(stores, args.account, args.ticket_id, args.status, agent=agent_of(args),
                                  request_id=args.request_id)
    emit({"ticket": args.ticket_id, "status": change.ticket.status.value, "changed": change.changed,
          "notification": change.notification_id or "-"}, as_json=args.json)
    return EXIT_OK


def cmd_assign(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.assign(args, session)
    require_account(args)
    if args.me:
        raise UsageError("--me is for a signed-in user", action="Name the agent with --to or --agent-name/-email.")
    stores = context.load_stores(args)
    if args.to:  # a user of the account, looked up in the user pool as the API does
        ticket = assignees.assign_to(stores, args.account, args.ticket_id, args.to)
    else:
        ticket = status.assign(stores, args.account, args.ticket_id, None if args.unassign else agent_of(args))
    emit({"ticket": ticket.ticket_id, "assignee": ticket.assignee.name if ticket.assignee else "-"},
         as_json=args.json)
    return EXIT_OK


def cmd_people(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_tickets.people(args, session)
    require_account(args)
    stores = context.load_stores(args)
    role = participants.Role.CC if args.command == "cc" else participants.Role.FOLLOWER
    change = participants.add if args.action == "add" else participants.remove
    ticket: Ticket = change(stores, args.account, args.ticket_id, role, args.addresses)
    emit({"ticket": ticket.ticket_id, "ccs": ", ".join(ticket.ccs) or "-",
          "followers": ", ".join(ticket.followers) or "-"}, as_json=args.json)
    return EXIT_OK


def _common(sub: argparse.ArgumentParser, *, agent: bool = True) -> None:
    sub.add_argument("ticket_id")
    sub.add_argument("--account", help="account id (signed in: your own, the default)")
    if agent:
        sub.add_argument("--agent-name", help="the agent's name, shown in the reply's From (or RELAYDESK_AGENT_NAME)")
        sub.add_argument("--agent-email", help="the agent's own address (or RELAYDESK_AGENT_EMAIL)")
        sub.add_argument("--agent-id", help="the agent's id (default: the email; or RELAYDESK_AGENT_ID)")
    add_json_flag(sub)


def register(commands: argparse._SubParsersAction) -> None:
    for name, help_text in (("reply", "a public reply: mailed to the requester and CCs, and to the followers"),
                            ("note", "an internal note: seen by agents only, mailed to nobody")):
        sub = commands.add_parser(name, help=help_text,
                                  description=f"{help_text}. The text comes from stdin or --body-file.")
        _common(sub)
        sub.add_argument("--body-file", help="read the text from this file ('-': stdin, the default)")
        sub.add_argument("--attach", action="append", metavar="FILE", help="attach a file (repeat for more)")
        if name == "reply":
            sub.add_argument("--status", choices=[s.value for s in AGENT_STATUSES],
                             help="submit as this status (default: open for a new ticket, else unchanged)")
        sub.add_argument("--request-id", help="finish an interrupted command: the id it printed")
        sub.set_defaults(func=cmd_comment)

    sub = commands.add_parser("status", help="set a ticket open, pending or solved")
    _common(sub)
    sub.add_argument("status", choices=[s.value for s in AGENT_STATUSES])
    sub.add_argument("--request-id", help=argparse.SUPPRESS)
    sub.set_defaults(func=cmd_status)

    sub = commands.add_parser("assign", help="assign a ticket to an agent or admin of its account, or --unassign it")
    _common(sub)
    who = sub.add_mutually_exclusive_group()
    who.add_argument("--to", metavar="EMAIL", help="a user of the account (agent or admin), by address")
    who.add_argument("--me", action="store_true", help="yourself (signed in)")
    who.add_argument("--unassign", action="store_true")
    sub.set_defaults(func=cmd_assign)

    for name, role in (("cc", "CCs"), ("followers", "followers")):
        sub = commands.add_parser(name, help=f"add or remove {role} (the account's CCs-and-followers rules apply)")
        _common(sub, agent=False)
        sub.add_argument("action", choices=["add", "remove"])
        sub.add_argument("addresses", nargs="+", metavar="ADDRESS")
        sub.set_defaults(func=cmd_people)
