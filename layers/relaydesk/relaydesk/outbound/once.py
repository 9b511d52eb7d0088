"""Exactly once per notification id: powertools Idempotency (DynamoDB) in the Lambda, a dict in unit tests.

Only a final outcome (delivered, permanently failed) is stored as completed; a deferral or a hold raises through
the guard, so its record is deleted and the next attempt may send.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, Protocol

from relaydesk.notification import Notification

DEFAULT_EXPIRY_SECONDS = 4 * 24 * 3600  # the notifications queue's retention: a duplicate can't come later


class AlreadyInProgress(Exception):
    """Another invocation holds this notification right now; try again later."""


class OnceGuard(Protocol):
    def run(self, notification: Notification, work: Callable[[], dict]) -> dict: ...


class MemoryOnce:
    def __init__(self) -> None:
        self.completed: dict[str, dict] = {}
        self._running: set[str] = set()
        self._lock = threading.Lock()

    def run(self, notification: Notification, work: Callable[[], dict]) -> dict:
        key = notification.notification_id
        with self._lock:
            if key in self.completed:
                return self.completed[key]
            if key in self._running:
                raise AlreadyInProgress(key)
            self._running.add(key)
        try:
            result = work()
        finally:
            with self._lock:
                self._running.discard(key)
        with self._lock:
            self.completed[key] = result
        return result


class PowertoolsOnce:
    """`idempotent_function` keyed on the notification's `notification_id`."""

    def __init__(self, persistence_store: Any, config: Any) -> None:
        from aws_lambda_powertools.utilities.idempotency import idempotent_function
        from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

        self._in_progress = IdempotencyAlreadyInProgressError
        self.config = config

        @idempotent_function(data_keyword_argument="notification", persistence_store=persistence_store, config=config)
        def deliver_once(notification: dict, work: Callable[[], dict]) -> dict:
            return work()

        self._deliver_once = deliver_once
        # Configure now, once: the first calls come from several smarthost threads at the same time, and the
        # layer marks itself configured before it has finished configuring.
        persistence_store.configure(config=config, function_name=f"{deliver_once.__module__}."
                                    f"{getattr(deliver_once, '__wrapped__', deliver_once).__qualname__}")

    def run(self, notification: Notification, work: Callable[[], dict]) -> dict:
        try:
            return self._deliver_once(notification=notification.model_dump(mode="json"), work=work)
        except self._in_progress:
            raise AlreadyInProgress(notification.notification_id) from None


def powertools_once(table_name: str, *, expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS) -> PowertoolsOnce:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    config = IdempotencyConfig(event_key_jmespath="notification_id", expires_after_seconds=expires_after_seconds,
                               raise_on_no_idempotency_key=True)
    return PowertoolsOnce(DynamoDBPersistenceLayer(table_name=table_name), config)
