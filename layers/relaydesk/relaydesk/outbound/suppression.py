"""Recipients an account no longer sends to: a hard bounce or a spam complaint reported by SES. The relay leaves them
out of every notification of that account (by any route) and records why; an admin lifts one with
`relaydesk suppressions remove`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field

from relaydesk.clock import utcnow
from relaydesk.notification import Notification
from relaydesk.tickets.model import RecipientOutcome

DETAIL_LIMIT = 500  # a bounce's diagnostic text is the remote server's words: kept, but bounded


class SuppressionReason(StrEnum):
    BOUNCE = "bounce"  # a permanent bounce: the mailbox does not exist or refuses mail for good
    COMPLAINT = "complaint"  # the recipient marked our mail as spam


class Suppression(BaseModel):
    account_id: str
    recipient: str
    reason: SuppressionReason
    detail: str = Field(default="", max_length=DETAIL_LIMIT)
    notification_id: str | None = None
    since: datetime = Field(default_factory=utcnow)

    def explain(self) -> str:
        what = "bounced permanently" if self.reason is SuppressionReason.BOUNCE else "marked our mail as spam"
        detail = f" ({self.detail})" if self.detail else ""
        return (f"suppressed: {self.recipient} {what} on {self.since:%Y-%m-%d}{detail}; not sent. "
                f"`relaydesk suppressions remove {self.recipient} --account {self.account_id}` sends to it again")


def without_suppressed(notification: Notification, suppressed: dict[str, Suppression],
                       ) -> tuple[Notification, list[RecipientOutcome]]:
    """The notification without the suppressed recipients (To and Cc), and one refusal per recipient left out.
    A notification whose every recipient is suppressed comes back with no recipients."""
    if not suppressed:
        return notification, []
    refused = [RecipientOutcome(recipient=r, reply=suppressed[r.lower()].explain())
               for r in [*notification.recipients, *notification.cc] if r.lower() in suppressed]
    kept = notification.model_copy(update={
        "recipients": [r for r in notification.recipients if r.lower() not in suppressed],
        "cc": [r for r in notification.cc if r.lower() not in suppressed]})
    if not kept.recipients and kept.cc:  # only CCs are left: they become the recipients
        kept = kept.model_copy(update={"recipients": kept.cc, "cc": []})
    return kept, refused
