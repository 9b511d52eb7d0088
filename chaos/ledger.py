"""Counting what happened the way a user would check it.

- A notification's copies are counted where they arrive: at the smarthost and at SES (moto's sent messages), by
  their `X-Relaydesk-Email-Id` header (the notification id, also in the Message-ID).
- A copy is *in doubt* when the relay could not know whether it went: the smarthost took the whole message and
  dropped the connection before answering, or answered only after the relay's data timeout.
- A worker killed while it had a notification whose copy had arrived but whose outcome was not stored yet (neither
  in the once guard nor on the ticket) leaves that notification *in the window*: a second copy may follow. A kill
  by the invocation's own timeout does not count: the relay promises its own time limit never falls there.
- A second copy is within the documented window when each extra copy is explained by an earlier copy in doubt or a
  SIGKILL in the window; any other second copy fails the run.
- Every notification a class made is on its tickets (`notifications[]`); one with no copy is either in the DLQ (with
  its reason on the ticket: "dead-letter queue" in its last attempt), failed for good with the reason recorded, or
  behind an inbound mail that waits in the inbound DLQ; otherwise it is lost.
- An inbound mail is processed once when exactly one comment carries its SES message id.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from relaydesk.outbound.outcomes import DECIDED
from relaydesk.store.once_dynamodb import DynamoOnce
from relaydesk.store.sqs_dlq import SqsDeadLetters
from relaydesk.tickets.model import DeliveryStatus

EMAIL_ID = re.compile(rb"^X-Relaydesk-Email-Id:[ \t]*(\S+)", re.MULTILINE | re.IGNORECASE)
DLQ_WORDS = "dead-letter queue"


def email_id(data: bytes | str) -> str | None:
    raw = data.encode() if isinstance(data, str) else data
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = EMAIL_ID.search(head)
    return found.group(1).decode() if found else None


@dataclass
class Copy:
    route: str
    in_doubt: bool


class Deliveries:
    """Every copy so far, per notification id, from the smarthost and from moto's SES."""

    def __init__(self, smarthosts: list[Any], data_timeout: float) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.ses.models import ses_backends

        self.smarthosts = smarthosts
        self.data_timeout = data_timeout
        self._ses = ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        self._smtp_seen = [0] * len(smarthosts)
        self._ses_seen = 0
        self.copies: dict[str, list[Copy]] = defaultdict(list)
        self._lock = threading.Lock()

    def refresh(self) -> None:
        with self._lock:
            for index, smarthost in enumerate(self.smarthosts):
                received = list(smarthost.received)
                for message in received[self._smtp_seen[index]:]:
                    nid = email_id(message.data)
                    if nid:
                        doubt = message.reply is None or message.stalled >= self.data_timeout
                        self.copies[nid].append(Copy("smtp", doubt))
                self._smtp_seen[index] = len(received)
            sent = list(self._ses.sent_messages)
            for message in sent[self._ses_seen:]:
                nid = email_id(getattr(message, "raw_data", "") or "")
                if nid:
                    self.copies[nid].append(Copy("ses", False))
            self._ses_seen = len(sent)

    def count(self, nid: str) -> int:
        with self._lock:
            return len(self.copies.get(nid, []))


@dataclass
class Windows:
    """Notifications left in the window by a kill (SIGKILL) or by the invocation's own timeout."""

    sigkill: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    timeout: dict[str, int] = field(default_factory=lambda: defaultdict(int))


class Oracle:
    """Is a notification's outcome stored (the once guard) or on its ticket (a decided delivery record)?"""

    def __init__(self, stores: Any, once: DynamoOnce) -> None:
        self.stores = stores
        self.once = once

    def durable(self, nid: str, ticket_id: str | None) -> bool:
        if self.once.stored(nid) is not None:
            return True
        if ticket_id:
            record = self.stores.tickets.get_notification(ticket_id, nid)
            return record is not None and record.status in DECIDED
        return False


def notifications_of(event: dict) -> list[tuple[str, str | None]]:
    found = []
    for record in event.get("Records", []):
        try:
            body = json.loads(record.get("body") or "")
            found.append((body["notification_id"], body.get("ticket_id")))
        except (ValueError, KeyError, TypeError):
            continue
    return found


@dataclass
class Tally:
    sent: int = 0
    once: int = 0
    twice_window: int = 0
    twice_other: int = 0
    lost: int = 0
    dlq_reason: int = 0
    dlq_no_reason: int = 0
    failed: int = 0  # permanently failed, with the reason on the ticket (nothing in these classes should)
    behind_inbound_dlq: int = 0
    dlq_delivered: int = 0  # delivered and also in the DLQ: must be recognised there
    dlq_delivered_unrecognised: int = 0
    stale_records: int = 0  # delivered, but the ticket does not say so
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.twice_other or self.dlq_no_reason or self.dlq_delivered_unrecognised
                    or self.stale_records)


@dataclass
class InboundTally:
    sent: int = 0
    once: int = 0
    twice: int = 0
    lost: int = 0
    dlq_reason: int = 0
    dlq_no_reason: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.twice or self.dlq_no_reason)


def dead_letters(world: Any, dlq_url: str) -> dict[str, Any]:
    """A notifications DLQ, by notification id (left in place)."""
    letters = SqsDeadLetters(world.sqs, dlq_url, "").peek()
    found = {}
    for letter in letters:
        try:
            found[json.loads(letter.body)["notification_id"]] = letter
        except (ValueError, KeyError, TypeError):
            continue
    return found


def inbound_dead_letters(world: Any) -> dict[str, str]:
    """The inbound DLQ: SES message id -> the error that ended its last try."""
    settings = world.settings
    letters = SqsDeadLetters(world.sqs, settings.inbound_dlq_url, settings.notifications_queue_url).peek()
    found = {}
    for letter in letters:
        try:
            record = json.loads(letter.body)
            ses_id = record["requestPayload"]["Records"][0]["ses"]["mail"]["messageId"]
            found[ses_id] = (record.get("responsePayload") or {}).get("errorMessage", "")
        except (ValueError, KeyError, TypeError, IndexError):
            continue
    return found


def tally(world: Any, account_id: str, deliveries: Deliveries, windows: Windows, mails: dict[str, str],
          oracle: Oracle, *, dlq_url: str, inbound_outcomes: dict[str, str] | None = None) -> tuple[Tally,
                                                                                                   InboundTally]:
    """`mails`: SES message id -> Message-ID of each inbound mail the class sent."""
    from relaydesk.outbound.dead_letters import delivery_state

    deliveries.refresh()
    tickets = world.stores.tickets.list_tickets(account_id)
    in_dlq = dead_letters(world, dlq_url)
    inbound_dlq = inbound_dead_letters(world)
    comments_by_ses: dict[str, int] = defaultdict(int)
    mail_of_ticket: dict[str, set[str]] = defaultdict(set)
    for ticket in tickets:
        for comment in ticket.comments:
            if comment.ses_message_id:
                comments_by_ses[comment.ses_message_id] += 1
                mail_of_ticket[ticket.ticket_id].add(comment.ses_message_id)
    result = Tally()
    for ticket in tickets:
        for record in ticket.notifications:
            nid = record.notification_id
            result.sent += 1
            copies = deliveries.copies.get(nid, [])
            letter = in_dlq.get(nid)
            if copies and letter is not None:
                result.dlq_delivered += 1
                state = delivery_state(world.stores, _notification(letter), oracle.once)
                # Recognised unless every copy was in doubt: then the relay could not know, and a redrive may send
                # it again within the documented window.
                if state not in ("delivered", "stored delivered") and not all(c.in_doubt for c in copies):
                    result.dlq_delivered_unrecognised += 1
                    result.problems.append(f"{nid}: delivered, in the DLQ, shown as {state!r}")
            if copies and letter is None and record.status not in DECIDED:
                # Delivered and released: its ticket must say so (as the agent sees it).
                result.stale_records += 1
                result.problems.append(f"{nid}: delivered, but its ticket record says {record.status.value}")
            if len(copies) == 1:
                result.once += 1
            elif len(copies) > 1:
                explained = sum(1 for c in copies[:-1] if c.in_doubt) + windows.sigkill.get(nid, 0)
                if len(copies) - 1 <= explained:
                    result.twice_window += 1
                else:
                    result.twice_other += 1
                    result.problems.append(f"{nid}: {len(copies)} copies ({[c.route for c in copies]}), "
                                           f"in doubt {[c.in_doubt for c in copies]}, killed in the window "
                                           f"{windows.sigkill.get(nid, 0)}, by a timeout {windows.timeout.get(nid, 0)}"
                                           f"; attempts {[a.reply[:90] for a in record.attempts]}")
            elif letter is not None:
                last = record.attempts[-1].reply if record.attempts else ""
                if DLQ_WORDS in last:
                    result.dlq_reason += 1
                else:
                    result.dlq_no_reason += 1
                    result.problems.append(f"{nid}: in the DLQ, its ticket says {last!r}")
            elif record.status is DeliveryStatus.FAILED and record.attempts:
                result.failed += 1
            elif mail_of_ticket[ticket.ticket_id] & set(inbound_dlq):
                result.behind_inbound_dlq += 1
                result.notes.append(f"{nid}: its inbound mail waits in the inbound DLQ "
                                    f"({inbound_dlq[next(iter(mail_of_ticket[ticket.ticket_id] & set(inbound_dlq)))]})")
            else:
                result.lost += 1
                result.problems.append(f"{nid}: no copy, not in the DLQ, its record is {record.status.value} "
                                       f"({[a.reply[:80] for a in record.attempts]})")
    inbound = InboundTally()
    for ses_id in mails:
        inbound.sent += 1
        made = comments_by_ses.get(ses_id, 0)
        if made == 1:
            inbound.once += 1
        elif made > 1:
            inbound.twice += 1
            inbound.problems.append(f"inbound {ses_id}: {made} comments")
        elif ses_id in inbound_dlq:
            inbound.notes.append(f"inbound {ses_id} in the inbound DLQ: {inbound_dlq[ses_id][:160]}")
            if inbound_dlq[ses_id]:
                inbound.dlq_reason += 1
            else:
                inbound.dlq_no_reason += 1
        else:
            inbound.lost += 1
            inbound.problems.append(f"inbound {ses_id}: no comment, not in the inbound DLQ; the function said "
                                    f"{(inbound_outcomes or {}).get(ses_id, 'nothing')}")
    return result, inbound


def _notification(letter: Any) -> Any:
    from relaydesk.notification import Notification

    return Notification.model_validate_json(letter.body)
