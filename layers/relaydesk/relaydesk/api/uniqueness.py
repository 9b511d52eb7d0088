"""POST's uniqueness rule across the separately deployed sandbox and production stacks: the CLI's rule and the CLI's
behaviour when the other stack cannot be read (the address is added, with a note that it was not checked there)."""

from __future__ import annotations

from aws_lambda_powertools import Logger

from relaydesk.addresses import lifecycle
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import OtherEnvironmentUnreadable
from relaydesk.store.ports import Stores

logger = Logger(child=True)

NOTE_HEADER = "X-Relaydesk-Note"  # the CLI prints the same note on stderr


def add_forwarding_address(stores: Stores, account_id: str, email: str, name: str, kind: str,
                           ) -> tuple[SupportAddress, str | None]:
    """The new address and, when the other environment could not be read, the note for the caller."""
    try:
        address = lifecycle.add_forwarding_address(stores, account_id, email, name, kind=kind, peers=stores.peers)
        return address, None
    except OtherEnvironmentUnreadable as error:
        # Nothing was saved: the other environment is read before the address is created.
        logger.warning("uniqueness across environments not checked",
                       extra={"code": error.code, "reason": error.message, "action": error.action})
    address = lifecycle.add_forwarding_address(stores, account_id, email, name, kind=kind)
    labels = " and ".join(label for label, _ in stores.peers)
    return address, (f"the {labels} environment could not be checked for this address; make sure the address is "
                     "not a support address there")
