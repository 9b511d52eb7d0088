"""One message on its way to a smarthost (a delivery, as aiosmtpd's Envelope is to its Session): the notification's
batch item, the address it goes out as, the composed and signed bytes, and its claim once it has one. `Composer`
makes the bytes: composed for the address, DKIM-signed with its domain's keys."""

from __future__ import annotations

from dataclasses import dataclass, field

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.attachments.linker import link_builder
from relaydesk.notification import Notification
from relaydesk.outbound import dkim
from relaydesk.outbound.compose import Composed, Sender, compose, sender_name
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.result import BatchItem
from relaydesk.store.ports import Claim, Stores


@dataclass
class Delivery:
    item: BatchItem
    address: SupportAddress
    composed: Composed
    data: bytes
    claim: Claim | None = None
    inline: bool = True  # attachments inline; False after the server refused the message as too big
    first_refusal: str = ""  # the too-big reply that made it go again with links
    fresh_connection: bool = False  # its pooled connection had been closed by the server: sent on a new one

    @property
    def notification(self) -> Notification:
        assert self.item.notification is not None
        return self.item.notification

    def outgoing(self, deadline: float | None) -> Outgoing:
        """The message as a connection sends it; the delivery itself is the tag its result comes back with."""
        return Outgoing(self.composed.envelope_from, tuple(self.composed.recipients), self.data, tag=self,
                        deadline=deadline)


@dataclass
class Composer:
    """Composes and signs for one group; each account is read once per group, not once per message."""

    stores: Stores
    accounts: dict[str, Account] = field(default_factory=dict)

    def compose(self, notification: Notification, address: SupportAddress, *, inline: bool = True) -> Composed:
        account = self.accounts.get(notification.account_id)
        if account is None:
            account = self.accounts[notification.account_id] = self.stores.directory.get_account(
                notification.account_id)
        sender = Sender(address=address.email, display_name=sender_name(account, address, notification),
                        reply_to=address.email, message_id_domain=address.domain)
        return compose(notification, sender,
                       inline_attachments=inline and account.settings.include_attachments_in_email,
                       fetch=self.stores.blobs.get, link=link_builder(self.stores, notification.account_id))

    def sign(self, address: SupportAddress, data: bytes) -> bytes:
        signer = dkim.signer_for(address, self.stores.secrets)
        return signer.sign(data) if signer is not None else data
