"""The explicit result of inbound processing: exactly one outcome per SES message, with its reason."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class Outcome(StrEnum):
    NEW_TICKET = "new_ticket"
    COMMENT = "comment"
    SUSPENDED = "suspended"  # a ticket with status suspended and a SuspensionReason
    DSN_RECORDED = "dsn_recorded"  # a delivery report recorded on the notification it reports on
    VERIFICATION = "verification"  # handed to support-address verification
    DROPPED = "dropped"  # recorded in the inbound ledger with a DropReason; no ticket


class DropReason(StrEnum):
    VIRUS = "virus"
    UNKNOWN_RECIPIENT = "unknown_recipient"  # not the system address of any account
    OWN_MAIL_LOOP = "own_mail_loop"  # one of our notifications came back
    DSN_UNMATCHED = "dsn_unmatched"  # a delivery report about nothing we sent
    DUPLICATE_MESSAGE = "duplicate_message"  # the same Message-ID already made this ticket's comment
    NO_SENDER = "no_sender"  # neither Reply-To nor From names an address


class Decision(BaseModel):
    """What inbound decided for one SES message; stored in the ledger before any write, so a retry redoes the
    same thing with the same ids."""

    outcome: Outcome
    reason: str | None = None
    explanation: str = ""
    received_at: datetime
    account_id: str | None = None
    ticket_id: str | None = None
    comment_id: str | None = None
    notification_id: str | None = None
    support_address: str | None = None
    recipient: str | None = None  # the system address SES delivered to
    requester: str | None = None
    requester_name: str = ""
    ccs: list[str] = Field(default_factory=list)
    new_ccs: list[str] = Field(default_factory=list)  # added to an existing ticket by a participant's reply
    flags: list[str] = Field(default_factory=list)
    public: bool = True
    notify_to: list[str] = Field(default_factory=list)
    notify_cc: list[str] = Field(default_factory=list)
    thread_by: str | None = None
    forwarding_hops: int = 0
    verification_token: str | None = None
    dsn_ticket_id: str | None = None
    dsn_notification_id: str | None = None


class InboundResult(BaseModel):
    ses_message_id: str
    outcome: Outcome
    reason: str | None = None
    ticket_id: str | None = None
    comment_id: str | None = None
    notification_id: str | None = None
    replayed: bool = False  # this SES message had been decided before: the same decision was (re)applied
    verified: bool | None = None
