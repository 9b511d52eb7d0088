"""What the hold-alert ledger remembers per held address: which hold it is about, what was sent and when."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field


class AlertKind(StrEnum):
    HOLD = "hold"  # the address went on hold
    REMINDER = "reminder"  # once a day while it lasts
    RELEASE = "release"  # it is over (released, or the address is gone)


class AlertState(StrEnum):
    SENDING = "sending"  # claimed by one run; another run leaves it alone until the claim goes stale
    SENT = "sent"


class HoldAlert(BaseModel):
    """One held address's alert bookkeeping. `version` makes every change a compare-and-set, so two runs that see
    the same hold (the change stream and the daily sweep) never both send."""

    email: str
    account_id: str
    held_since: datetime | None  # identifies the hold: a new hold of the same address has another time
    kind: AlertKind = AlertKind.HOLD  # the last alert claimed or sent
    state: AlertState = AlertState.SENDING
    claimed_at: datetime
    notified_at: datetime | None = None  # when the last hold or reminder went out
    reminders: int = 0
    recipients: list[str] = Field(default_factory=list)
    version: int = 0
