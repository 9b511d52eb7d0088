"""Decides and sends the hold alerts of one address, or of every address: the first alert when a hold starts, a
reminder every `hold_reminder_hours` while it lasts, and a notice when it ends.

It reads the address's state (it never writes it), so it does not matter which code put the address on hold or
released it: the directory table's change stream calls `sync_address` for a changed address at once, and a
schedule calls `remind` (open alerts) and `sweep` (every address, to catch what a lost stream record missed).

Every alert goes through Relaydesk's own outbound (`stores.mailer`, SES), never through a connector: the held
connector is the one thing that cannot carry it. Each send is claimed first with a compare-and-set on the ledger, so
two runs never send the same alert; a claim whose run died is taken over after `CLAIM_STALE`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.policy import SMTP

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.alerts import mail
from relaydesk.alerts.model import AlertKind, AlertState, HoldAlert
from relaydesk.clock import utcnow
from relaydesk.errors import ConfigurationError, NotFoundError
from relaydesk.outbound.hold import is_held
from relaydesk.outbound.ses import mailer_of
from relaydesk.store.ports import HoldAlertLedger
from relaydesk.wiring import Stores

CLAIM_STALE = timedelta(minutes=10)  # far longer than one send; a claim this old belongs to a run that died
SENDER_LOCAL_PART = "alerts"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sent:
    kind: AlertKind
    email: str
    recipients: tuple[str, ...]
    message_id: str = ""


@dataclass
class Report:
    """What one run did: the alerts sent, and how many addresses it found on hold (a gauge for the dashboard)."""

    sent: list[Sent] = field(default_factory=list)
    held: int = 0


def ledger_of(stores: Stores) -> HoldAlertLedger:
    if stores.hold_alerts is None:
        raise ConfigurationError("no hold-alert ledger is configured (Stores.hold_alerts)")
    return stores.hold_alerts


def due(address: SupportAddress | None, record: HoldAlert | None, now: datetime, every: timedelta) -> AlertKind | None:
    """Which alert this address needs now, if any."""
    claimed = record is not None and record.state is AlertState.SENDING and now - record.claimed_at < CLAIM_STALE
    if is_held(address):
        assert address is not None and address.connector is not None
        if record is None or record.held_since != address.connector.held_since:
            return None if claimed else AlertKind.HOLD  # a new hold (or one never announced)
        if claimed:
            return None
        if record.state is AlertState.SENDING:
            return record.kind  # a run died between its claim and the sent mark: send what it was sending
        if record.notified_at is None or now - record.notified_at >= every:
            return AlertKind.REMINDER
        return None
    if record is None or claimed:
        return None
    return AlertKind.RELEASE


def sync_address(stores: Stores, email: str, *, now: datetime | None = None) -> Sent | None:
    """Send the alert this address needs now (at most one), recording it; None when nothing was due."""
    now = now or utcnow()
    ledger = ledger_of(stores)
    address = stores.directory.get_address(email)
    record = ledger.get(email)
    kind = due(address, record, now, timedelta(hours=stores.settings.hold_reminder_hours))
    if kind is None:
        return None
    account_id = address.account_id if address is not None else record.account_id  # type: ignore[union-attr]
    held_since = address.connector.held_since if kind is not AlertKind.RELEASE and address and address.connector \
        else (record.held_since if record else None)
    same_hold = record is not None and record.held_since == held_since
    claim = HoldAlert(email=email.lower(), account_id=account_id, held_since=held_since, kind=kind,
                      state=AlertState.SENDING, claimed_at=now,
                      notified_at=record.notified_at if same_hold and record else None,
                      reminders=record.reminders if same_hold and record else 0,
                      recipients=record.recipients if record else [])
    expected = record.version if record is not None else None
    if not ledger.put_if(claim, expected):
        return None  # another run claimed it first
    claimed_version = (expected or 0) + 1
    try:
        sent = _send(stores, kind, claim, address, now)
    except Exception:
        # Hand the claim back so the next run tries again at once instead of after CLAIM_STALE.
        if record is not None:
            ledger.put_if(record, claimed_version)
        else:
            ledger.delete_if(email, claimed_version)
        raise
    if kind is AlertKind.RELEASE:
        ledger.delete_if(email, claimed_version)
    else:
        ledger.put_if(claim.model_copy(update={
            "state": AlertState.SENT, "notified_at": now, "recipients": list(sent.recipients),
            "reminders": claim.reminders + (kind is AlertKind.REMINDER)}), claimed_version)
    return sent


def _send(stores: Stores, kind: AlertKind, claim: HoldAlert, address: SupportAddress | None, now: datetime) -> Sent:
    account = _account(stores, claim.account_id)
    recipients = _recipients(stores, account, claim, kind)
    if not recipients:
        log.warning("hold alert %s for %s not sent: account %s has no admin contacts (relaydesk accounts admins)",
                    kind.value, claim.email, claim.account_id)
        return Sent(kind, claim.email, ())
    reason, fix = mail.reason_and_fix(address.last_error if address else None)
    parked = len(stores.held.list(claim.email)) if stores.held is not None and kind is not AlertKind.RELEASE else 0
    facts = mail.HoldFacts(kind=kind, email=claim.email, account_id=claim.account_id,
                           account_name=account.display_name if account else "", held_since=claim.held_since,
                           reason=reason, fix=fix, parked=parked, reminders=claim.reminders,
                           deleted=address is None)
    sender = f"{SENDER_LOCAL_PART}@{stores.settings.outbound_default_domain}"
    message = mail.compose(facts, sender=sender, recipients=list(recipients),
                           console_url=stores.settings.console_url, now=now)
    message_id = mailer_of(stores).send_raw(sender, list(recipients), message.as_bytes(policy=SMTP))
    log.info("hold alert %s for %s sent to %d admin contact(s)", kind.value, claim.email, len(recipients))
    return Sent(kind, claim.email, tuple(recipients), message_id)


def _account(stores: Stores, account_id: str) -> Account | None:
    try:
        return stores.directory.get_account(account_id)
    except NotFoundError:
        return None


def _recipients(stores: Stores, account: Account | None, claim: HoldAlert, kind: AlertKind) -> list[str]:
    """The account's admin contacts now; a release goes to those who heard of the hold too. Suppressed ones (a hard
    bounce, a complaint) are left out."""
    contacts = list(account.admin_emails) if account else []
    if kind is AlertKind.RELEASE:
        contacts = list(dict.fromkeys([*claim.recipients, *contacts]))
        if not claim.recipients:
            return []  # nobody heard of the hold: nobody needs to hear it is over
    if stores.suppressions is not None and contacts:
        suppressed = stores.suppressions.suppressed(claim.account_id, contacts)
        contacts = [c for c in contacts if c.lower() not in suppressed]
    return contacts


def remind(stores: Stores, *, now: datetime | None = None) -> Report:
    """Every open alert: reminders that are due, and releases the change stream did not bring."""
    report = Report()
    for record in ledger_of(stores).list():
        _sync_into(report, stores, record.email, now)
    return report


def sweep(stores: Stores, *, now: datetime | None = None) -> Report:
    """Every address of every account, and every open alert: nothing the change stream missed stays unannounced."""
    report = Report()
    emails = {a.email for account in stores.directory.list_accounts()
              for a in stores.directory.list_addresses(account.account_id) if is_held(a)}
    emails |= {record.email for record in ledger_of(stores).list()}
    for email in sorted(emails):
        _sync_into(report, stores, email, now)
    return report


def _sync_into(report: Report, stores: Stores, email: str, now: datetime | None) -> None:
    try:
        sent = sync_address(stores, email, now=now)
    except Exception:  # one address's failure must not stop the others; the next run tries it again
        log.exception("hold alert for %s failed; it is tried again on the next run", email)
        sent = None
    if sent is not None:
        report.sent.append(sent)
    if is_held(stores.directory.get_address(email)):
        report.held += 1
