"""Suspended tickets (a manual forward, mail from a support address, a flood, spam, a DMARC failure): an admin
reviews them and recovers one into a normal ticket, or deletes it. The raw mail stays in S3 either way."""

from __future__ import annotations

from relaydesk.clock import utcnow
from relaydesk.errors import NotFoundError, RuleViolation
from relaydesk.inbound.limits import MAX_FLAGS
from relaydesk.tickets.model import Ticket, TicketStatus
from relaydesk.wiring import Stores

RECOVERED_FLAG = "recovered_from_suspension"


def suspended_tickets(stores: Stores, account_id: str) -> list[Ticket]:
    tickets = [t for t in stores.tickets.list_tickets(account_id)
               if t.account_id == account_id and t.status is TicketStatus.SUSPENDED]
    return sorted(tickets, key=lambda t: t.created_at, reverse=True)


def _suspended(stores: Stores, account_id: str, ticket_id: str) -> Ticket:
    ticket = stores.tickets.get_ticket(ticket_id) if ticket_id else None
    if ticket is None or ticket.account_id != account_id:  # another account's ticket is not found, like none
        raise NotFoundError("no such ticket in this account", action="Reload the list of suspended tickets.")
    if ticket.status is not TicketStatus.SUSPENDED:
        raise RuleViolation(f"ticket {ticket.ticket_id} is not suspended (it is {ticket.status.value})",
                            rule="ticket_not_suspended", action="Reload the list of suspended tickets.")
    return ticket


def recover(stores: Stores, account_id: str, ticket_id: str) -> Ticket:
    """A normal new ticket from now on: the status changes only if it is still suspended (two admins recovering at
    once change it once); the reason stays on the ticket, and its flags say it was recovered. Nobody is notified
    now (the next reply notifies as usual)."""
    ticket = _suspended(stores, account_id, ticket_id)
    at = utcnow()
    reason = ticket.suspension_reason.value if ticket.suspension_reason else "unknown"
    if not stores.tickets.change_status(ticket.ticket_id, TicketStatus.NEW, at,
                                        from_statuses=frozenset({TicketStatus.SUSPENDED})):
        raise RuleViolation(f"ticket {ticket.ticket_id} is no longer suspended", rule="ticket_not_suspended",
                            action="Reload the list of suspended tickets.")
    stores.tickets.add_flags(ticket.ticket_id, [RECOVERED_FLAG, f"suspended_for:{reason}"], at, limit=MAX_FLAGS)
    return stores.tickets.get_ticket(ticket.ticket_id) or ticket


def delete(stores: Stores, account_id: str, ticket_id: str) -> Ticket:
    """The ticket, its comments and delivery records are removed; only a suspended ticket can be deleted here."""
    ticket = _suspended(stores, account_id, ticket_id)
    stores.tickets.delete_ticket(ticket.ticket_id)
    return ticket
