"""The tenant matrix's cells for the admin console's routes (relaydesk/api/console_routes.py): the request each case
sends, the resources they need (a verified address for DKIM, a job, suspended tickets), and a token of the console's
app client, the only one admitted to the console-only routes. Every case but the own ones must answer as the matrix
says (404, 401, 403): the routes are tested by the same rules as the others."""

from __future__ import annotations

import itertools
import re
from urllib.parse import quote

from relaydesk.accounts import system_address
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.addresses.model import VerificationStatus
from relaydesk.jobs.model import Job, JobKind
from relaydesk.tickets.model import SuspensionReason, Ticket, TicketStatus

TEMPLATES = re.compile(r"/(providers|connections|jobs|dkim|deliveries|held_notifications|dead_letters|"
                       r"suspended_tickets|settings|users)\b|/support_addresses/\{id\}/")
RESOURCE = re.compile(r"\{(id|job_id|ticket_id|domain)\}")
_tickets = itertools.count(1)
OWN_LIMIT, ATTACKER_LIMIT = 20, 1  # messages a minute


def is_console_route(template: str) -> bool:
    return bool(TEMPLATES.search(template))


def names_a_resource(template: str) -> bool:
    return bool(RESOURCE.search(template))


def passing(credentials, **_):
    steps = [CheckStep(name=n, ok=True) for n in ("dns", "tcp", "greeting", "starttls", "certificate", "auth")]
    return LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode, steps=steps)


def prepare(world, tenant, monkeypatch) -> None:
    """What the console's routes need of a tenant: help@ verified (DKIM), a job, console tokens; and offline checks
    (the matrix is about who may call a route, not what a smarthost or the DNS answers)."""
    monkeypatch.setattr("relaydesk.api.console_routes.resolver_factory", lambda: (lambda name, rdtype: []))
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", passing)
    monkeypatch.setattr("relaydesk.addresses.rotation.run_live_check", passing)
    stores = world.stores
    help_address = stores.directory.get_account_address(tenant.account_id, f"help@{tenant.domain}")
    help_address.forwarding.status = VerificationStatus.VERIFIED
    stores.directory.put_address(help_address)
    stores.directory.claim_address(tenant.account_id, help_address.email)
    # Its own connector for the credentials cell: that job rotates in the background while other cells disable and
    # enable support@ (two writers of one address at once is not what this matrix is about).
    world.connect(tenant, f"rotating@{tenant.domain}")
    tenant.job_id = f"J{tenant.subdomain.upper()}1"
    stores.jobs.create(Job(job_id=tenant.job_id, account_id=tenant.account_id, kind=JobKind.VERIFY,
                           email=help_address.email))
    client = world.stack.env["RELAYDESK_CONSOLE_CLIENT_ID"]
    for role, user in (("admin", tenant.admin), ("agent", tenant.agent), ("nobody", tenant.nobody)):
        tenant.console_tokens[role] = world.cognito.initiate_auth(
            ClientId=client, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": user.username, "PASSWORD": user.password})["AuthenticationResult"]["IdToken"]


def suspended_ticket(world, tenant) -> str:
    ticket_id = f"T{tenant.subdomain.upper()}{next(_tickets):04d}"
    world.stores.tickets.create_ticket(Ticket(
        ticket_id=ticket_id, account_id=tenant.account_id, support_address=f"help@{tenant.domain}",
        subject="Fwd: question", requester=f"agent@{tenant.domain}", status=TicketStatus.SUSPENDED,
        suspension_reason=SuspensionReason.MANUAL_FORWARD))
    return ticket_id


def tenant_request(world, actor, victim, method: str, template: str, case: str, role: str):
    """The path, body and token of one cell of the matrix for a console route."""
    account = victim.account_id if case == "other tenant's" else actor.account_id
    own = case.startswith("own")  # as the agent or as the admin
    owner = actor if own else victim
    values = {
        "account_id": account,
        # Verifying one's own system address finishes at once (nothing to wait for in the background).
        "id": (system_address(owner.subdomain, world.stack.mail_domain) if template.endswith("/verification")
               and own else f"rotating@{owner.domain}" if template.endswith("/connector")
               else f"support@{owner.domain}" if re.search(r"/(disable|enable|held/release|limits)$", template)
               else f"help@{owner.domain}"),
        "job_id": owner.job_id,
        "ticket_id": suspended_ticket(world, owner) if "{ticket_id}" in template else "",
        "domain": owner.domain,
    }
    path = re.sub(r"\{(\w+)\}", lambda m: quote(values[m.group(1)], safe=""), template)
    body = {
        ("POST", "/accounts/{account_id}/connections"): {
            "email": owner.fresh("wizard"), "host": "127.0.0.1", "port": 2525, "tls_mode": "starttls",
            "password": owner.smtp_password},
        ("POST", "/accounts/{account_id}/support_addresses/{id}/connector"): {"password": owner.smtp_password},
        ("PUT", "/accounts/{account_id}/dkim/{domain}"): {"signing": False},
        # One's own admin lowers the limit; another's attempt would stop the mailbox almost entirely.
        ("PUT", "/accounts/{account_id}/support_addresses/{id}/limits"): {
            "messages_per_minute": OWN_LIMIT if own else ATTACKER_LIMIT},
        ("POST", "/accounts/{account_id}/dead_letters/redrive"): {"notification_ids": []},
        ("PUT", "/accounts/{account_id}/settings"): {"include_attachments_in_email": True},
        ("POST", "/accounts/{account_id}/users"): {"email": owner.fresh("invited"), "role": "agent"},
    }.get((method, template), {} if method in ("POST", "PUT") else None)
    tokens = actor.console_tokens
    token = {"own, as agent": tokens["agent"], "own, as admin": tokens["admin"], "other tenant's": tokens["admin"],
             "other's in own path": tokens["admin"], "expired token": actor.expired,
             "no role": tokens["nobody"]}.get(case)
    return path, body, token
