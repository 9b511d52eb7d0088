"""The SQS message between inbound and relay: one notification, with a stable idempotency key."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from relaydesk.clock import utcnow


class NotificationKind(StrEnum):
    TICKET_CREATED = "ticket_created"
    COMMENT_ADDED = "comment_added"
    VERIFICATION = "verification"
    AGENT_REPLY = "agent_reply"  # an agent's public reply, to the requester and CCs, or to the followers
    TICKET_SOLVED = "ticket_solved"


class AttachmentRef(BaseModel):
    """An attachment kept in S3; the relay attaches it or links it per the account setting."""

    filename: str
    content_type: str = "application/octet-stream"
    size: int = 0
    s3_key: str
    url: str | None = None
    inline: bool = False  # shown in the HTML body (multipart/related), found there by its Content-ID
    content_id: str | None = None


class Notification(BaseModel):
    """`notification_id` is the idempotency key from inbound to the wire; it is also the Email-Id."""

    notification_id: str
    kind: NotificationKind = NotificationKind.TICKET_CREATED
    account_id: str
    ticket_id: str | None = None
    support_address: str
    recipients: list[str]
    cc: list[str] = Field(default_factory=list)
    subject: str
    text_body: str
    html_body: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    attachments: list[AttachmentRef] = Field(default_factory=list)
    verification_token: str | None = None
    agent_name: str | None = None  # an agent's reply: From reads the account's agent_from_name with this name
    created_at: datetime = Field(default_factory=utcnow)
