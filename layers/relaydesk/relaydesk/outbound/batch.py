"""The SQS side of a relay batch: which records failed (`batchItemFailures`), how long each waits to retry, and
which move to the dead-letter queue."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from relaydesk.outbound.relay import Relay
from relaydesk.outbound.result import RecordResult
from relaydesk.store.ports import NotificationDeadLetters, RetryDelay

log = logging.getLogger(__name__)


def batch_response(results: Iterable[RecordResult], retry: RetryDelay | None,
                   dead_letters: NotificationDeadLetters | None = None) -> dict:
    """Released records are left out (the event source mapping deletes them). A record deferred at its last attempt,
    its reason on the ticket, is sent to the DLQ here and then released, so a notification reaches the DLQ only with
    its reason recorded; if that send fails, it is kept and SQS's own redrive (maxReceiveCount) is the backstop.
    Every other kept record is reported after its visibility is set to its delay."""
    failures = []
    for result in results:
        if not result.failed:
            continue
        if result.last_attempt and dead_letters is not None and _buried(result, dead_letters):
            continue
        if retry is not None and result.receipt_handle and result.retry_in is not None:
            try:
                retry.delay(result.receipt_handle, result.retry_in)
            except Exception:  # it comes back after the queue's visibility timeout instead
                log.exception("setting the retry delay of %s failed", result.message_id)
        failures.append({"itemIdentifier": result.message_id})
    return {"batchItemFailures": failures}


def _buried(result: RecordResult, dead_letters: NotificationDeadLetters) -> bool:
    notification = result.notification
    try:
        dead_letters.bury(result.body, reason=result.result.reply,
                          notification_id=notification.notification_id if notification else None,
                          receive_count=result.receive_count)
    except Exception:
        log.exception("moving %s to the dead-letter queue failed; kept in the queue", result.message_id)
        return False
    return True


def relay_event(relay: Relay, event: dict, retry: RetryDelay | None, remaining_ms: Callable[[], int] | None = None,
                dead_letters: NotificationDeadLetters | None = None) -> dict:
    """One SQS event in, the partial batch response out."""
    return batch_response(relay.relay_batch(event.get("Records", []), remaining_ms), retry, dead_letters)
