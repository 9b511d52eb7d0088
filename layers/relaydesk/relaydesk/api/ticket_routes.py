"""The ticket routes of the tenant API (`/accounts/{account_id}/tickets...`), for the agent role and up: each one a thin
call into `relaydesk.tickets`, acting for the caller's own account only (the gate has checked account and role).

What an agent writes is signed by its token: the author of a reply or note, and who solved a ticket, are the signed-in
user (`sub`, `name` and `email` of the ID token), never a field of the body. A POST retried with the same
`Idempotency-Key` (the domain's request id) writes and sends nothing twice."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Literal
from urllib.parse import unquote

from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query

from relaydesk.api.identity import Caller, Role
from relaydesk.api.responses import documented
from relaydesk.api.routing import RouteTable
from relaydesk.api.schemas import ACCOUNT_ID_MAX_LENGTH
from relaydesk.api.ticket_schemas import (
    AssigneeChange,
    CommentOut,
    NewNote,
    NewPeople,
    NewReply,
    NewUpload,
    NotificationList,
    PostedComment,
    StatusChange,
    StatusChanged,
    TicketOut,
    TicketPageOut,
    TicketSummary,
    UploadForm,
)
from relaydesk.cursors import MAX_CURSOR
from relaydesk.errors import RuleViolation
from relaydesk.store.ports import Stores
from relaydesk.tickets import assignees, participants, queries, replies, requests, uploads
from relaydesk.tickets import status as ticket_status
from relaydesk.tickets.model import TICKET_PAGE_LIMIT, Agent, TicketStatus

TAG = "tickets"
AUTH_ERRORS = (401, 403, 404)  # the gate's answers, on every route
AccountId = Annotated[str, Path(max_length=ACCOUNT_ID_MAX_LENGTH, description="your account's id (the token's)")]
TicketId = Annotated[str, Path(max_length=64, description="the ticket's id (T...); another account's answers 404")]
PersonId = Annotated[str, Path(max_length=3 * 254, description="the address, URL-encoded (carol%40example.org)")]
IdempotencyKey = Annotated[str | None, Header(
    pattern=requests.REQUEST_ID.pattern, description="8 to 64 letters, digits, '-' or '_': a new random one per "
    "request, the same one only to retry it (nothing is written or sent twice)")]
TICKET_CHANGE = {"ccs": participants.Role.CC, "followers": participants.Role.FOLLOWER}


def author(caller: Caller) -> Agent:
    """The signed-in user as the agent who writes: the token's `sub`, name and address."""
    if not caller.email:
        raise RuleViolation("your sign-in carries no email address, so no reply can name you", rule="author_unknown",
                            action="Ask the operator to check your user in the user pool (its email attribute).")
    return Agent(agent_id=(caller.subject or caller.email)[:128], name=caller.name or caller.email.partition("@")[0],
                 email=caller.email)


def since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise RuleViolation("updated_since is a date or time like 2026-11-24T09:00:00Z", rule="updated_since",
                            action="Give an ISO 8601 date or time (UTC unless it names its offset).") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_ticket_routes(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    """Registers every ticket route on the tenant route table, each with the agent role (admins may too)."""

    def account() -> str:
        return caller().account_id

    @routes.get("/tickets", role=Role.AGENT, tags=[TAG], summary="Your account's tickets, newest update first",
                description="One page at a time (a query of the account's own index, never a scan); `next_cursor` "
                            "gets the next page. The cursor holds a position only, never an account.",
                responses=documented(200, TicketPageOut, "a page of tickets", 400, *AUTH_ERRORS))
    def list_tickets(
        account_id: AccountId,
        status: Annotated[Literal["new", "open", "pending", "solved", "suspended"] | None,
                          Query(description="only tickets with this status")] = None,
        requester: Annotated[str | None, Query(max_length=254, description="only this requester's tickets")] = None,
        assignee: Annotated[str | None, Query(max_length=254, description="only the tickets of this agent (an "
                                                                          "address), or `none`: unassigned")] = None,
        updated_since: Annotated[str | None, Query(max_length=40, description="ISO 8601; UTC unless it says")] = None,
        limit: Annotated[int, Query(ge=1, le=TICKET_PAGE_LIMIT, description="tickets per page")] = 25,
        cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description="from the last page")] = None,
    ) -> TicketPageOut:
        tickets, next_cursor = queries.list_page(
            get_stores(), account(), status=TicketStatus(status) if status else None, requester=requester,
            assignee=assignee, updated_since=since(updated_since), limit=limit, cursor=cursor)
        return TicketPageOut(tickets=[TicketSummary.of(t) for t in tickets], next_cursor=next_cursor)

    @routes.get("/tickets/<ticket_id>", role=Role.AGENT, tags=[TAG],
                summary="One ticket: every comment, public or internal, and the delivery of every mail it sent",
                responses=documented(200, TicketOut, "the ticket", *AUTH_ERRORS))
    def show_ticket(account_id: AccountId, ticket_id: TicketId) -> TicketOut:
        return TicketOut.of(queries.ticket_of(get_stores(), account(), ticket_id))

    @routes.get("/tickets/<ticket_id>/notifications", role=Role.AGENT, tags=[TAG],
                summary="The delivery records of the ticket's notifications, per recipient",
                description="Each mail the ticket sent, its attempts with the server's replies, and for each "
                            "recipient what became of it (refused at RCPT, bounced or delayed by a later report).",
                responses=documented(200, NotificationList, "the ticket's notifications", *AUTH_ERRORS))
    def ticket_notifications(account_id: AccountId, ticket_id: TicketId) -> NotificationList:
        return NotificationList.of(queries.ticket_of(get_stores(), account(), ticket_id))

    def posted(result: replies.Posted) -> PostedComment:
        return PostedComment(ticket_id=result.ticket.ticket_id, status=result.ticket.status,
                             comment=CommentOut.of(result.comment), notification_ids=result.notification_ids,
                             request_id=result.request_id)

    @routes.post("/tickets/<ticket_id>/replies", role=Role.AGENT, status_code=HTTPStatus.CREATED, tags=[TAG],
                 summary="A public reply, as you: mailed to the requester and CCs (and followers, marked as such)",
                 description="Sent through the customer's smarthost from the address the ticket came in on, with "
                             "your name in the From. A new ticket becomes open. Retried with the same "
                             "Idempotency-Key, nothing is written or sent twice.",
                 responses=documented(201, PostedComment, "the reply was written and its mail queued", 400,
                                      *AUTH_ERRORS, 409))
    def post_reply(account_id: AccountId, ticket_id: TicketId, body: NewReply,
                   idempotency_key: IdempotencyKey = None) -> PostedComment:
        return posted(replies.reply(get_stores(), account(), ticket_id, agent=author(caller()), body=body.body,
                                    attachments=body.attachments, status=body.status, request_id=idempotency_key))

    @routes.post("/tickets/<ticket_id>/notes", role=Role.AGENT, status_code=HTTPStatus.CREATED, tags=[TAG],
                 summary="An internal note, as you: seen by agents only, mailed to nobody",
                 responses=documented(201, PostedComment, "the note was written", 400, *AUTH_ERRORS, 409))
    def post_note(account_id: AccountId, ticket_id: TicketId, body: NewNote,
                  idempotency_key: IdempotencyKey = None) -> PostedComment:
        return posted(replies.note(get_stores(), account(), ticket_id, agent=author(caller()), body=body.body,
                                   attachments=body.attachments, request_id=idempotency_key))

    @routes.put("/tickets/<ticket_id>/status", role=Role.AGENT, tags=[TAG],
                summary="Set the ticket open, pending or solved",
                description="Solving it mails the requester and CCs when the account has that on (once, even when "
                            "two agents solve it at the same moment).",
                responses=documented(200, StatusChanged, "the ticket's status", 400, *AUTH_ERRORS, 409))
    def change_status(account_id: AccountId, ticket_id: TicketId, body: StatusChange,
                      idempotency_key: IdempotencyKey = None) -> StatusChanged:
        request_id = requests.checked(idempotency_key)
        change = ticket_status.change_status(get_stores(), account(), ticket_id, body.status, agent=author(caller()),
                                      request_id=request_id)
        return StatusChanged(ticket_id=change.ticket.ticket_id, status=change.ticket.status, changed=change.changed,
                             notification_id=change.notification_id, request_id=request_id)

    @routes.put("/tickets/<ticket_id>/assignee", role=Role.AGENT, tags=[TAG],
                summary="Assign the ticket to an agent or admin of your account, or unassign it (null)",
                responses=documented(200, TicketSummary, "the ticket", 400, *AUTH_ERRORS))
    def change_assignee(account_id: AccountId, ticket_id: TicketId, body: AssigneeChange) -> TicketSummary:
        return TicketSummary.of(assignees.assign_to(get_stores(), account(), ticket_id, body.assignee))

    def people(kind: Literal["ccs", "followers"]) -> None:
        role = TICKET_CHANGE[kind]
        who = "anyone outside the help desk" if kind == "ccs" else "agents (addresses on your support domains)"

        @routes.post(f"/tickets/<ticket_id>/{kind}", role=Role.AGENT, tags=[TAG],
                     summary=f"Add {kind.upper() if kind == 'ccs' else kind}: {who}",
                     description="Within the account's CCs-and-followers rules (docs/TICKETS.md); adding one that is "
                                 "there already changes nothing.",
                     responses=documented(200, TicketSummary, "the ticket", 400, *AUTH_ERRORS, 409),
                     operation_id=f"add_{kind}")
        def add(account_id: AccountId, ticket_id: TicketId, body: NewPeople) -> TicketSummary:
            return TicketSummary.of(participants.add(get_stores(), account(), ticket_id, role, body.addresses))

        @routes.delete(f"/tickets/<ticket_id>/{kind}/<address>", role=Role.AGENT, tags=[TAG],
                       summary=f"Remove one of the {kind.upper() if kind == 'ccs' else kind}",
                       responses=documented(200, TicketSummary, "the ticket", *AUTH_ERRORS, 409),
                       operation_id=f"remove_{kind}")
        def remove(account_id: AccountId, ticket_id: TicketId, address: PersonId) -> TicketSummary:
            return TicketSummary.of(participants.remove(get_stores(), account(), ticket_id, role, [unquote(address)]))

    people("ccs")
    people("followers")

    @routes.post("/tickets/<ticket_id>/uploads", role=Role.AGENT, status_code=HTTPStatus.CREATED, tags=[TAG],
                 summary="A short-lived form to upload one file straight to S3 for a reply or note",
                 description=f"A presigned POST valid {uploads.POST_SECONDS} seconds for exactly one key under your "
                             "account's own prefix, with the declared Content-Type and at most the declared size "
                             "(S3 enforces all three). Name the key in the reply's or note's `attachments`.",
                 responses=documented(201, UploadForm, "the form to POST the file with", 400, *AUTH_ERRORS))
    def upload_form(account_id: AccountId, ticket_id: TicketId, body: NewUpload) -> UploadForm:
        stores = get_stores()
        queries.ticket_of(stores, account(), ticket_id)  # a form for one's own tickets only
        form = uploads.upload_form(stores, account(), body.filename, body.content_type, body.size)
        return UploadForm(key=form.key, url=form.url, fields=form.fields, expires_in=form.expires_in,
                          max_bytes=form.max_bytes)
