"""Ticket, its comments and the delivery outcome of every notification it sent."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from relaydesk.clock import utcnow
from relaydesk.notification import AttachmentRef


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    SOLVED = "solved"
    SUSPENDED = "suspended"


class SuspensionReason(StrEnum):
    MANUAL_FORWARD = "manual_forward"
    FROM_SUPPORT_ADDRESS = "from_support_address"
    RATE_LIMITED = "rate_limited"
    SPAM = "spam"
    DMARC_FAIL = "dmarc_fail"


class DeliveryStatus(StrEnum):
    QUEUED = "queued"
    DELIVERED = "delivered"
    DEFERRED = "deferred"  # transient failure, retried
    FAILED = "failed"  # permanent failure, not retried
    AUTH_FAILED = "auth_failed"  # the smarthost refused the credentials (a verification mail: not retried)
    HELD = "held"  # parked behind the address's hold (credentials or TLS) until the fix is in, then sent
    BOUNCED = "bounced"  # a delivery status notification reported a failure later


class RecipientOutcome(BaseModel):
    recipient: str
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""


class DeliveryAttempt(BaseModel):
    status: DeliveryStatus
    route: str = ""  # "connector:<host>" or "ses"
    smtp_code: int | None = None
    enhanced_status: str | None = None
    reply: str = ""
    refused: list[RecipientOutcome] = Field(default_factory=list)
    at: datetime = Field(default_factory=utcnow)


class NotificationRecord(BaseModel):
    notification_id: str
    message_id: str
    recipients: list[str]
    status: DeliveryStatus = DeliveryStatus.QUEUED
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    reports: list[dict[str, str]] = Field(default_factory=list)  # from delivery status notifications


AGENT_NAME_MAX_LENGTH = 120


def agent_name(value: object) -> str:
    """A person's name as it goes into a From header: one line (line breaks and tabs become spaces), invisible and
    control characters (bidi overrides too) dropped, bounded."""
    if not isinstance(value, str):
        return ""
    visible = "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in value)
    return " ".join(visible.split())[:AGENT_NAME_MAX_LENGTH].strip()


class Agent(BaseModel):
    """A help desk agent as the tenant boundary names one: a stable id and a display name."""

    agent_id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=AGENT_NAME_MAX_LENGTH)
    email: str | None = None  # the agent's own address: never sent a copy of their own reply


class Comment(BaseModel):
    comment_id: str
    author: str  # the sender's address (mail) or the agent's name
    agent: Agent | None = None  # set when an agent wrote it (reply or internal note)
    body: str
    html_body: str | None = None
    public: bool = True
    source_message_id: str | None = None
    ses_message_id: str | None = None
    attachments: list[AttachmentRef] = Field(default_factory=list)
    notification_ids: list[str] = Field(default_factory=list)  # what this comment sent, per recipient set
    # What of the mail is not on this comment because a bound was reached (docs/INBOUND.md, "Limits"); the raw mail
    # in S3 (ses_message_id) holds all of it.
    omitted: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)


class Ticket(BaseModel):
    ticket_id: str
    account_id: str
    support_address: str
    subject: str
    requester: str
    ccs: list[str] = Field(default_factory=list)
    followers: list[str] = Field(default_factory=list)
    status: TicketStatus = TicketStatus.NEW
    assignee: Agent | None = None
    suspension_reason: SuspensionReason | None = None
    suspension_explanation: str | None = None
    flags: list[str] = Field(default_factory=list)
    comments: list[Comment] = Field(default_factory=list)
    notifications: list[NotificationRecord] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


TICKET_PAGE_LIMIT = 100  # tickets per page at most


class TicketPosition(BaseModel):
    """Where a page of tickets ended: the last ticket's update time (as the store sorts it) and its id."""

    updated: str
    ticket_id: str


class TicketQuery(BaseModel):
    """An account's tickets, newest update first, narrowed by status, requester, assignee and update time."""

    status: TicketStatus | None = None
    requester: str | None = None
    assignee: str | None = None  # an agent's address (lower case), or UNASSIGNED
    updated_since: datetime | None = None
    limit: int = Field(default=25, ge=1, le=TICKET_PAGE_LIMIT)
    after: TicketPosition | None = None


UNASSIGNED = "none"  # TicketQuery.assignee: tickets nobody is assigned to


class TicketPage(BaseModel):
    tickets: list[Ticket]  # each without its comments and notification records: `get_ticket` has those
    next: TicketPosition | None = None  # None: this was the last page


def sort_stamp(moment: datetime) -> str:
    """A time as the ticket store sorts it: UTC, fixed width, so text order is time order."""
    from datetime import UTC

    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
