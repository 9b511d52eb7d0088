"""Exactly once per notification id in the Lambda: powertools Idempotency on the DynamoDB idempotency table.

Only a final outcome (delivered, permanently failed) is stored as completed; a deferral or a hold raises through
the guard, so its record is deleted and the next attempt may send.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from relaydesk.errors import AlreadyInProgress
from relaydesk.notification import Notification

DEFAULT_EXPIRY_SECONDS = 4 * 24 * 3600  # the notifications queue's retention: a duplicate can't come later


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
        except self._in_progress as error:
            raise AlreadyInProgress(
                f"notification {notification.notification_id} is being delivered by another invocation") from error


def powertools_once(table_name: str, *, expires_after_seconds: int = DEFAULT_EXPIRY_SECONDS) -> PowertoolsOnce:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    config = IdempotencyConfig(event_key_jmespath="notification_id", expires_after_seconds=expires_after_seconds,
                               raise_on_no_idempotency_key=True)
    return PowertoolsOnce(DynamoDBPersistenceLayer(table_name=table_name), config)
