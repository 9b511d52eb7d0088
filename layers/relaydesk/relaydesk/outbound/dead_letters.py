"""The notifications dead-letter queue read as what happened: whose notification, to whom, the last thing the
server said, whether it went after all; and sending letters back to the queue. One queue serves every account, so a
tenant's view keeps only letters of its own account and a tenant's redrive moves only those (the operator's CLI sees
them all).

A letter's state: `delivered` / `failed` when its ticket's delivery record was decided (SQS's own redrive can move a
notification whose delivering invocation was stopped before it answered SQS); `stored <outcome>` when only the
relay's stored outcome knows (the operator's view, which may read the idempotency table); else `waiting`. A redrive
never sends a decided notification again: it takes it out of the DLQ and says so. One whose outcome is stored goes
back to the queue: the relay replays the outcome onto the ticket and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaydesk.errors import ConfigurationError
from relaydesk.notification import Notification
from relaydesk.store.ports import DeadLetter, NotificationDeadLetters, OnceGuard, Stores

DECIDED_STATES = {"delivered", "failed"}
MAX_REDRIVE_ROUNDS = 50  # receives of one redrive: the DLQ is read in batches of 10 until the wanted ones are found


@dataclass(frozen=True)
class LetterView:
    notification_id: str | None
    account_id: str | None
    ticket_id: str | None
    support_address: str | None
    recipients: list[str]
    receives: int
    last_error: str
    sqs_message_id: str
    state: str = "waiting"


@dataclass(frozen=True)
class Redriven:
    moved: list[str]  # sent back to the queue
    not_found: list[str]  # named, not in the DLQ (or another account's)
    decided: list[str]  # delivered or failed for good after all: taken out of the DLQ, not sent again


def queue(stores: Stores) -> NotificationDeadLetters:
    if stores.dead_letters is None:
        raise ConfigurationError("the stack names no notifications DLQ (RELAYDESK_NOTIFICATIONS_DLQ_URL)")
    return stores.dead_letters


def parse(body: str) -> Notification | None:
    from relaydesk.outbound.relay import parse_record  # the relay's own reading of a queue message

    return parse_record({"body": body})


def delivery_state(stores: Stores, notification: Notification, once: OnceGuard | None = None) -> str:
    """The ticket's delivery record first (what the agent sees), then the relay's stored outcome when `once` is
    given."""
    from relaydesk.outbound.outcomes import DECIDED

    if notification.ticket_id:
        record = stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is not None and record.status in DECIDED:
            return DECIDED[record.status].value
    stored = once.stored(notification.notification_id) if once is not None else None
    return f"stored {stored.get('outcome', '?')}" if stored else "waiting"


def describe(stores: Stores, letter: DeadLetter, once: OnceGuard | None = None) -> LetterView:
    notification = parse(letter.body)
    if notification is None:
        return LetterView(None, None, None, None, [], letter.receive_count, "not a Notification (unreadable body)",
                          letter.message_id, state="unreadable")
    last_error = ""
    if notification.ticket_id:
        record = stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is not None and record.attempts:
            attempt = record.attempts[-1]
            code = " ".join(str(p) for p in (attempt.smtp_code, attempt.enhanced_status) if p)
            last_error = " ".join(part for part in (attempt.route, code, attempt.reply) if part)
    return LetterView(notification.notification_id, notification.account_id, notification.ticket_id,
                      notification.support_address, [*notification.recipients, *notification.cc],
                      letter.attempts or letter.receive_count, last_error or letter.reason or "unknown",
                      letter.message_id, state=delivery_state(stores, notification, once))


def letters(stores: Stores, account_id: str | None = None, *, once: OnceGuard | None = None) -> list[LetterView]:
    """What waits in the DLQ (left there); only `account_id`'s letters when it is given."""
    views = [describe(stores, letter, once) for letter in queue(stores).peek()]
    return [view for view in views if account_id is None or view.account_id == account_id]


def redrive(stores: Stores, wanted: set[str] | None, *, account_id: str | None = None,
            once: OnceGuard | None = None) -> Redriven:
    """Send the wanted notifications (every one, when `wanted` is None) back to the queue, except those whose
    ticket says they were delivered or failed for good: those leave the DLQ without being sent again. With
    `account_id`, another account's letter is never moved, even when named: it is "not found"."""
    dlq = queue(stores)
    moved: list[str] = []
    decided: list[str] = []
    skipped: list[DeadLetter] = []
    try:
        for _ in range(MAX_REDRIVE_ROUNDS):
            batch = dlq.take()
            if not batch:
                break
            for letter in batch:
                notification = parse(letter.body)
                notification_id = notification.notification_id if notification else None
                mine = account_id is None or (notification is not None and notification.account_id == account_id)
                if not (mine and (wanted is None or notification_id in wanted)):
                    skipped.append(letter)
                elif notification is not None and delivery_state(stores, notification) in DECIDED_STATES:
                    dlq.discard(letter)
                    decided.append(notification.notification_id)
                else:
                    dlq.redrive(letter, notification_id)
                    moved.append(notification_id or letter.message_id)
            if wanted is not None and wanted <= {*moved, *decided}:
                break
    finally:
        for letter in skipped:  # visible again at once, for the next reader
            dlq.release(letter)
    return Redriven(moved, sorted((wanted or set()) - {*moved, *decided}), decided)
