"""Forwarding and outbound verification of a support address: send a token, wait for it to come back.

Forwarding: a test mail with a token goes to the support address through the DEFAULT outbound; the customer's
server-level forward brings it back to the inbound function. Outbound: a `Notification(kind=verification)` goes
through the connector (the relay sends it, even while the connector is `pending`) to the support address itself;
its return through the forward proves both directions, and only then is the connector `active`. Inbound calls
`on_verification_mail` when a mail carrying `X-Relaydesk-Verification` arrives.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from enum import StrEnum

from relaydesk.accounts import subdomain_of_system_address, system_address
from relaydesk.addresses.lifecycle import ensure_can_own, get_address, release_held_notifications, take_ownership
from relaydesk.addresses.model import AddressKind, ConnectorState, SupportAddress, Verification, VerificationStatus
from relaydesk.clock import utcnow
from relaydesk.errors import RelaydeskError, RuleViolation
from relaydesk.ids import new_id
from relaydesk.markers import VERIFICATION_HEADER, verification_marker
from relaydesk.notification import Notification, NotificationKind
from relaydesk.wiring import Stores

MAX_FORWARDING_HOPS = 1  # one server-level forward; chains of forwards make the requester ambiguous
DEFAULT_TIMEOUT_SECONDS = 300.0
POLL_SECONDS = 2.0
PROGRESS_EVERY_SECONDS = 10.0  # a progress line while waiting, not one per poll
VERIFICATION_LOCAL_PART = "verification"
RELAY_REFUSED = "verification mail was refused"  # what the relay writes to last_error on a permanent refusal

ForwardingSender = Callable[[EmailMessage], None]  # sends a composed mail through the default outbound
ProgressListener = Callable[[str], None]


class Direction(StrEnum):
    FORWARDING = "forwarding"
    OUTBOUND = "outbound"


def new_token() -> str:
    """Unguessable, and inside the markers' alphabet ([0-9A-Z])."""
    return secrets.token_hex(16).upper()


def _verification(address: SupportAddress, direction: Direction) -> Verification:
    return address.forwarding if direction is Direction.FORWARDING else address.outbound


def _save(stores: Stores, address: SupportAddress) -> SupportAddress:
    address.updated_at = utcnow()
    stores.directory.put_address(address)
    return address


def _pending(token: str) -> Verification:
    return Verification(status=VerificationStatus.PENDING, token=token, started_at=utcnow())


# --- starting -----------------------------------------------------------------------------------------------------

def forwarding_test_mail(stores: Stores, address: SupportAddress, token: str) -> EmailMessage:
    domain = stores.settings.outbound_default_domain
    message = EmailMessage()
    # From Relaydesk's own sending domain: the default outbound may only send from its verified identity.
    message["From"] = f"Relaydesk verification <{VERIFICATION_LOCAL_PART}@{domain}>"
    message["To"] = address.email
    message["Subject"] = f"Relaydesk forwarding verification for {address.email}"
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailer"] = "Relaydesk Mailer"
    message["X-Relaydesk-From-Account-Id"] = address.account_id
    message[VERIFICATION_HEADER] = token
    message.set_content(
        f"This mail checks that {address.email} forwards to Relaydesk at the server level.\n"
        "If you can read it in the mailbox, the forward is missing or set in a mail client instead of the server.\n\n"
        f"{verification_marker(token)}\n")
    return message


def default_forwarding_sender(stores: Stores) -> ForwardingSender:
    """The default outbound (SES SendRawEmail) through the relay's adapter; imported late, the relay owns it."""
    from relaydesk.outbound.ses import mailer_of, send_verification_mail

    mailer_of(stores)  # ConfigurationError now, before the address is marked pending

    def send(message: EmailMessage) -> None:
        send_verification_mail(stores, message)

    return send


def start_forwarding(stores: Stores, account_id: str, email: str, *,
                     sender: ForwardingSender | None = None) -> SupportAddress:
    """Send the forwarding test mail and mark forwarding `pending`; safe to run again (a new token each time)."""
    address = get_address(stores, account_id, email)
    if address.kind is AddressKind.SYSTEM:
        return address  # Relaydesk's own address receives directly
    ensure_can_own(stores, address)  # no test mail for an address another account has verified
    send = sender or default_forwarding_sender(stores)
    token = new_token()
    address.forwarding = _pending(token)
    address = _save(stores, address)
    try:
        send(forwarding_test_mail(stores, address, token))
    except (OSError, RelaydeskError) as error:
        return _fail(stores, address, Direction.FORWARDING, f"the test mail could not be sent: {error}")
    return address


def start_outbound(stores: Stores, account_id: str, email: str) -> SupportAddress:
    """Queue the verification notification the relay sends through the connector to the address itself."""
    address = get_address(stores, account_id, email)
    if address.kind is AddressKind.SYSTEM:
        return address
    if address.forwarding.status is not VerificationStatus.VERIFIED:
        raise RuleViolation(f"verify forwarding of {address.email} first: the outbound test returns through it",
                            rule="forwarding_not_verified", action=f"Run `relaydesk addresses verify {address.email}`.")
    if address.connector is not None and address.connector.state is ConnectorState.DISABLED:
        raise RuleViolation(f"the connector of {address.email} is disabled", rule="connector_disabled",
                            action=f"Run `relaydesk addresses enable {address.email}` first.")
    token = new_token()
    address.outbound = _pending(token)
    address.last_error = None  # a fresh attempt: what the relay notes from now on is about this mail
    address = _save(stores, address)
    notification = Notification(
        notification_id=new_id("N"), kind=NotificationKind.VERIFICATION, account_id=address.account_id,
        support_address=address.email, recipients=[address.email],
        subject=f"Relaydesk outbound verification for {address.email}",
        text_body=(f"This mail was sent by Relaydesk through your own mail server to check {address.email}.\n"
                   f"{verification_marker(token)}\n"),
        verification_token=token)
    stores.queue.send(notification)
    return address


# --- the mail comes back ------------------------------------------------------------------------------------------

def _find_by_token(stores: Stores, token: str, recipient: str) -> SupportAddress | None:
    candidates: list[SupportAddress] = []
    for claim in stores.directory.list_claims(recipient.strip().lower()) if recipient else []:
        candidates.append(claim)
        candidates.extend(stores.directory.list_addresses(claim.account_id))
    subdomain = subdomain_of_system_address(recipient or "", stores.settings.mail_domain)
    account = stores.directory.find_account_by_subdomain(subdomain) if subdomain else None
    if account is not None:
        candidates.extend(stores.directory.list_addresses(account.account_id))
    return next((a for a in candidates if token in (a.forwarding.token, a.outbound.token)), None)


def on_verification_mail(stores: Stores, *, token: str, recipient: str, forwarding_hops: int | None = None,
                         received_at: datetime | None = None) -> bool:
    """Inbound's hook: True when the token belongs to an address (the mail is consumed, no ticket), else False.

    `recipient` may be the support address or the account's system address the forward delivered to.
    """
    address = _find_by_token(stores, (token or "").strip().upper(), recipient)
    if address is None:
        return False
    direction = Direction.FORWARDING if address.forwarding.token == token.strip().upper() else Direction.OUTBOUND
    check = _verification(address, direction)
    if check.status is VerificationStatus.VERIFIED:
        return True  # a duplicate delivery of a mail already counted
    if forwarding_hops is not None and forwarding_hops > MAX_FORWARDING_HOPS:
        _fail(stores, address, direction,
              f"the test mail came back through {forwarding_hops} forwarding hops; Relaydesk supports exactly one "
              "server-level forward from the support address")
        return True
    if direction is Direction.FORWARDING:
        try:
            take_ownership(stores, address)
        except RuleViolation as error:
            _fail(stores, address, direction, error.message)
            return True
    check.status = VerificationStatus.VERIFIED
    check.verified_at = received_at or utcnow()
    check.error = None
    if direction is Direction.OUTBOUND and address.connector is not None:
        address.connector.state = ConnectorState.ACTIVE
        address.connector.held_since = None
        address.last_error = None
    _save(stores, address)
    if direction is Direction.OUTBOUND:
        release_held_notifications(stores, address.account_id, address.email)
    return True


# --- waiting ------------------------------------------------------------------------------------------------------

def timeout_hint(stores: Stores, address: SupportAddress, direction: Direction, seconds: float) -> str:
    account = stores.directory.get_account(address.account_id)
    target = system_address(account.subdomain, stores.settings.mail_domain)
    if direction is Direction.FORWARDING:
        return (f"no test mail came back within {seconds:.0f} s. Check that {address.email} forwards to {target} "
                "at the server level (a mail flow rule or the mailbox's forwarding on the server, not a rule in "
                "Outlook or another mail client); that there is only one forwarding hop; and that spam filtering "
                "or greylisting does not hold Relaydesk's verification mail.")
    reason = f" The last error: {address.last_error}." if address.last_error else ""
    return (f"the verification mail sent through {address.connector.host if address.connector else 'the default'} "
            f"outbound did not come back within {seconds:.0f} s.{reason} Check the mailbox's right to send as "
            f"{address.email}, that the server does not greylist or quarantine it, and that the forward to {target} "
            "still works.")


def _fail(stores: Stores, address: SupportAddress, direction: Direction, error: str) -> SupportAddress:
    check = _verification(address, direction)
    check.status = VerificationStatus.FAILED
    check.error = error
    address.last_error = f"{direction.value} verification failed: {error}"
    return _save(stores, address)


def wait_for(stores: Stores, account_id: str, email: str, direction: Direction, *,
             timeout: float = DEFAULT_TIMEOUT_SECONDS,
             poll: float = POLL_SECONDS, on_progress: ProgressListener | None = None,
             sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
             ) -> SupportAddress:
    """Poll until the verification is no longer pending; on timeout mark it failed with hints."""
    deadline = clock() + timeout
    started = clock()
    next_report = 0.0
    while True:
        address = get_address(stores, account_id, email)
        check = _verification(address, direction)
        if check.status is not VerificationStatus.PENDING:
            return address
        if direction is Direction.OUTBOUND and address.connector is not None and \
                address.connector.state is ConnectorState.AUTH_FAILED:
            return _fail(stores, address, direction, f"the smarthost refused the credentials: {address.last_error}")
        if direction is Direction.OUTBOUND and RELAY_REFUSED in (address.last_error or ""):
            # The relay noted a permanent refusal of the verification mail: no point waiting for it.
            return _fail(stores, address, direction, address.last_error or "")
        if clock() >= deadline:
            return _fail(stores, address, direction, timeout_hint(stores, address, direction, timeout))
        waited = clock() - started
        if on_progress is not None and waited >= next_report:
            on_progress(f"waiting for the {direction.value} test mail to come back ({waited:.0f} s of {timeout:.0f} s)")
            next_report = waited + PROGRESS_EVERY_SECONDS
        sleep(min(poll, max(0.0, deadline - clock())))


def verify(stores: Stores, account_id: str, email: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS,
           sender: ForwardingSender | None = None, on_progress: ProgressListener | None = None,
           poll: float = POLL_SECONDS, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic) -> SupportAddress:
    """Verify forwarding, then outbound, each only when not verified yet. Run it again after fixing a failure."""
    address = get_address(stores, account_id, email)
    if address.forwarding.status is not VerificationStatus.VERIFIED:
        if on_progress:
            on_progress(f"forwarding: sending a test mail to {address.email}")
        address = start_forwarding(stores, account_id, address.email, sender=sender)
        if address.forwarding.status is VerificationStatus.PENDING:
            address = wait_for(stores, account_id, address.email, Direction.FORWARDING, timeout=timeout, poll=poll,
                               on_progress=on_progress, sleep=sleep, clock=clock)
        if address.forwarding.status is not VerificationStatus.VERIFIED:
            return address
        if on_progress:
            on_progress("forwarding: verified")
    if address.outbound.status is not VerificationStatus.VERIFIED:
        if on_progress:
            route = f"the connector ({address.connector.host})" if address.connector else "the default outbound"
            on_progress(f"outbound: sending a verification mail through {route}")
        address = start_outbound(stores, account_id, address.email)
        address = wait_for(stores, account_id, address.email, Direction.OUTBOUND, timeout=timeout, poll=poll,
                           on_progress=on_progress, sleep=sleep, clock=clock)
        if on_progress and address.outbound.status is VerificationStatus.VERIFIED:
            on_progress("outbound: verified")
    return address


def is_verified(address: SupportAddress) -> bool:
    return (address.forwarding.status is VerificationStatus.VERIFIED
            and address.outbound.status is VerificationStatus.VERIFIED)
