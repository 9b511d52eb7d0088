"""The default outbound: Relaydesk's own SES (SendRawEmail), for addresses without an active connector and for the
system address. Never another address's smarthost.

Mail leaves From the account's system address (the domain SES may send for) with the support address as Reply-To.
A message over SES's size limit is sent again with links instead of attachments; if it is still too big, that is a
recorded permanent failure, never a silent drop.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP

from relaydesk.accounts import system_address
from relaydesk.attachments.linker import link_builder
from relaydesk.errors import ConfigurationError, NotFoundError, PermanentDeliveryError, SmtpDeliveryError
from relaydesk.notification import Notification
from relaydesk.outbound.compose import Composed, InvalidAddressError, Sender, compose, sender_name
from relaydesk.outbound.policy import Outcome
from relaydesk.outbound.result import Result
from relaydesk.store.ports import RawMailSender
from relaydesk.wiring import Stores

SES_RAW_MESSAGE_LIMIT = 10 * 1024 * 1024  # SES v1 SendRawEmail: 10 MB per message, after encoding
ROUTE = "ses"


def mailer_of(stores: Stores) -> RawMailSender:
    if stores.mailer is None:
        raise ConfigurationError("no default outbound is configured (Stores.mailer)")
    return stores.mailer


class SesRoute:
    def __init__(self, stores: Stores) -> None:
        self.stores = stores

    def _compose(self, notification: Notification, *, inline: bool) -> Composed:
        directory = self.stores.directory
        account = directory.get_account(notification.account_id)
        address = directory.get_account_address(notification.account_id, notification.support_address)
        sender_address = system_address(account.subdomain, self.stores.settings.mail_domain)
        name = sender_name(account, address, notification)
        support_domain = notification.support_address.rpartition("@")[2]
        sender = Sender(address=sender_address, display_name=name, reply_to=notification.support_address,
                        message_id_domain=support_domain)
        return compose(notification, sender, inline_attachments=inline and bool(notification.attachments),
                       fetch=self.stores.blobs.get, link=link_builder(self.stores, notification.account_id))

    def send(self, notification: Notification) -> Result:
        try:
            account = self.stores.directory.get_account(notification.account_id)
            composed = self._compose(notification, inline=account.settings.include_attachments_in_email)
            data = composed.to_bytes()
            if len(data) > SES_RAW_MESSAGE_LIMIT and notification.attachments:
                composed = self._compose(notification, inline=False)  # links instead of attachments
                data = composed.to_bytes()
            if len(data) > SES_RAW_MESSAGE_LIMIT:
                raise PermanentDeliveryError(
                    f"the message is {len(data)} bytes, over SES's {SES_RAW_MESSAGE_LIMIT}-byte limit even with "
                    "links instead of attachments",
                    action="Shorten the comment (or move inline images to attachments) and send it again.")
            message_id = mailer_of(self.stores).send_raw(composed.envelope_from, list(composed.recipients), data)
        except InvalidAddressError as error:
            return Result(Outcome.FAILED, route=ROUTE, reply=str(error))
        except NotFoundError as error:
            return Result(Outcome.FAILED, route=ROUTE, reply=error.message)
        except SmtpDeliveryError as error:
            return Result.of_error(error, ROUTE)
        return Result(Outcome.DELIVERED, route=ROUTE, reply=f"SES message id {message_id}")


def send_verification_mail(stores: Stores, message: EmailMessage) -> str:
    """ADDRESSES' forwarding test mail through the default outbound; raises OSError-compatible errors on failure."""
    sender = message["From"].addresses[0].addr_spec
    recipients = [a.addr_spec for header in ("To", "Cc") for a in (message[header].addresses if message[header]
                                                                    else ())]
    try:
        return mailer_of(stores).send_raw(sender, recipients, message.as_bytes(policy=SMTP))
    except SmtpDeliveryError as error:
        raise ConnectionError(f"the default outbound refused the test mail: {error.message}") from None
