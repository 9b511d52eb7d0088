"""The other environment's directory table (sandbox <-> production), read for the uniqueness rule only."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import OtherEnvironmentUnreadable
from relaydesk.store.dynamodb import DynamoDirectory


class PeerDirectory(DynamoDirectory):
    """A `DirectoryStore` on the other stack's table. Its IAM grant is read-only, so only reads are expected; a read
    that fails (access denied, no such table) is `OtherEnvironmentUnreadable` rather than a raw AWS error, so that
    the caller can say "not checked" instead of failing with a 500."""

    def __init__(self, table: Any, label: str) -> None:
        super().__init__(table)
        self.label = label

    def get_address(self, email: str) -> SupportAddress | None:
        try:
            return super().get_address(email)
        except ClientError as error:
            reason = error.response.get("Error", {}).get("Code", "ClientError")
        except BotoCoreError as error:
            reason = type(error).__name__
        raise OtherEnvironmentUnreadable(f"the {self.label} environment's directory could not be read ({reason})")
