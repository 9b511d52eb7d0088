"""The SQS side of a relay batch: which records failed (`batchItemFailures`) and how long each waits to retry."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from relaydesk.outbound.relay import Relay
from relaydesk.outbound.result import RecordResult
from relaydesk.store.ports import RetryDelay


def batch_response(results: Iterable[RecordResult], retry: RetryDelay | None) -> dict:
    """Deferred records are reported (SQS keeps them) after their visibility is set to the growing delay; after
    the last attempt the delay is 0, so the queue's redrive moves the record to the DLQ at once."""
    failures = []
    for result in results:
        if not result.failed:
            continue
        if retry is not None and result.receipt_handle and result.retry_in is not None:
            retry.delay(result.receipt_handle, result.retry_in)
        failures.append({"itemIdentifier": result.message_id})
    return {"batchItemFailures": failures}


def relay_event(relay: Relay, event: dict, retry: RetryDelay | None,
                remaining_ms: Callable[[], int] | None = None) -> dict:
    """One SQS event in, the partial batch response out."""
    return batch_response(relay.relay_batch(event.get("Records", []), remaining_ms), retry)
