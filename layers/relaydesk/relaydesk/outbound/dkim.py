"""DKIM signing with the customer's domain. PLACEHOLDER until issue 6 lands: the relay calls `signer_for`."""

from __future__ import annotations

from typing import Protocol

from relaydesk.addresses.model import SupportAddress
from relaydesk.store.ports import SecretStore


class MessageSigner(Protocol):
    def sign(self, message: bytes) -> bytes:
        """The same message with DKIM-Signature header(s) prepended; the body bytes are untouched."""
        ...


def signer_for(address: SupportAddress, secrets: SecretStore) -> MessageSigner | None:
    """The signer for the address's domain, or None when signing is off for it."""
    if not address.dkim.enabled:
        return None
    raise NotImplementedError("DKIM signing lands with issue 6")
