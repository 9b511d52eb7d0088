"""The other environment's directory table (sandbox <-> production), read for the uniqueness rule only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import OtherEnvironmentUnreadable
from relaydesk.store.dynamodb import DynamoDirectory

T = TypeVar("T")


class PeerDirectory(DynamoDirectory):
    """A `DirectoryStore` on the other stack's table. Its IAM grant is read-only, so only reads are expected; a read
    that fails (access denied, no such table) is `OtherEnvironmentUnreadable` rather than a raw AWS error, so that
    the caller can say "not checked" instead of failing with a 500."""

    def __init__(self, table: Any, label: str) -> None:
        super().__init__(table)
        self.label = label

    def owner_of(self, email: str) -> str | None:
        return self._read(lambda: super(PeerDirectory, self).owner_of(email))

    def get_address(self, email: str) -> SupportAddress | None:
        return self._read(lambda: super(PeerDirectory, self).get_address(email))

    def _read(self, read: Callable[[], T]) -> T:
        try:
            return read()
        except ClientError as error:
            reason = error.response.get("Error", {}).get("Code", "ClientError")
        except BotoCoreError as error:
            reason = type(error).__name__
        raise OtherEnvironmentUnreadable(f"the {self.label} environment's directory could not be read ({reason})")
