"""SQS adapter for the relay's retries: a deferred record's next attempt waits its visibility timeout."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError


class SqsRetryDelay:
    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def delay(self, receipt_handle: str, seconds: int) -> bool:
        """False when SQS no longer knows the receipt handle (the record already became visible again)."""
        try:
            self._client.change_message_visibility(QueueUrl=self._queue_url, ReceiptHandle=receipt_handle,
                                                   VisibilityTimeout=seconds)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in {"ReceiptHandleIsInvalid", "MessageNotInflight",
                                                               "AWS.SimpleQueueService.MessageNotInflight"}:
                return False
            raise
        return True
