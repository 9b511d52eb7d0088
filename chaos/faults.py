"""Faults at the AWS SDK boundary, injected by botocore event hooks; the product's code is untouched.

The hooks are appended to botocore's built-in handlers when this module is imported, so every botocore session made
afterwards (the relay's and the inbound function's clients, the CLI's) carries them. With no rule set they do
nothing. A `Rule` names the calls it hits and how they fail:

- ``error``: the call never reaches the service; the SDK raises that error code (as after its own retries ran out).
  Throttling, a 5xx, a transaction conflict, SES sending paused.
- ``lost_response``: the call reaches the service and takes effect, then the SDK raises a read timeout, as when the
  response is lost on the way back.

`listen(callback)` adds a callback called before and after every call (``phase`` "before"/"after") with the
service, the operation and the parameters: a chaos worker kills itself from there at a chosen call.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ReadTimeoutError
from botocore.handlers import BUILTIN_HANDLERS

PARAMS_KEY = "relaydesk_chaos_params"


@dataclass(frozen=True)
class Failure:
    """What the SDK reports: an error code, its HTTP status, the service's message (and DynamoDB's reasons)."""

    code: str
    status: int = 400
    message: str = "injected by the chaos suite"
    cancellation_reasons: tuple[str, ...] = ()

    def parsed(self) -> dict[str, Any]:
        parsed: dict[str, Any] = {"Error": {"Code": self.code, "Message": self.message},
                                  "ResponseMetadata": {"HTTPStatusCode": self.status, "RetryAttempts": 0}}
        if self.cancellation_reasons:
            parsed["CancellationReasons"] = [{"Code": code, "Message": self.message}
                                             for code in self.cancellation_reasons]
        return parsed


DYNAMODB_THROTTLED = Failure("ProvisionedThroughputExceededException",
                             message="The level of configured provisioned throughput for the table was exceeded.")
SECRETS_THROTTLED = Failure("ThrottlingException", message="Rate exceeded")
SES_THROTTLED = Failure("Throttling", message="Maximum sending rate exceeded.")
SES_PAUSED = Failure("AccountSendingPausedException", message="Sending is paused for this account.")
S3_SLOW_DOWN = Failure("SlowDown", status=503, message="Please reduce your request rate.")
S3_INTERNAL = Failure("InternalError", status=500, message="We encountered an internal error. Please try again.")
TRANSACTION_CANCELLED = Failure("TransactionCanceledException", message="Transaction cancelled",
                                cancellation_reasons=("TransactionConflict",))
TRANSACTION_CONFLICT = Failure("TransactionConflictException",
                               message="Transaction is ongoing for the item")


def tables_of(params: dict[str, Any]) -> set[str]:
    """The DynamoDB tables a call touches (one table, a transaction's or a batch's items)."""
    tables = {params["TableName"]} if "TableName" in params else set()
    for item in params.get("TransactItems", []):
        tables.update(part["TableName"] for part in item.values() if isinstance(part, dict) and "TableName" in part)
    tables.update(params.get("RequestItems", {}))
    return tables


def _writes_of(params: dict[str, Any]) -> list[dict[str, Any]]:
    """A call's writes: itself, or each part of a transaction (the relay stores an outcome and its ticket record
    in one TransactWriteItems)."""
    parts = [part for item in params.get("TransactItems", []) for part in item.values() if isinstance(part, dict)]
    return parts or [params]


def is_completed_write(params: dict[str, Any]) -> bool:
    """The once guard storing a final outcome (its item turns COMPLETED), alone or within a transaction."""
    return any("COMPLETED" in json.dumps(write.get("ExpressionAttributeValues", {}), default=str)
               for write in _writes_of(params))


def is_ticket_delivery_write(params: dict[str, Any]) -> bool:
    """A delivery attempt recorded on a ticket as delivered, alone or within a transaction."""
    return any("attempts" in write.get("UpdateExpression", "") and "delivered" in json.dumps(
        write.get("ExpressionAttributeValues", {}), default=str) for write in _writes_of(params))


# Predicates by name, so a rule can be sent to a worker process (pickled) and still say which calls it hits.
PREDICATES: dict[str, Callable[[dict[str, Any]], bool]] = {
    "completed_write": is_completed_write,
    "ticket_delivery_write": is_ticket_delivery_write,
}


@dataclass
class Rule:
    """Calls of `service` (botocore's hyphenated service id) whose operation is in `operations` (all when empty),
    that touch one of `tables` (DynamoDB; any when empty) and satisfy `match` (a function, or the name of one in
    PREDICATES), fail with `chance`; at most `times` times when it is set."""

    service: str
    failure: Failure | None = None
    operations: frozenset[str] = frozenset()
    tables: frozenset[str] = frozenset()
    match: Callable[[dict[str, Any]], bool] | str | None = None
    chance: float = 1.0
    times: int | None = None
    lost_response: bool = False
    hits: int = 0

    def applies(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if service != self.service or (self.operations and operation not in self.operations):
            return False
        if self.tables and not (tables_of(params) & self.tables):
            return False
        if self.match is None:
            return True
        predicate = PREDICATES[self.match] if isinstance(self.match, str) else self.match
        return bool(predicate(params))


@dataclass
class AwsFaults:
    """The rules in force in this process (thread-safe), drawn with one seeded generator."""

    rules: list[Rule] = field(default_factory=list)
    seed: int = 0
    listeners: list[Callable[[str, str, str, dict[str, Any]], None]] = field(default_factory=list)
    injected: dict[str, int] = field(default_factory=dict)  # "service.Operation.code" -> count

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)

    def set(self, rules: Iterable[Rule], *, seed: int | None = None) -> None:
        with self._lock:
            self.rules = list(rules)
            if seed is not None:
                self._random = random.Random(seed)

    def clear(self) -> None:
        with self._lock:
            self.rules = []
            self.listeners = []

    def listen(self, callback: Callable[[str, str, str, dict[str, Any]], None]) -> None:
        self.listeners.append(callback)

    def draw(self, service: str, operation: str, params: dict[str, Any], *, lost_response: bool) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.lost_response != lost_response or not rule.applies(service, operation, params):
                    continue
                if rule.times is not None and rule.hits >= rule.times:
                    continue
                if self._random.random() >= rule.chance:
                    continue
                rule.hits += 1
                code = "lost_response" if lost_response else rule.failure.code if rule.failure else "?"
                key = f"{service}.{operation}.{code}"
                self.injected[key] = self.injected.get(key, 0) + 1
                return rule
        return None

    def _notify(self, phase: str, service: str, operation: str, params: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            listener(phase, service, operation, params)


FAULTS = AwsFaults()


def _service_and_operation(event_name: str) -> tuple[str, str]:
    parts = event_name.split(".")
    return (parts[1], parts[2]) if len(parts) >= 3 else ("", "")


def _keep_params(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
    if context is not None:
        context[PARAMS_KEY] = params


def _before_call(event_name: str, context: dict[str, Any] | None = None, **_: Any) -> tuple[AWSResponse, dict] | None:
    if not FAULTS.rules and not FAULTS.listeners:
        return None
    service, operation = _service_and_operation(event_name)
    params = (context or {}).get(PARAMS_KEY, {})
    FAULTS._notify("before", service, operation, params)
    rule = FAULTS.draw(service, operation, params, lost_response=False)
    if rule is None or rule.failure is None:
        return None
    return AWSResponse("https://chaos.invalid/", rule.failure.status, {}, None), rule.failure.parsed()


def _after_call(event_name: str, context: dict[str, Any] | None = None, **_: Any) -> None:
    if not FAULTS.rules and not FAULTS.listeners:
        return
    service, operation = _service_and_operation(event_name)
    params = (context or {}).get(PARAMS_KEY, {})
    FAULTS._notify("after", service, operation, params)
    if FAULTS.draw(service, operation, params, lost_response=True) is not None:
        raise ReadTimeoutError(endpoint_url=f"https://{service}.chaos.invalid/")


# Every session made from now on registers these (botocore.session.Session._register_builtin_handlers).
for _handler in (("before-parameter-build", _keep_params), ("before-call", _before_call), ("after-call", _after_call)):
    if _handler not in BUILTIN_HANDLERS:
        BUILTIN_HANDLERS.append(_handler)
