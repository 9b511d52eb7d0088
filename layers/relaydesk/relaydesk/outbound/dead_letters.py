"""The notifications dead-letter queue read as what happened: whose notification, to whom, the last thing the
server said; and sending letters back to the queue. One queue serves every account, so a tenant's view keeps only
letters of its own account and a tenant's redrive moves only those (the operator's CLI sees them all)."""

from __future__ import annotations

from dataclasses import dataclass

from relaydesk.errors import ConfigurationError
from relaydesk.notification import Notification
from relaydesk.store.sqs_dlq import DeadLetter, SqsDeadLetters
from relaydesk.wiring import Stores

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


def queue(stores: Stores) -> SqsDeadLetters:
    if stores.dead_letters is None:
        raise ConfigurationError("the stack names no notifications DLQ (RELAYDESK_NOTIFICATIONS_DLQ_URL)")
    return stores.dead_letters


def parse(body: str) -> Notification | None:
    from relaydesk.outbound.relay import parse_record  # the relay's own reading of a queue message

    return parse_record({"body": body})


def describe(stores: Stores, letter: DeadLetter) -> LetterView:
    notification = parse(letter.body)
    if notification is None:
        return LetterView(None, None, None, None, [], letter.receive_count, "not a Notification (unreadable body)",
                          letter.message_id)
    last_error = ""
    if notification.ticket_id:
        record = stores.tickets.get_notification(notification.ticket_id, notification.notification_id)
        if record is not None and record.attempts:
            attempt = record.attempts[-1]
            code = " ".join(str(p) for p in (attempt.smtp_code, attempt.enhanced_status) if p)
            last_error = " ".join(part for part in (attempt.route, code, attempt.reply) if part)
    return LetterView(notification.notification_id, notification.account_id, notification.ticket_id,
                      notification.support_address, [*notification.recipients, *notification.cc],
                      letter.receive_count, last_error or "unknown", letter.message_id)


def letters(stores: Stores, account_id: str | None = None) -> list[LetterView]:
    """What waits in the DLQ (left there); only `account_id`'s letters when it is given."""
    views = [describe(stores, letter) for letter in queue(stores).peek()]
    return [view for view in views if account_id is None or view.account_id == account_id]


def redrive(stores: Stores, wanted: set[str] | None, *, account_id: str | None = None) -> tuple[list[str], list[str]]:
    """Send the wanted notifications (every one, when `wanted` is None) back to the queue: (moved, not found).
    With `account_id`, another account's letter is never moved, even when named: it is "not found"."""
    dlq = queue(stores)
    moved: list[str] = []
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
                if mine and (wanted is None or notification_id in wanted):
                    dlq.redrive(letter, notification_id)
                    moved.append(notification_id or letter.message_id)
                else:
                    skipped.append(letter)
            if wanted is not None and wanted <= set(moved):
                break
    finally:
        for letter in skipped:  # visible again at once, for the next reader
            dlq.release(letter)
    return moved, sorted((wanted or set()) - set(moved))
