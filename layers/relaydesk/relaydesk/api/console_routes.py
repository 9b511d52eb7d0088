"""The admin console's routes, on the tenant route table (`relaydesk.api.tenant_routes`): each one a thin call into
the domain, acting for the caller's own account only. The gate has already checked the account and the role; the
routes that take credentials are console-only (a token of the console's app client), so the public API still
cannot create a connector address or change its credentials."""

from __future__ import annotations

import os
from collections.abc import Callable
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from pydantic import SecretStr

from relaydesk.accounts import system_address
from relaydesk.addresses import connection, guides, lifecycle, sign_in, state
from relaydesk.addresses.diagnosis import explain_last_error
from relaydesk.addresses.live_check import planned_steps
from relaydesk.addresses.model import Connector
from relaydesk.addresses.presets import PROFILE_OF_PRESET
from relaydesk.addresses.presets import resolve as resolve_preset
from relaydesk.addresses.rotation import stage_change
from relaydesk.api import console_limits
from relaydesk.api.console_schemas import (
    DOMAIN_PATTERN,
    SIGN_IN_MATERIAL,
    AddressDetails,
    AttemptOut,
    ConnectorChange,
    DeadLetterList,
    DeadLetterOut,
    DeletedTicket,
    DeliveryLog,
    DeliveryOut,
    DkimChange,
    DkimDomainOut,
    DkimGenerationOut,
    DnsCheckOut,
    DnsRecordOut,
    Explanation,
    FindingOut,
    HeldList,
    HeldOut,
    JobOut,
    NewConnection,
    NewUser,
    ProviderList,
    ProviderOut,
    Redrive,
    Redriven,
    Released,
    SettingsChange,
    SuspendedList,
    SuspendedOut,
    UserList,
    UserOut,
)
from relaydesk.api.identity import Caller, Role
from relaydesk.api.responses import documented
from relaydesk.api.routing import RouteTable
from relaydesk.api.schemas import AccountOut, AddressOut
from relaydesk.clock import utcnow
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials, checked_credentials
from relaydesk.cursors import MAX_CURSOR
from relaydesk.dkim import domains
from relaydesk.dkim.dnscheck import check_domain, worst
from relaydesk.dkim.keyring import Keyring
from relaydesk.dkim.records import key_record
from relaydesk.dkim.resolver import RESOLVER_VARIABLE, Resolver, dns_resolver
from relaydesk.errors import ConfigurationError, DkimNotSetUpError, NotFoundError
from relaydesk.jobs import runner
from relaydesk.jobs.model import JobKind
from relaydesk.outbound import dead_letters, hold
from relaydesk.store.ports import Stores
from relaydesk.tickets import suspended
from relaydesk.tickets.delivery_log import DeliveryFilter, delivery_page
from relaydesk.tickets.model import DeliveryStatus
from relaydesk.users import invite, list_users

AUTH_ERRORS = (401, 403, 404)
AddressId = Annotated[str, Path(max_length=3 * 254, description="the support address, URL-encoded")]
JobId = Annotated[str, Path(max_length=40, pattern=r"^[0-9A-Z]{1,40}$", description="the job's id")]
TicketId = Annotated[str, Path(max_length=40, pattern=r"^[0-9A-Z]{1,40}$", description="the ticket's id")]
Domain = Annotated[str, Path(max_length=253, pattern=DOMAIN_PATTERN, description="your mail domain (acme.com)")]
AccountId = Annotated[str, Path(max_length=64, description="your account's id (the token's)")]
ADDRESSES, JOBS, DKIM, LOG, SETTINGS = "support addresses", "jobs", "DKIM", "delivery log", "settings"


def resolver_factory() -> Resolver:
    """The resolver of the DKIM DNS check (the one server RELAYDESK_DNS_RESOLVER names, as for the CLI: the local
    stack's DNS; else the system's); tests replace this function with an offline one."""
    return dns_resolver(nameserver=os.environ.get(RESOLVER_VARIABLE) or None)


def accepted(model: JobOut) -> Response:
    return Response(HTTPStatus.ACCEPTED, content_types.APPLICATION_JSON, model)


def register(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    """Every console route on the table, with the role it needs (and console-only where credentials are sent)."""
    _addresses(routes, caller, get_stores)
    console_limits.register(routes, caller, get_stores)  # an address's sending limits, in a module of its own
    _dkim(routes, caller, get_stores)
    _log(routes, caller, get_stores)
    _settings(routes, caller, get_stores)


def provider_out(guide: guides.ProviderGuide, support: str, target: str) -> ProviderOut:
    return ProviderOut(key=guide.key, label=guide.label, preset=guide.preset, host=guide.host, port=guide.port,
                       tls_mode=guide.tls_mode, auth_kinds=list(guide.auth_kinds), grants=list(guide.grants),
                       sign_in=guide.sign_in,
                       forwarding=guides.forwarding_steps(guide, support, target))


def _addresses(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    def target(stores: Stores) -> str:
        account = stores.directory.get_account(caller().account_id)
        return system_address(account.subdomain, stores.settings.mail_domain)

    @routes.get("/providers", role=Role.AGENT, tags=[ADDRESSES], summary="Provider presets and forwarding guides",
                responses=documented(200, ProviderList, "one entry per provider preset", *AUTH_ERRORS))
    def providers(account_id: AccountId) -> ProviderList:
        forward_to = target(get_stores())
        return ProviderList(providers=[provider_out(guide, "{support}", forward_to)
                                       for guide in guides.GUIDES.values()])

    @routes.get("/support_addresses/<id>/details", role=Role.AGENT, tags=[ADDRESSES],
                summary="An address with its held notifications, last error explained and forwarding guide",
                responses=documented(200, AddressDetails, "the address as the console shows it", *AUTH_ERRORS))
    def address_details(account_id: AccountId, id: AddressId) -> AddressDetails:
        stores = get_stores()
        address = lifecycle.get_address(stores, caller().account_id, unquote(id))
        explained = explain_last_error(address.last_error)
        forward_to = target(stores)
        connector = address.connector
        guide = guides.guide_for(connector.provider, connector.host, oauth=connector.auth_kind is AuthKind.OAUTH2) \
            if connector else None
        return AddressDetails(
            address=AddressOut.of(address),
            held_notifications=len(hold.held_notifications(stores, address.account_id, address.email)),
            explanation=Explanation(summary=explained.summary, fix=explained.fix or None) if explained else None,
            forwarding_target=forward_to,
            provider=provider_out(guide, address.email, forward_to) if guide else None)

    @routes.post("/connections", role=Role.ADMIN, console_only=True, tags=[ADDRESSES, JOBS],
                 summary="Connect an address to its smarthost: the credentials are stored, a job checks them live",
                 description="Console only. The rules are checked first; then the credentials go to the address's "
                             "own secret and a job runs the live check (DNS, TCP, greeting, STARTTLS, certificate, "
                             "AUTH, sender). When it passes, the address is created, pending until verified. Poll "
                             "the job. Credentials are never returned.",
                 responses=documented(202, JobOut, "the check has started", 400, *AUTH_ERRORS, 409))
    def connect(account_id: AccountId, body: NewConnection) -> JobOut:
        stores = get_stores()
        credentials = _credentials_of(body)
        email = connection.stage(stores, caller().account_id, body.email, credentials, peers=stores.peers)
        job = runner.start(stores, caller().account_id, JobKind.CONNECT, email, name=body.name,
                           planned_steps=planned_steps(credentials), provider=PROFILE_OF_PRESET.get(body.preset))
        return accepted(JobOut.of(job, utcnow()))  # type: ignore[return-value]

    @routes.get("/jobs/<job_id>", role=Role.AGENT, tags=[JOBS], summary="A job's steps and progress so far",
                responses=documented(200, JobOut, "the job", *AUTH_ERRORS))
    def show_job(account_id: AccountId, job_id: JobId) -> JobOut:
        job = runner.job_store(get_stores()).get(caller().account_id, job_id)
        if job is None:
            raise NotFoundError("no such job", action="Start the operation again.")
        return JobOut.of(job, utcnow())

    @routes.post("/support_addresses/<id>/verification", role=Role.ADMIN, tags=[ADDRESSES, JOBS],
                 summary="Verify forwarding, then outbound, in a job (waits for the test mails)",
                 responses=documented(202, JobOut, "the verification has started", *AUTH_ERRORS, 409))
    def verify(account_id: AccountId, id: AddressId) -> JobOut:
        stores = get_stores()
        address = lifecycle.get_address(stores, caller().account_id, unquote(id))
        job = runner.start(stores, caller().account_id, JobKind.VERIFY, address.email)
        return accepted(JobOut.of(job, utcnow()))  # type: ignore[return-value]

    @routes.post("/support_addresses/<id>/connector", role=Role.ADMIN, console_only=True, tags=[ADDRESSES, JOBS],
                 summary="New credentials, host, port or TLS mode: tested by a real sign-in before they are used",
                 description="Console only. Fields left out keep their value. New sign-in material is one of: "
                             "a password, an Entra ID app's client secret or certificate (PEM with its key), or a "
                             "Google service account's JSON key file. The new settings are staged as the secret's "
                             "pending version and a job runs the rotation (a real token request for OAuth 2.0, then "
                             "SMTP AUTH); the current ones stay live until the smarthost accepts the new ones. Held "
                             "notifications are released then.",
                 responses=documented(202, JobOut, "the rotation has started", 400, *AUTH_ERRORS, 409))
    def change_connector(account_id: AccountId, id: AddressId, body: ConnectorChange) -> JobOut:
        stores = get_stores()
        address = lifecycle.get_address(stores, caller().account_id, unquote(id))
        token = stage_change(stores, address.account_id, address.email, body.changes(),
                             sign_in=_new_sign_in(body, address.connector))
        job = runner.start(stores, address.account_id, JobKind.ROTATE, address.email, token=token)
        return accepted(JobOut.of(job, utcnow()))  # type: ignore[return-value]

    @routes.post("/support_addresses/<id>/disable", role=Role.ADMIN, tags=[ADDRESSES],
                 summary="Stop the connector: notifications fall back to Relaydesk's default outbound",
                 responses=documented(200, AddressOut, "the address, disabled", *AUTH_ERRORS, 409))
    def disable(account_id: AccountId, id: AddressId) -> AddressOut:
        return AddressOut.of(lifecycle.disable(get_stores(), caller().account_id, unquote(id)))

    @routes.post("/support_addresses/<id>/enable", role=Role.ADMIN, tags=[ADDRESSES],
                 summary="Turn the connector on again (pending until outbound is verified again)",
                 responses=documented(200, AddressOut, "the address, pending", *AUTH_ERRORS, 409))
    def enable(account_id: AccountId, id: AddressId) -> AddressOut:
        return AddressOut.of(lifecycle.enable(get_stores(), caller().account_id, unquote(id)))

    @routes.post("/support_addresses/<id>/held/release", role=Role.ADMIN, tags=[ADDRESSES],
                 summary="Send the notifications held for the address again (after a fix)",
                 responses=documented(200, Released, "how many were sent to the queue again", *AUTH_ERRORS, 409))
    def release(account_id: AccountId, id: AddressId) -> Released:
        stores = get_stores()
        address = lifecycle.get_address(stores, caller().account_id, unquote(id))
        return Released(email=address.email, released=state.release(stores, address.account_id, address.email))


def _credentials_of(body: NewConnection) -> SmtpCredentials:
    """The form as connector credentials: the preset's smarthost unless the form names one; for OAuth 2.0, an Entra ID
    app's client secret or certificate (Microsoft 365), or a Google service account's key file (Google Workspace)."""
    host, port, tls_mode = resolve_preset(body.preset, host=body.host, port=body.port, tls_mode=body.tls_mode)
    fields: dict[str, Any] = {"host": host, "port": port, "tls_mode": tls_mode, "auth_kind": body.auth_kind,
                              "username": body.username or body.email, "ca_bundle_pem": body.ca_bundle_pem}
    if body.auth_kind is not AuthKind.OAUTH2:
        fields["password"] = body.password.get_secret_value() if body.password else ""
        return checked_credentials(fields)
    if body.oauth_grant == "service_account":
        if body.preset not in ("google", "generic"):
            raise ConfigurationError("a Google service account signs in to Google Workspace only",
                                     action="Choose Google Workspace (service account) as the provider.")
        fields.update(sign_in.service_account_fields(_material(body.service_account_key, "service account key file")))
        return checked_credentials(fields)
    if body.preset not in ("microsoft365", "generic"):
        raise ConfigurationError("an Entra ID app signs in to Microsoft 365 only",
                                 action="For Google Workspace, choose the service account or an app password.")
    fields.update(oauth_tenant_id=body.oauth_tenant_id, oauth_client_id=body.oauth_client_id, password="")
    if body.oauth_grant == "client_certificate":
        fields.update(sign_in.certificate_fields(_material(body.oauth_certificate_pem, "certificate file")))
    else:
        secret = body.oauth_client_secret
        fields["oauth_client_secret"] = secret.get_secret_value() if secret else None
    return checked_credentials(fields)


def _new_sign_in(body: ConnectorChange, connector: Connector | None) -> dict[str, Any]:
    """The rotate form's new OAuth 2.0 sign-in material as credential fields, checked as the wizard checks it (the
    key file, the certificate with its key, the provider it signs in to); a change of grant clears the other one's
    fields. Empty when the form brings none (a password, a host change)."""
    given = [name for name in SIGN_IN_MATERIAL
             if getattr(body, name) is not None and getattr(body, name).get_secret_value().strip()]
    kind = body.auth_kind or (connector.auth_kind if connector else None)
    if body.password is not None and body.password.get_secret_value() and kind is AuthKind.OAUTH2:
        raise ConfigurationError("a password does not apply to an OAuth 2.0 sign-in",
                                 action="Give the app's new client secret or certificate, or the service account's "
                                        "new key file; to sign in with a password instead, choose password.")
    if not given or connector is None:
        return {}
    if len(given) > 1:
        raise ConfigurationError("give one new sign-in: a client secret, a certificate or a service account key",
                                 action="Send only the one the address signs in with.")
    provider = guides.guide_for(connector.provider, body.host or connector.host).preset
    if given == ["service_account_key"]:
        if provider == "microsoft365":
            raise ConfigurationError("a Google service account signs in to Google Workspace only",
                                     action="For Microsoft 365, give the Entra ID app's certificate or client secret.")
        return sign_in.service_account_fields(_material(body.service_account_key, "service account key file"))
    if provider == "google":
        raise ConfigurationError("an Entra ID app signs in to Microsoft 365 only",
                                 action="For Google Workspace, give the service account's new JSON key file.")
    fields: dict[str, Any] = {"auth_kind": AuthKind.OAUTH2}
    if connector.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:  # from Google to an Entra ID app: none of its ids
        fields.update(oauth_token_url=None, oauth_client_id=body.oauth_client_id)
    if given == ["oauth_certificate_pem"]:
        fields.update(sign_in.certificate_fields(_material(body.oauth_certificate_pem, "certificate file")))
    else:
        fields.update(sign_in.CLEARED_FOR_CLIENT_SECRET,
                      oauth_client_secret=_material(body.oauth_client_secret, "client secret"))
    return fields


def _material(value: SecretStr | None, what: str) -> str:
    if value is None or not value.get_secret_value().strip():
        raise ConfigurationError(f"the {what} is missing", action=f"Choose the {what} in the form, then check again.")
    return value.get_secret_value()


def _own_addresses_at(stores: Stores, account_id: str, domain: str) -> list:
    """The account's addresses at the domain; a domain where it has none is not found, like any other account's."""
    mine = domains.addresses_of(stores, domains.normalize(domain), account_id)
    if not mine:
        raise NotFoundError(f"you have no support address at {domains.normalize(domain)}",
                            action="DKIM is set up for the domains of your own addresses: connect one first.")
    return mine


def _dkim_out(stores: Stores, account_id: str, domain: str) -> DkimDomainOut:
    domain = domains.normalize(domain)
    mine = _own_addresses_at(stores, account_id, domain)
    try:
        keyring: Keyring | None = domains.load(stores, domain)
    except DkimNotSetUpError:
        keyring = None
    now = utcnow()
    own_keys = keyring is not None and any(a.dkim.domain == domain and a.dkim.selectors for a in mine)
    if keyring is None or not own_keys:  # keys the account never set up are not shown to it
        return DkimDomainOut(domain=domain, set_up=False, signing=False, addresses=[a.email for a in mine])
    return DkimDomainOut(
        domain=domain, set_up=True, signing=any(a.dkim.enabled for a in mine), addresses=[a.email for a in mine],
        generations=[DkimGenerationOut(state=keyring.state(g, now).value, selectors=g.selectors,
                                       created_at=g.created_at, signs_from=g.active_from, retires_at=g.retire_at)
                     for g in keyring.generations],
        records=[DnsRecordOut(name=r.name, type=r.type, value=r.value, strings=list(r.strings))
                 for r in (key_record(k, domain) for g, _ in keyring.published(now) for k in g.keys)])


def _dkim(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    @routes.get("/dkim/<domain>", role=Role.AGENT, tags=[DKIM], summary="A domain's DKIM keys and records",
                responses=documented(200, DkimDomainOut, "the domain's DKIM state (404: no address of yours there)",
                                     *AUTH_ERRORS))
    def show(account_id: AccountId, domain: Domain) -> DkimDomainOut:
        return _dkim_out(get_stores(), caller().account_id, domain)

    @routes.post("/dkim/<domain>", role=Role.ADMIN, tags=[DKIM],
                 summary="Create the domain's keys (or take the existing ones): the records to publish",
                 responses=documented(200, DkimDomainOut, "the domain's keys and records", *AUTH_ERRORS, 409))
    def set_up(account_id: AccountId, domain: Domain) -> DkimDomainOut:
        stores = get_stores()
        _own_addresses_at(stores, caller().account_id, domain)
        domains.ensure_keys(stores, caller().account_id, domain)
        return _dkim_out(stores, caller().account_id, domain)

    @routes.put("/dkim/<domain>", role=Role.ADMIN, tags=[DKIM],
                summary="Sign the domain's notifications, or stop (turning on checks the records are published)",
                responses=documented(200, DkimDomainOut, "the domain's DKIM state", *AUTH_ERRORS, 409))
    def change(account_id: AccountId, domain: Domain, body: DkimChange) -> DkimDomainOut:
        stores = get_stores()
        _own_addresses_at(stores, caller().account_id, domain)
        domains.require_own_domain(stores, caller().account_id, domain)
        resolver = None if body.skip_dns_check or not body.signing else resolver_factory()
        domains.set_signing(stores, domain, body.signing, resolver=resolver, account_id=caller().account_id)
        return _dkim_out(stores, caller().account_id, domain)

    @routes.get("/dkim/<domain>/check", role=Role.AGENT, tags=[DKIM],
                 summary="Check the domain's DNS: SPF, the DKIM records against the keys, DMARC",
                 responses=documented(200, DnsCheckOut, "each finding with its fix", *AUTH_ERRORS))
    def check(account_id: AccountId, domain: Domain) -> DnsCheckOut:
        stores = get_stores()
        domain = domains.normalize(domain)
        shown = _dkim_out(stores, caller().account_id, domain)
        keyring = domains.load(stores, domain) if shown.set_up else None
        mine = _own_addresses_at(stores, caller().account_id, domain)
        findings = check_domain(domain, resolver=resolver_factory(), keyring=keyring, now=utcnow(),
                                smarthosts=[a.connector.host for a in mine if a.connector is not None])
        return DnsCheckOut(domain=domain, result=worst(findings).value,
                           findings=[FindingOut(**finding.to_dict()) for finding in findings])


def _log(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    @routes.get("/deliveries", role=Role.AGENT, tags=[LOG],
                summary="Every notification of the account's tickets with each attempt's server reply",
                description="A page at a time: the notifications of the account's most recently updated tickets, "
                            "newest attempt first within the page; `next_cursor` gets older ones. One request reads "
                            "at most a bounded number of tickets, so a page may hold fewer rows than match.",
                responses=documented(200, DeliveryLog, "newest first", 400, *AUTH_ERRORS))
    def deliveries(account_id: AccountId,
                   status: Annotated[DeliveryStatus | None, Query(description="only this status")] = None,
                   recipient: Annotated[str | None, Query(max_length=254, description="part of a recipient")] = None,
                   address: Annotated[str | None, Query(max_length=254, description="the support address")] = None,
                   ticket_id: Annotated[str | None, Query(max_length=40, description="one ticket")] = None,
                   cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description="from the last page")] = None,
                   ) -> DeliveryLog:
        wanted = DeliveryFilter(status=status, recipient=recipient, address=address, ticket_id=ticket_id)
        page = delivery_page(get_stores(), caller().account_id, wanted, cursor=cursor)
        more = page.next_cursor
        return DeliveryLog(next_cursor=more, truncated=more is not None, deliveries=[DeliveryOut(
            ticket_id=row.ticket_id, subject=row.subject, support_address=row.support_address,
            notification_id=row.notification_id, recipients=row.recipients, status=row.status, at=row.at,
            attempts=[AttemptOut(status=a.status, route=a.route, smtp_code=a.smtp_code,
                                 enhanced_status=a.enhanced_status, reply=a.reply, at=a.at) for a in row.attempts])
            for row in page.rows])

    @routes.get("/held_notifications", role=Role.AGENT, tags=[LOG],
                summary="Notifications waiting behind an address's hold (bad credentials)",
                description="A page at a time, oldest first across the account's addresses; `next_cursor` gets the "
                            "next page. The cursor holds a position only, never an account.",
                responses=documented(200, HeldList, "oldest first", 400, *AUTH_ERRORS))
    def held(account_id: AccountId,
             limit: Annotated[int, Query(ge=1, le=hold.HELD_PAGE_LIMIT, description="notifications per page")] = 50,
             cursor: Annotated[str | None, Query(max_length=MAX_CURSOR, description="from the last page")] = None,
             ) -> HeldList:
        page, next_cursor = hold.held_page(get_stores(), caller().account_id, limit=limit, cursor=cursor)
        return HeldList(next_cursor=next_cursor, held=[
            HeldOut(notification_id=n.notification_id, ticket_id=n.ticket_id, support_address=n.support_address,
                    recipients=[*n.recipients, *n.cc], subject=n.subject, created_at=n.created_at) for n in page])

    @routes.get("/dead_letters", role=Role.AGENT, tags=[LOG],
                summary="The account's notifications that ran out of delivery attempts",
                responses=documented(200, DeadLetterList, "what waits in the dead-letter queue", *AUTH_ERRORS))
    def list_dead_letters(account_id: AccountId) -> DeadLetterList:
        views = dead_letters.letters(get_stores(), caller().account_id)
        return DeadLetterList(dead_letters=[DeadLetterOut(
            notification_id=view.notification_id or "", ticket_id=view.ticket_id,
            support_address=view.support_address, recipients=view.recipients, receives=view.receives,
            last_error=view.last_error) for view in views])

    @routes.post("/dead_letters/redrive", role=Role.ADMIN, tags=[LOG],
                 summary="Send dead letters back to the notifications queue",
                 responses=documented(200, Redriven, "what was sent again, and what was not found", *AUTH_ERRORS))
    def redrive(account_id: AccountId, body: Redrive) -> Redriven:
        wanted = None if body.all else set(body.notification_ids)
        done = dead_letters.redrive(get_stores(), wanted, account_id=caller().account_id)
        return Redriven(redriven=done.moved, not_found=done.not_found)

    @routes.get("/suspended_tickets", role=Role.AGENT, tags=[LOG], summary="Suspended tickets, newest first",
                responses=documented(200, SuspendedList, "with the reason for each", *AUTH_ERRORS))
    def list_suspended(account_id: AccountId) -> SuspendedList:
        return SuspendedList(tickets=[_suspended_out(t) for t in
                                      suspended.suspended_tickets(get_stores(), caller().account_id)])

    @routes.post("/suspended_tickets/<ticket_id>/recover", role=Role.ADMIN, tags=[LOG],
                 summary="Make a suspended ticket a normal new ticket",
                 responses=documented(200, SuspendedOut, "the recovered ticket", *AUTH_ERRORS, 409))
    def recover(account_id: AccountId, ticket_id: TicketId) -> SuspendedOut:
        return _suspended_out(suspended.recover(get_stores(), caller().account_id, ticket_id))

    @routes.delete("/suspended_tickets/<ticket_id>", role=Role.ADMIN, tags=[LOG],
                   summary="Delete a suspended ticket (its raw mail stays in storage)",
                   responses=documented(200, DeletedTicket, "the ticket was deleted", *AUTH_ERRORS, 409))
    def delete_suspended(account_id: AccountId, ticket_id: TicketId) -> DeletedTicket:
        ticket = suspended.delete(get_stores(), caller().account_id, ticket_id)
        return DeletedTicket(ticket_id=ticket.ticket_id)


def _suspended_out(ticket) -> SuspendedOut:
    return SuspendedOut(ticket_id=ticket.ticket_id, subject=ticket.subject, requester=ticket.requester,
                        support_address=ticket.support_address, status=ticket.status,
                        reason=ticket.suspension_reason, explanation=ticket.suspension_explanation,
                        created_at=ticket.created_at)


def _settings(routes: RouteTable, caller: Callable[[], Caller], get_stores: Callable[[], Stores]) -> None:
    @routes.put("/settings", role=Role.ADMIN, tags=[SETTINGS],
                summary="Include attachments in email; CCs and followers (required by the connector)",
                responses=documented(200, AccountOut, "the account with its settings", *AUTH_ERRORS, 409))
    def change_settings(account_id: AccountId, body: SettingsChange) -> AccountOut:
        stores = get_stores()
        account = lifecycle.update_account_settings(
            stores, caller().account_id, ccs_and_followers_enabled=body.ccs_and_followers_enabled,
            include_attachments_in_email=body.include_attachments_in_email)
        return AccountOut.of(account, stores.settings.mail_domain)

    @routes.get("/users", role=Role.ADMIN, tags=[SETTINGS], summary="The account's users and their roles",
                responses=documented(200, UserList, "admins and agents", *AUTH_ERRORS))
    def users(account_id: AccountId) -> UserList:
        return UserList(users=[UserOut(**user.model_dump()) for user in
                               list_users(get_stores(), caller().account_id)])

    @routes.post("/users", role=Role.ADMIN, status_code=HTTPStatus.CREATED, tags=[SETTINGS],
                 summary="Invite a user by email (the user pool sends a temporary password)",
                 responses=documented(201, UserOut, "the invited user", *AUTH_ERRORS, 409))
    def invite_user(account_id: AccountId, body: NewUser) -> UserOut:
        user = invite(get_stores(), caller().account_id, body.email, body.role)
        return Response(HTTPStatus.CREATED, content_types.APPLICATION_JSON,  # type: ignore[return-value]
                        UserOut(**user.model_dump()))
