"""Who and where: the account (from the system address the mail was delivered to), the support address the end
user wrote to, the requester and the CCs."""

from __future__ import annotations

from dataclasses import dataclass, field

from relaydesk.accounts import Account, subdomain_of_system_address, system_address
from relaydesk.addresses.model import SupportAddress
from relaydesk.inbound.addresses import Mailbox
from relaydesk.inbound.limits import MAX_CCS
from relaydesk.inbound.parse import ParsedMail
from relaydesk.store.ports import DirectoryStore

# Where the address the end user wrote to can be found, most telling first (issue 4).
SUPPORT_ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Forwarded-To", "X-Forwarded-For", "X-Original-To",
                           "Resent-To")


@dataclass
class Route:
    account: Account
    system_address: str
    addresses: list[SupportAddress]
    support_address: str  # the customer's address the notification leaves from (or the system address)
    recipient: str  # the system address SES delivered to
    own_addresses: set[str] = field(default_factory=set)  # every support address plus the system address
    mail_domain: str = ""

    @property
    def support_domain(self) -> str:
        return self.support_address.rpartition("@")[2]


def find_account(directory: DirectoryStore, recipients: list[str], mail_domain: str) -> tuple[Account, str] | None:
    for recipient in recipients:
        subdomain = subdomain_of_system_address(recipient, mail_domain)
        if subdomain is None:
            continue
        account = directory.find_account_by_subdomain(subdomain)
        if account is not None:
            return account, recipient.lower()
    return None


def resolve(directory: DirectoryStore, mail: ParsedMail, account: Account, recipient: str,
            mail_domain: str) -> Route:
    own_system = system_address(account.subdomain, mail_domain)
    addresses = directory.list_addresses(account.account_id)
    known = {a.email: a for a in addresses}
    chosen = next((a for a in mail.addresses(*SUPPORT_ADDRESS_HEADERS) if a in known and a != own_system), None)
    if chosen is None:
        default = next((a for a in addresses if a.is_default), None)
        chosen = default.email if default else own_system
    return Route(account=account, system_address=own_system, addresses=addresses, support_address=chosen,
                 recipient=recipient, own_addresses=set(known) | {own_system, recipient},
                 mail_domain=mail_domain.lower())


def requester_mailbox(mail: ParsedMail) -> Mailbox | None:
    """The first mailbox of Reply-To, else of From, whatever forwarding happened: its angle-bracket address, never
    its display name (parsed before the name's encoded words are decoded, `inbound/addresses.py`)."""
    for name in ("Reply-To", "From"):
        found = mail.mailboxes(name)
        if found:
            return found[0]
    return None


def ccs_of(mail: ParsedMail, route: Route, requester: str | None) -> list[str]:
    """The other To/Cc addresses, when the account has CCs and followers on; never one of our own addresses; at most
    MAX_CCS of them."""
    if not route.account.settings.ccs_and_followers_enabled:
        return []
    return [a for a in mail.addresses("To", "Cc")
            if a not in route.own_addresses and a != requester and not is_system_domain(a, route.mail_domain)][:MAX_CCS]


def is_system_domain(address: str, mail_domain: str) -> bool:
    domain = address.rpartition("@")[2]
    return bool(mail_domain) and (domain == mail_domain or domain.endswith("." + mail_domain))
