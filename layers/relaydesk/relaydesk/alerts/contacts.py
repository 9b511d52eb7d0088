"""An account's admin contacts: who hears about its addresses' holds (and, later, anything else an admin must act
on). At most `MAX_ADMIN_CONTACTS`, each a plain address."""

from __future__ import annotations

from collections.abc import Iterable

from relaydesk.accounts import MAX_ADMIN_CONTACTS, Account, contact_address
from relaydesk.errors import RuleViolation
from relaydesk.wiring import Stores


def change_admin_contacts(stores: Stores, account_id: str, *, add: Iterable[str] = (),
                          remove: Iterable[str] = ()) -> Account:
    """Add and remove contacts (added ones go last, duplicates once); refused past the limit, nothing changed."""
    account = stores.directory.get_account(account_id)
    gone = {contact_address(value) for value in remove}
    contacts = [c for c in account.admin_emails if c not in gone]
    contacts = list(dict.fromkeys([*contacts, *(contact_address(value) for value in add)]))
    if len(contacts) > MAX_ADMIN_CONTACTS:
        raise RuleViolation(
            f"an account has at most {MAX_ADMIN_CONTACTS} admin contacts; this would make {len(contacts)}",
            rule="admin_contacts_limit",
            action="Remove some with --remove, or use a shared mailbox (it@...) for the team.")
    if contacts != account.admin_emails:
        account.admin_emails = contacts
        stores.directory.put_account(account)
    return account
