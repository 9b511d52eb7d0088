"""An agent changes a ticket's status or assignee. Solving a ticket tells the requester and CCs when the account
has that notification on; the status write is conditional, so two agents solving at once send it once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.clock import utcnow
from relaydesk.errors import RuleViolation
from relaydesk.store.ports import Stores
from relaydesk.tickets import notices, outbox, requests
from relaydesk.tickets.model import Agent, Ticket, TicketStatus
from relaydesk.tickets.queries import ticket_of

AGENT_STATUSES = (TicketStatus.OPEN, TicketStatus.PENDING, TicketStatus.SOLVED)


@dataclass(frozen=True)
class StatusChange:
    ticket: Ticket
    changed: bool
    notification_id: str | None = None


def check_status(status: TicketStatus | str) -> TicketStatus:
    value = TicketStatus(status) if isinstance(status, str) and status in set(TicketStatus) else status
    if value not in AGENT_STATUSES:
        raise RuleViolation(f"an agent sets a ticket to {', '.join(AGENT_STATUSES)}, not {str(status)[:20]!r}",
                            rule="agent_status")
    return TicketStatus(value)


def change_status(stores: Stores, account_id: str, ticket_id: str, status: TicketStatus | str, *, agent: Agent,
                  request_id: str | None = None, notify: bool = True, now: datetime | None = None) -> StatusChange:
    wanted = check_status(status)
    request_id = requests.checked(request_id)
    ticket = ticket_of(stores, account_id, ticket_id)
    if ticket.status is TicketStatus.SUSPENDED:
        raise RuleViolation("the ticket is suspended", rule="ticket_suspended",
                            action="A suspended ticket is reviewed and released before anyone works on it.")
    at = now or utcnow()
    others = frozenset({TicketStatus.NEW, *AGENT_STATUSES} - {wanted})
    changed = stores.tickets.change_status(ticket.ticket_id, wanted, at, from_statuses=others)
    notification_id = None
    account = stores.directory.get_account(account_id)
    if changed and notify and wanted is TicketStatus.SOLVED and account.settings.notify_requester_on_solved:
        notification_id = requests.derived_id("N", account_id, ticket.ticket_id, request_id, "solved")
        who = notices.recipients(ticket, account, agent, outbox.own_addresses(stores, account))
        notice = notices.solved_notice(ticket, agent=agent, at=at, who=who, notification_id=notification_id,
                                       support_address=outbox.sending_address(stores, account, ticket))
        if notice is None:
            notification_id = None
        else:
            outbox.send(stores, notice)
    return StatusChange(ticket=ticket_of(stores, account_id, ticket_id), changed=changed,
                        notification_id=notification_id)


def assign(stores: Stores, account_id: str, ticket_id: str, assignee: Agent | None, *,
           now: datetime | None = None) -> Ticket:
    ticket = ticket_of(stores, account_id, ticket_id)
    stores.tickets.assign(ticket.ticket_id, assignee, now or utcnow())
    return ticket_of(stores, account_id, ticket_id)
