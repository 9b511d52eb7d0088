"""The notifications an agent's work sends: a public reply (one to the requester and CCs, one to the followers,
marked as a follower's copy) and the news that a ticket was solved. An internal note sends nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relaydesk.accounts import Account
from relaydesk.inbound.acknowledge import subject_for
from relaydesk.notification import AttachmentRef, Notification, NotificationKind
from relaydesk.tickets import render, thread
from relaydesk.tickets.model import Agent, Ticket

REPLY_FOOTER = "Reply to this email to answer. Ticket {ticket_id}."
FOLLOWER_INTRO = "You follow this ticket. {agent} replied to {requester}:"
SOLVED_NEWS = ("{agent} marked your request {ticket_id} as solved. If something is still not right, reply to this "
               "email and the ticket opens again.")


@dataclass(frozen=True)
class Recipients:
    """Who a public reply goes to: the requester with the CCs (one message), and the followers (another)."""

    to: list[str]
    cc: list[str]
    followers: list[str]


def recipients(ticket: Ticket, account: Account, agent: Agent, own_addresses: set[str]) -> Recipients:
    """Never the agent who wrote, never one of the account's own addresses (a loop); a follower who is also
    the requester or a CC gets the public mail only. CCs and followers only while the account has them on."""
    skip = {a.lower() for a in own_addresses} | ({agent.email.lower()} if agent.email else set())
    to = [] if ticket.requester.lower() in skip else [ticket.requester.lower()]
    enabled = account.settings.ccs_and_followers_enabled
    cc = [c for c in dict.fromkeys(x.lower() for x in ticket.ccs) if c not in skip and c not in to] if enabled else []
    if not to and cc:  # the requester is the agent: the first CC takes the To
        to, cc = cc[:1], cc[1:]
    followers = [f for f in dict.fromkeys(x.lower() for x in ticket.followers)
                 if f not in skip and f not in to and f not in cc] if enabled else []
    return Recipients(to=to, cc=cc, followers=followers)


def reply_notices(ticket: Ticket, account: Account, *, comment_id: str, agent: Agent, body: str, at: datetime,
                  attachments: list[AttachmentRef], support_address: str, who: Recipients,
                  ids: tuple[str, str]) -> list[Notification]:
    """One notification per recipient set that has anyone in it; `ids` are (public, followers) notification ids."""
    in_reply_to, references = thread.headers(ticket, before=comment_id)
    earlier = thread.conversation(ticket, before=comment_id)
    news = render.Message(author=agent.name, at=at, text=body)
    footer = REPLY_FOOTER.format(ticket_id=ticket.ticket_id)
    common = dict(kind=NotificationKind.AGENT_REPLY, account_id=ticket.account_id, ticket_id=ticket.ticket_id,
                  support_address=support_address, subject=subject_for(ticket.ticket_id, ticket.subject),
                  in_reply_to=in_reply_to, references=references, attachments=attachments, agent_name=agent.name,
                  created_at=at)
    notices = []
    if who.to:
        notices.append(Notification(
            notification_id=ids[0], recipients=who.to, cc=who.cc, **common,
            text_body=render.text_part(body, earlier, footer),
            html_body=render.html_part("", news, earlier, footer)))
    if who.followers:
        intro = FOLLOWER_INTRO.format(agent=agent.name, requester=ticket.requester)
        notices.append(Notification(
            notification_id=ids[1], recipients=who.followers, **common,
            text_body=render.text_part(f"[Follower copy] {intro}\n\n{body}", earlier, footer),
            html_body=render.html_part(f"Follower copy. {intro}", news, earlier, footer)))
    return notices


def solved_notice(ticket: Ticket, *, agent: Agent, at: datetime, support_address: str, who: Recipients,
                  notification_id: str) -> Notification | None:
    if not who.to:
        return None
    in_reply_to, references = thread.headers(ticket)
    earlier = thread.conversation(ticket)
    news = SOLVED_NEWS.format(agent=agent.name, ticket_id=ticket.ticket_id)
    footer = REPLY_FOOTER.format(ticket_id=ticket.ticket_id)
    return Notification(notification_id=notification_id, kind=NotificationKind.TICKET_SOLVED,
                        account_id=ticket.account_id, ticket_id=ticket.ticket_id, support_address=support_address,
                        recipients=who.to, cc=who.cc, subject=subject_for(ticket.ticket_id, ticket.subject),
                        text_body=render.text_part(news, earlier, footer),
                        html_body=render.html_part(news, None, earlier, footer),
                        in_reply_to=in_reply_to, references=references, agent_name=agent.name, created_at=at)
