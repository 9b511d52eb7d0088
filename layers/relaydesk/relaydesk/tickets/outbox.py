"""Sending what an agent's work produced: the address it leaves from, the record on the ticket, the links that
thread the answers back, and the queue."""

from __future__ import annotations

from relaydesk import markers
from relaydesk.accounts import Account, system_address
from relaydesk.inbound.classify import email_id_alias
from relaydesk.notification import Notification
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import NotificationRecord, Ticket


def own_addresses(stores: Stores, account: Account) -> set[str]:
    """Every address of the account itself: its support addresses and its system address."""
    addresses = {a.email.lower() for a in stores.directory.list_addresses(account.account_id)}
    return addresses | {system_address(account.subdomain, stores.settings.mail_domain)}


def sending_address(stores: Stores, account: Account, ticket: Ticket) -> str:
    """The support address the ticket came in on while it is still the account's, else the account's default,
    else the system address."""
    addresses = stores.directory.list_addresses(account.account_id)
    if any(a.email == ticket.support_address.lower() for a in addresses):
        return ticket.support_address.lower()
    default = next((a for a in addresses if a.is_default), None)
    return default.email if default else system_address(account.subdomain, stores.settings.mail_domain)


def send(stores: Stores, notification: Notification) -> None:
    """Record (only if missing: the relay may already have updated it), link both ids to the ticket, enqueue.
    Each step may be repeated: a second enqueue of the same notification id is sent once by the relay."""
    assert notification.ticket_id
    domain = notification.support_address.rpartition("@")[2]
    message_id = markers.message_id_for(notification.notification_id, domain)
    if stores.tickets.get_notification(notification.ticket_id, notification.notification_id) is None:
        stores.tickets.put_notification(notification.ticket_id, NotificationRecord(
            notification_id=notification.notification_id, message_id=message_id,
            recipients=[*notification.recipients, *notification.cc]))
    stores.tickets.link_message_id(message_id, notification.ticket_id)
    stores.tickets.link_message_id(email_id_alias(notification.notification_id), notification.ticket_id)
    stores.queue.send(notification)
