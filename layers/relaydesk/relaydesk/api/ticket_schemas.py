"""What the ticket routes accept and return. Every field a caller sends is bounded here (lengths, counts) and unknown
fields are refused, so an author, an account or a request id can never come from a body. Responses are built field by
field from the ticket, bounded too (a Lambda response is at most 6 MB)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from relaydesk.addresses.model import EMAIL_MAX_LENGTH
from relaydesk.tickets import deliveries, participants, replies, uploads
from relaydesk.tickets.model import (
    Agent,
    Comment,
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    SuspensionReason,
    Ticket,
    TicketStatus,
)

SHOWN_COMMENTS = 100  # the newest; a ticket answered by mail for years has more (the CLI's operator view shows all)
SHOWN_NOTIFICATIONS = 200  # the newest delivery records: two per reply at most
BODY_SHOWN_CHARS = replies.MAX_BODY_CHARS  # an agent's comment whole; a longer mail is cut (its raw mail is in S3)
UPLOAD_KEY_MAX_LENGTH = 300  # attachments/<account id, 64>/uploads/<upload id, 19>/<file name, 120> and slack
FILENAME_MAX_LENGTH = 255
CONTENT_TYPE_MAX_LENGTH = 127  # RFC 6838 4.2

AgentStatus = Literal["open", "pending", "solved"]
Email = Annotated[str, StringConstraints(min_length=3, max_length=EMAIL_MAX_LENGTH)]
UploadKey = Annotated[str, StringConstraints(min_length=1, max_length=UPLOAD_KEY_MAX_LENGTH)]


# --- requests -------------------------------------------------------------------------------------------------------

class NewNote(BaseModel):
    """An internal note: seen by the account's agents only, mailed to nobody. Its author is the signed-in user."""

    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=replies.MAX_BODY_CHARS,
                      description=f"the text, at most {replies.MAX_BODY_CHARS} characters")
    attachments: list[UploadKey] = Field(
        default_factory=list, max_length=uploads.MAX_ATTACHMENTS,
        description=f"keys of files uploaded through this ticket's upload form (at most {uploads.MAX_ATTACHMENTS}, "
                    f"{uploads.MAX_TOTAL_BYTES // (1024 * 1024)} MB together)")


class NewReply(NewNote):
    """A public reply: mailed to the requester and CCs, and to the followers marked as their copy."""

    status: AgentStatus | None = Field(default=None, description="submit the reply with this status (default: a new "
                                                                  "ticket becomes open, any other keeps its status)")


class StatusChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: AgentStatus = Field(description="solved also mails the requester and CCs, when the account has that on")


class AssigneeChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee: Email | None = Field(description="the address of an agent or admin of your account; null unassigns")


class NewPeople(BaseModel):
    model_config = ConfigDict(extra="forbid")

    addresses: list[Email] = Field(min_length=1, max_length=participants.MAX_PER_CHANGE,
                                   description="plain addresses (name@example.com), at most "
                                               f"{participants.MAX_PER_CHANGE} per request")


class NewUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=FILENAME_MAX_LENGTH,
                          description="the file's name (made safe for a key: letters, digits, . _ -)")
    content_type: str = Field(min_length=3, max_length=CONTENT_TYPE_MAX_LENGTH,
                              description="PDF, images (not SVG), text, CSV, office documents, ZIP, message/rfc822, "
                                          "application/octet-stream; never HTML or scripts")
    size: int = Field(ge=1, le=uploads.MAX_ATTACHMENT_BYTES, description="the file's exact size in bytes; S3 refuses "
                                                                          "a bigger upload")


# --- responses ------------------------------------------------------------------------------------------------------

class AgentOut(BaseModel):
    agent_id: str = Field(description="the user's stable id (the user pool's `sub`)")
    name: str
    email: str | None = None

    @classmethod
    def of(cls, agent: Agent | None) -> AgentOut | None:
        return None if agent is None else cls(agent_id=agent.agent_id, name=agent.name, email=agent.email)


class AttachmentOut(BaseModel):
    filename: str
    content_type: str
    size: int


class CommentOut(BaseModel):
    comment_id: str
    kind: Literal["mail", "reply", "note"] = Field(description="mail: from the requester or a CC; reply: an agent's "
                                                               "public reply; note: internal, never mailed")
    public: bool
    author: str = Field(description="the sender's address (mail) or the agent's name")
    agent: AgentOut | None = None
    body: str
    body_truncated: bool = Field(description=f"the text is longer than {BODY_SHOWN_CHARS} characters and cut here")
    attachments: list[AttachmentOut]
    notification_ids: list[str] = Field(description="the notifications this comment sent, one per recipient set")
    omitted: list[str] = Field(description="what of the mail is not on the comment because a bound was reached")
    created_at: datetime

    @classmethod
    def of(cls, comment: Comment) -> CommentOut:
        kind = "note" if not comment.public else "reply" if comment.agent is not None else "mail"
        return cls(comment_id=comment.comment_id, kind=kind, public=comment.public, author=comment.author,
                   agent=AgentOut.of(comment.agent), body=comment.body[:BODY_SHOWN_CHARS],
                   body_truncated=len(comment.body) > BODY_SHOWN_CHARS,
                   attachments=[AttachmentOut(filename=a.filename, content_type=a.content_type, size=a.size)
                                for a in comment.attachments],
                   notification_ids=list(comment.notification_ids), omitted=list(comment.omitted),
                   created_at=comment.created_at)


class RecipientDeliveryOut(BaseModel):
    recipient: str
    status: DeliveryStatus
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str = Field(description="what the server said about this recipient (or a later delivery report)")
    at: datetime | None = None
    report: str | None = Field(default=None, description="a later delivery report's action: failed, delayed, "
                                                         "delivered, complaint, ...")


class DeliveryAttemptOut(BaseModel):
    status: DeliveryStatus
    route: str = Field(description="connector:<smarthost> or ses")
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str
    at: datetime

    @classmethod
    def of(cls, attempt: DeliveryAttempt) -> DeliveryAttemptOut:
        return cls(status=attempt.status, route=attempt.route, smtp_code=attempt.smtp_code,
                   enhanced_status=attempt.enhanced_status, reply=attempt.reply, at=attempt.at)


class NotificationOut(BaseModel):
    """One mail a ticket sent (to one recipient set) and where it stands for each recipient."""

    notification_id: str
    message_id: str
    status: DeliveryStatus
    recipients: list[RecipientDeliveryOut]
    attempts: list[DeliveryAttemptOut]

    @classmethod
    def of(cls, record: NotificationRecord) -> NotificationOut:
        return cls(notification_id=record.notification_id, message_id=record.message_id, status=record.status,
                   recipients=[RecipientDeliveryOut(**vars(row)) for row in deliveries.per_recipient(record)],
                   attempts=[DeliveryAttemptOut.of(a) for a in record.attempts])


class TicketSummary(BaseModel):
    ticket_id: str
    status: TicketStatus
    suspension_reason: SuspensionReason | None = None
    subject: str
    requester: str
    support_address: str
    assignee: AgentOut | None = None
    ccs: list[str]
    followers: list[str]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def fields_of(cls, ticket: Ticket) -> dict:
        return dict(ticket_id=ticket.ticket_id, status=ticket.status, suspension_reason=ticket.suspension_reason,
                    subject=ticket.subject, requester=ticket.requester, support_address=ticket.support_address,
                    assignee=AgentOut.of(ticket.assignee), ccs=sorted(ticket.ccs), followers=sorted(ticket.followers),
                    created_at=ticket.created_at, updated_at=ticket.updated_at)

    @classmethod
    def of(cls, ticket: Ticket) -> TicketSummary:
        return cls(**cls.fields_of(ticket))


class TicketPageOut(BaseModel):
    tickets: list[TicketSummary] = Field(description="newest update first")
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: this was the last")


class NotificationList(BaseModel):
    notifications: list[NotificationOut]
    notifications_omitted: int = Field(description=f"older ones not listed (the newest {SHOWN_NOTIFICATIONS} are)")

    @classmethod
    def of(cls, ticket: Ticket) -> NotificationList:
        shown = ticket.notifications[-SHOWN_NOTIFICATIONS:]
        return cls(notifications=[NotificationOut.of(r) for r in shown],
                   notifications_omitted=len(ticket.notifications) - len(shown))


class TicketOut(TicketSummary):
    """The whole conversation an agent sees: every comment, public or internal, and the delivery of every mail."""

    suspension_explanation: str | None = None
    flags: list[str]
    comments: list[CommentOut] = Field(description=f"oldest first; the newest {SHOWN_COMMENTS}")
    comments_omitted: int = Field(description="older comments not shown")
    notifications: list[NotificationOut]
    notifications_omitted: int

    @classmethod
    def of(cls, ticket: Ticket) -> TicketOut:
        ordered = sorted(ticket.comments, key=lambda c: (c.created_at, c.comment_id))
        shown = ordered[-SHOWN_COMMENTS:]
        sent = NotificationList.of(ticket)
        return cls(**cls.fields_of(ticket), suspension_explanation=ticket.suspension_explanation,
                   flags=list(ticket.flags), comments=[CommentOut.of(c) for c in shown],
                   comments_omitted=len(ordered) - len(shown), notifications=sent.notifications,
                   notifications_omitted=sent.notifications_omitted)


class PostedComment(BaseModel):
    ticket_id: str
    status: TicketStatus = Field(description="the ticket's status after the comment")
    comment: CommentOut
    notification_ids: list[str] = Field(description="queued for delivery (a note: none)")
    request_id: str = Field(description="the Idempotency-Key sent, or the one made for this request: send it again "
                                        "to finish a request whose answer never arrived; nothing is repeated")


class StatusChanged(BaseModel):
    ticket_id: str
    status: TicketStatus
    changed: bool = Field(description="false: the ticket already had this status (nothing was sent)")
    notification_id: str | None = Field(default=None, description="the solved notification, when one was sent")
    request_id: str


class UploadForm(BaseModel):
    """POST every field of `fields`, then the file as the field `file` (multipart/form-data), to `url` within
    `expires_in` seconds; S3 itself refuses another key, another Content-Type or more than `max_bytes`."""

    key: str = Field(description="name it in a reply's or note's `attachments` once uploaded")
    url: str
    fields: dict[str, str]
    expires_in: int
    max_bytes: int
