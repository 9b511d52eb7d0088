"""`relaydesk tickets ...` of a signed-in tenant user: the same commands and output as the operator's, through the
tenant API's ticket routes, for the user's own account only. What the user writes is signed by its token (the API
takes the author from it); a comment's text still comes from stdin or a file only."""

from __future__ import annotations

import argparse
import mimetypes
from pathlib import Path
from typing import Any
from urllib.parse import quote

from relaydesk.cli.output import EXIT_OK, UsageError, emit, print_table, progress
from relaydesk.cli.session import Session
from relaydesk.cli.tenant_addresses import _own_account
from relaydesk.cli.tenant_client import TenantClient
from relaydesk.cli.uploader import post_form
from relaydesk.errors import ApiFailed, RuleViolation
from relaydesk.tickets import replies, requests, uploads

BODY_SHOWN = 2000  # characters of a comment shown in the terminal; --json has what the API returned
AGENT_FLAGS = ("agent_name", "agent_email", "agent_id")


def _client(args: argparse.Namespace, session: Session) -> TenantClient:
    _own_account(args, session)
    if any(getattr(args, flag, None) for flag in AGENT_FLAGS):
        raise UsageError(f"signed in, you write as yourself ({session.username}): --agent-* is the operator's",
                         action="Leave out --agent-name/--agent-email/--agent-id.")
    return TenantClient(session)


def _ticket_path(client: TenantClient, ticket_id: str, suffix: str = "") -> str:
    return f"{client.account_path}/tickets/{quote(ticket_id.strip(), safe='')}{suffix}"


def _when(value: str | None) -> str:
    return (value or "-").replace("T", " ")[:19]


def _row(ticket: dict[str, Any]) -> dict[str, str]:
    reason = f" ({ticket['suspension_reason']})" if ticket.get("suspension_reason") else ""
    return {"ticket": ticket["ticket_id"], "status": ticket["status"] + reason, "requester": ticket["requester"],
            "assignee": (ticket.get("assignee") or {}).get("name", "-"), "subject": ticket["subject"][:60],
            "updated": _when(ticket["updated_at"])}


def list_tickets(args: argparse.Namespace, session: Session) -> int:
    client = _client(args, session)
    page = client.call("GET", f"{client.account_path}/tickets", query={
        "status": args.status, "requester": args.requester, "limit": args.limit, "cursor": args.cursor,
        "updated_since": args.updated_since.isoformat() if args.updated_since else None})
    if args.json:
        emit(page["tickets"], as_json=True)
    else:
        print_table([_row(t) for t in page["tickets"]], ["ticket", "status", "requester", "assignee", "subject",
                                                         "updated"])
    if page.get("next_cursor"):  # on stderr, so --json output stays the list it always was
        progress(f"more: relaydesk tickets list --cursor {page['next_cursor']}")
    return EXIT_OK


def _comment_lines(comment: dict[str, Any], deliveries: dict[str, dict[str, Any]]) -> list[str]:
    kind = {"mail": "mail", "reply": "reply", "note": "internal note"}[comment["kind"]]
    body = comment["body"] if len(comment["body"]) <= BODY_SHOWN else comment["body"][:BODY_SHOWN] + \
        "\n[... --json has more]"
    lines = [f"--- {_when(comment['created_at'])}  {comment['author']}  ({kind})",
             *(f"    {line}" for line in body.splitlines() or ["(no text)"])]
    lines += [f"    attachment: {a['filename']} ({a['size']} bytes)" for a in comment["attachments"]]
    for notification_id in comment["notification_ids"]:
        sent = deliveries.get(notification_id)
        state = ", ".join(f"{r['recipient']} {r['status']}" for r in sent["recipients"]) if sent else "not queued"
        lines.append(f"    mail {notification_id}: {state}")
    return lines


def _delivery_rows(notifications: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"notification": n["notification_id"], "recipient": r["recipient"], "status": r["status"],
             "reply": " ".join((r.get("reply") or "").split())[:80], "at": _when(r.get("at"))}
            for n in notifications for r in n["recipients"]]


def show_ticket(args: argparse.Namespace, session: Session) -> int:
    client = _client(args, session)
    ticket = client.call("GET", _ticket_path(client, args.ticket_id))
    if args.json:
        emit(ticket, as_json=True)
        return EXIT_OK
    assignee = ticket.get("assignee")
    emit({"ticket": ticket["ticket_id"], "status": ticket["status"], "subject": ticket["subject"],
          "requester": ticket["requester"], "support_address": ticket["support_address"],
          "assignee": f"{assignee['name']} ({assignee.get('email') or assignee['agent_id']})" if assignee else "-",
          "ccs": ", ".join(ticket["ccs"]) or "-", "followers": ", ".join(ticket["followers"]) or "-",
          "comments": len(ticket["comments"]) + ticket["comments_omitted"],
          "created_at": _when(ticket["created_at"]), "updated_at": _when(ticket["updated_at"])}, as_json=False)
    print("\nconversation:")
    if ticket["comments_omitted"]:
        print(f"({ticket['comments_omitted']} older comments not shown)")
    deliveries = {n["notification_id"]: n for n in ticket["notifications"]}
    for comment in ticket["comments"]:
        print("\n".join(_comment_lines(comment, deliveries)))
    print("\ndeliveries (per recipient):")
    print_table(_delivery_rows(ticket["notifications"]), ["notification", "recipient", "status", "reply", "at"])
    return EXIT_OK


def _upload(client: TenantClient, ticket_id: str, path: str) -> str:
    """The file POSTed straight to S3 with the API's presigned form, as the console's browser does; its key."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except OSError as error:
        raise RuleViolation(f"cannot read {path}: {error}", rule="attachment_file") from None
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    if not 0 < len(data) <= uploads.MAX_ATTACHMENT_BYTES:  # said here rather than after asking for a form
        raise RuleViolation(f"{file.name}: an attachment is 1 byte to "
                            f"{uploads.MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB", rule="attachment_size")
    form = client.call("POST", _ticket_path(client, ticket_id, "/uploads"),
                       {"filename": file.name[:255], "content_type": kind, "size": len(data)})
    post_form(form["url"], form["fields"], file.name, kind, data)
    progress(f"uploaded {file.name} ({len(data)} bytes)")
    return form["key"]


def comment(args: argparse.Namespace, session: Session, text: str) -> int:
    client = _client(args, session)
    replies.checked_body(text)  # refused before anything is uploaded
    request_id = requests.checked(args.request_id)
    keys = [_upload(client, args.ticket_id, path) for path in args.attach or []]
    body: dict[str, Any] = {"body": text, "attachments": keys}
    if args.command == "reply" and args.status:
        body["status"] = args.status
    route = "/replies" if args.command == "reply" else "/notes"
    try:
        posted = client.call("POST", _ticket_path(client, args.ticket_id, route), body,
                             headers={"Idempotency-Key": request_id})
    except ApiFailed:  # no answer, or the API failed mid-way: the same id finishes it without repeating
        progress(f"interrupted: run the same command with --request-id {request_id} to finish it "
                 "(nothing is written or sent twice)")
        raise
    emit({"ticket": posted["ticket_id"], "comment_id": posted["comment"]["comment_id"],
          "public": posted["comment"]["public"], "notifications": posted["notification_ids"],
          "status": posted["status"], "request_id": posted["request_id"]}, as_json=args.json)
    return EXIT_OK


def change_status(args: argparse.Namespace, session: Session) -> int:
    client = _client(args, session)
    changed = client.call("PUT", _ticket_path(client, args.ticket_id, "/status"), {"status": args.status},
                          headers={"Idempotency-Key": requests.checked(args.request_id)})
    emit({"ticket": changed["ticket_id"], "status": changed["status"], "changed": changed["changed"],
          "notification": changed.get("notification_id") or "-"}, as_json=args.json)
    return EXIT_OK


def assign(args: argparse.Namespace, session: Session) -> int:
    client = _client(args, session)
    who = None if args.unassign else session.username if args.me else args.to
    if not args.unassign and not who:
        raise UsageError("assign to whom?", action="Give --to AGENT_EMAIL, --me or --unassign.")
    ticket = client.call("PUT", _ticket_path(client, args.ticket_id, "/assignee"), {"assignee": who})
    assignee = ticket.get("assignee")
    emit({"ticket": ticket["ticket_id"], "assignee": assignee["name"] if assignee else "-"}, as_json=args.json)
    return EXIT_OK


def people(args: argparse.Namespace, session: Session) -> int:
    client = _client(args, session)
    kind = "ccs" if args.command == "cc" else "followers"
    if args.action == "add":
        ticket = client.call("POST", _ticket_path(client, args.ticket_id, f"/{kind}"), {"addresses": args.addresses})
    else:
        for address in dict.fromkeys(args.addresses):
            ticket = client.call("DELETE", _ticket_path(client, args.ticket_id,
                                                        f"/{kind}/{quote(address.strip(), safe='')}"))
    emit({"ticket": ticket["ticket_id"], "ccs": ", ".join(ticket["ccs"]) or "-",
          "followers": ", ".join(ticket["followers"]) or "-"}, as_json=args.json)
    return EXIT_OK
