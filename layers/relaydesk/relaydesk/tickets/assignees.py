"""Assigning a ticket to a user of its own account: an agent or admin of the user pool, looked up by address, never a
name typed in. A user of another account is refused exactly like an address no one signs in with."""

from __future__ import annotations

from datetime import datetime

from relaydesk.errors import ConfigurationError, RuleViolation
from relaydesk.store.ports import Stores
from relaydesk.tickets import status
from relaydesk.tickets.model import Agent, Ticket
from relaydesk.tickets.participants import normalised
from relaydesk.tickets.queries import ticket_of


def agent_of_account(stores: Stores, account_id: str, email: str) -> Agent:
    address = normalised(email)
    if stores.users is None:
        raise ConfigurationError("this stack has no user pool to find agents in (RELAYDESK_USER_POOL_ID)",
                                 action="Deploy the stack with its user pool, or assign with the operator's CLI.")
    agent = stores.users.agent(account_id, address)
    if agent is None:
        raise RuleViolation(f"{address} is not an agent or admin of this account", rule="assignee_not_agent",
                            action="Assign the ticket to a user of your account (the operator adds users with "
                                   "`relaydesk users add`).")
    return agent


def assign_to(stores: Stores, account_id: str, ticket_id: str, email: str | None, *,
              now: datetime | None = None) -> Ticket:
    """Assign to the agent with that address (None: unassign). The ticket is looked up first, so another account's
    ticket answers not found whatever the body names."""
    ticket_of(stores, account_id, ticket_id)
    assignee = agent_of_account(stores, account_id, email) if email is not None else None
    return status.assign(stores, account_id, ticket_id, assignee, now=now)
