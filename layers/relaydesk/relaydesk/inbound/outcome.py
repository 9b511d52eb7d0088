"""The explicit result of inbound processing: exactly one outcome per SES message, with its reason."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from relaydesk.inbound import limits


def _at_most(limit: int) -> AfterValidator:
    """Cut to `limit` (characters of a str, items of a list): a Decision is stored in the ledger before anything else,
    so what it holds of a mail must fit there whatever the mail (the parser bounds it first; this makes sure)."""
    return AfterValidator(lambda value: value[:limit])


Name = Annotated[str, _at_most(limits.MAX_DISPLAY_NAME_CHARS)]
Addresses = Annotated[list[str], _at_most(limits.MAX_CCS)]
Flags = Annotated[list[Annotated[str, _at_most(limits.MAX_FLAG_CHARS)]], _at_most(limits.MAX_FLAGS)]


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
    reason: Annotated[str, _at_most(64)] | None = None
    explanation: Annotated[str, _at_most(limits.MAX_EXPLANATION_CHARS)] = ""
    received_at: datetime
    account_id: str | None = None
    ticket_id: str | None = None
    comment_id: str | None = None
    notification_id: str | None = None
    support_address: str | None = None
    recipient: str | None = None  # the system address SES delivered to
    requester: str | None = None
    requester_name: Name = ""
    ccs: Addresses = Field(default_factory=list)
    new_ccs: Addresses = Field(default_factory=list)  # added to an existing ticket by a participant's reply
    flags: Flags = Field(default_factory=list)
    public: bool = True
    notify_to: Addresses = Field(default_factory=list)
    notify_cc: Addresses = Field(default_factory=list)
    thread_by: str | None = None
    forwarding_hops: int = 0
    verification_token: Annotated[str, _at_most(limits.MAX_TOKEN_CHARS)] | None = None
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
