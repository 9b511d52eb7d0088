"""Ports whose every call is tried again, while the invocation has time, when AWS throttles it or fails it in passing.

For the inbound function: each of its store calls is safe to repeat (the ledger's decision names every id it
writes; a create that finds its item answers "exists", a put writes the same item again, a counter counts an event
once), so a call whose answer was lost is recognised when it is repeated. A failure that another try cannot mend
(access denied, a bad request, a condition that failed) is raised at once, as before.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as SdkConnectionError
from pydantic import BaseModel

from relaydesk.durable import retried

T = TypeVar("T")

# What botocore's standard retry mode counts as throttling (botocore/retries/standard.py), which the SDK has already
# retried a few times by the time it raises.
THROTTLED = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "TransactionInProgressException", "RequestLimitExceeded",
    "BandwidthLimitExceeded", "RequestThrottled", "SlowDown", "PriorRequestNotComplete"})
# Failures in passing: the service's own (5xx, timeouts) and DynamoDB's transaction conflicts (another transaction
# held an item at that moment).
PASSING = frozenset({"RequestTimeout", "RequestTimeoutException", "InternalError", "InternalServerError",
                     "InternalFailure", "ServiceUnavailable", "ServiceUnavailableException",
                     "TransactionConflictException"})
# A cancelled transaction is worth another try only when no part of it was refused for good (its condition).
PASSING_CANCELLATIONS = frozenset({"None", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})


def is_transient(error: Exception) -> bool:
    """True when the same call may well succeed a moment later: throttling, a 5xx, a timeout, a dropped connection,
    a transaction conflict (a read timeout too: the call may have landed, and repeating it is safe, see above)."""
    if isinstance(error, (SdkConnectionError, HTTPClientError)):
        return True
    if not isinstance(error, ClientError):
        return False
    code = error.response.get("Error", {}).get("Code", "")
    if code in THROTTLED or code in PASSING:
        return True
    if code == "TransactionCanceledException":
        reasons = {r.get("Code", "None") for r in error.response.get("CancellationReasons", [])}
        return bool(reasons) and reasons <= PASSING_CANCELLATIONS
    return error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500


class RetryingPort:
    """`port` with each method call retried on a transient failure while `remaining_ms` leaves time. Named after
    the port and the method in the log (`tickets.create_ticket`), never with the call's arguments."""

    def __init__(self, label: str, port: Any, remaining_ms: Callable[[], int] | None) -> None:
        self._label, self._port, self._remaining_ms = label, port, remaining_ms

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._port, name)
        if not callable(target):
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            return retried(f"{self._label}.{name}", lambda: target(*args, **kwargs), self._remaining_ms,
                           retryable=is_transient)

        return call


def retrying(ports: T, remaining_ms: Callable[[], int] | None) -> T:
    """A copy of `ports` (a dataclass of ports: Stores, InboundPorts) whose ports retry; the settings and the
    other environment's directories (a tuple) are kept as they are."""
    wrapped = {field.name: RetryingPort(field.name, value, remaining_ms) for field in dataclasses.fields(ports)
               if (value := getattr(ports, field.name)) is not None and not isinstance(value, (BaseModel, tuple))}
    return dataclasses.replace(ports, **wrapped)
