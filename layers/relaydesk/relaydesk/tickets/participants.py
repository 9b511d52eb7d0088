"""CCs and followers of a ticket, within the account's rules: both need the account's CCs-and-followers setting
on; a CC is anyone outside the help desk (not the requester, never one of the account's own addresses); a follower
is an agent, so an address on one of the account's own mail domains. Each change is one attribute update of the
ticket's sets, so concurrent changes all land."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from relaydesk.accounts import Account, system_address
from relaydesk.clock import utcnow
from relaydesk.errors import InvalidAddressError, RuleViolation
from relaydesk.outbound.compose import mailbox
from relaydesk.store.ports import Stores
from relaydesk.tickets.model import Ticket, TicketStatus
from relaydesk.tickets.queries import ticket_of

MAX_CCS = 48  # per ticket, as Zendesk allows; also keeps one notification's Cc within providers' limits
MAX_FOLLOWERS = 48
MAX_PER_CHANGE = 48


class Role(StrEnum):
    CC = "cc"
    FOLLOWER = "follower"


def normalised(address: str) -> str:
    """One plain address, lower-cased; anything else is refused with the rule's name, never echoed at length."""
    try:
        return mailbox((address or "").strip()).addr_spec.lower()
    except InvalidAddressError:
        raise RuleViolation(f"{(address or '')[:80]!r} is not one plain email address", rule="invalid_address",
                            action="Give addresses as name@example.com, one per argument.") from None


def add(stores: Stores, account_id: str, ticket_id: str, role: Role, addresses: list[str], *,
        now: datetime | None = None) -> Ticket:
    account, ticket, wanted = _checked(stores, account_id, ticket_id, addresses)
    own = {a.email for a in stores.directory.list_addresses(account_id)}
    own.add(system_address(account.subdomain, stores.settings.mail_domain))
    for address in wanted:
        if address in own or address.endswith("." + stores.settings.mail_domain) \
                or address.rpartition("@")[2] == stores.settings.mail_domain:
            raise RuleViolation(f"{address} is one of the help desk's own addresses", rule="own_address",
                                action="Copy people, not the help desk itself: that would loop.")
        if role is Role.CC and address == ticket.requester.lower():
            raise RuleViolation(f"{address} is the requester; requesters get every public reply already",
                                rule="cc_is_requester")
        agent_domains = _agent_domains(stores, account)
        if role is Role.FOLLOWER and address.rpartition("@")[2] not in agent_domains:
            where = ", ".join(sorted(agent_domains)) or "the account's own domains"
            raise RuleViolation(f"{address} is not an agent's address: followers are agents, on {where}",
                                rule="follower_not_agent", action="Add people outside the help desk as CCs.")
    at = now or utcnow()
    if role is Role.CC:
        done = stores.tickets.add_ccs(ticket.ticket_id, wanted, at, limit=MAX_CCS)
    else:
        done = stores.tickets.add_followers(ticket.ticket_id, wanted, at, limit=MAX_FOLLOWERS)
    if not done:
        limit = MAX_CCS if role is Role.CC else MAX_FOLLOWERS
        raise RuleViolation(f"a ticket has at most {limit} {role.value}s", rule=f"{role.value}_limit",
                            action=f"Remove a {role.value} first.")
    return ticket_of(stores, account_id, ticket_id)


def remove(stores: Stores, account_id: str, ticket_id: str, role: Role, addresses: list[str], *,
           now: datetime | None = None) -> Ticket:
    _, ticket, wanted = _checked(stores, account_id, ticket_id, addresses)
    at = now or utcnow()
    if role is Role.CC:
        stores.tickets.remove_ccs(ticket.ticket_id, wanted, at)
    else:
        stores.tickets.remove_followers(ticket.ticket_id, wanted, at)
    return ticket_of(stores, account_id, ticket_id)


def _checked(stores: Stores, account_id: str, ticket_id: str,
             addresses: list[str]) -> tuple[Account, Ticket, list[str]]:
    account = stores.directory.get_account(account_id)
    if not account.settings.ccs_and_followers_enabled:
        raise RuleViolation("CCs and followers are off for this account", rule="ccs_and_followers_off",
                            action="Turn them on: `relaydesk accounts settings ID --ccs-and-followers on`.")
    if not addresses or len(addresses) > MAX_PER_CHANGE:
        raise RuleViolation(f"name 1 to {MAX_PER_CHANGE} addresses", rule="address_count")
    wanted = list(dict.fromkeys(normalised(a) for a in addresses))
    ticket = ticket_of(stores, account_id, ticket_id)
    if ticket.status is TicketStatus.SUSPENDED:
        raise RuleViolation("the ticket is suspended", rule="ticket_suspended",
                            action="A suspended ticket is reviewed before anyone is copied on it.")
    return account, ticket, wanted


def _agent_domains(stores: Stores, account: Account) -> set[str]:
    return {a.domain for a in stores.directory.list_addresses(account.account_id)}
