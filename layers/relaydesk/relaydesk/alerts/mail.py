"""The hold alerts an account's admins get, as plain-text mail from Relaydesk's own outbound (never a connector):
what is held, since when, the server's reason, the fix, and where to act (the console's address page, the CLI)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import quote

from relaydesk.alerts.model import AlertKind

REASON_LIMIT = 1000  # the smarthost's reply is the server's words; bounded before it goes into a mail
ALERT_HEADER = "X-Relaydesk-Alert"
_HELD_SENTENCE = "Notifications are held until the credentials change."
DEFAULT_FIX = ("Check the mailbox's password (or its OAuth app) on your mail server, then give Relaydesk the working "
               "credentials")


@dataclass(frozen=True)
class HoldFacts:
    """Everything an alert says; built from the address, the account and the ledger by `alerts.holds`."""

    kind: AlertKind
    email: str
    account_id: str
    account_name: str
    held_since: datetime | None
    reason: str = ""
    fix: str = ""
    parked: int = 0
    reminders: int = 0  # reminders sent before this one
    deleted: bool = False  # a release because the address itself was deleted


def reason_and_fix(last_error: str | None) -> tuple[str, str]:
    """The server's reason and the fix, out of the address's last error ("auth_failed: <reason>. Notifications are
    held ... What to do: <fix>"); a generic fix when the error does not say."""
    text = " ".join((last_error or "").split()).removeprefix("auth_failed:").strip()
    reason, _, fix = text.partition(" What to do: ")
    reason = reason.replace(_HELD_SENTENCE, "").strip()
    return _bounded(reason) or "the mail server refused Relaydesk's sign-in", _bounded(fix) or DEFAULT_FIX


def _bounded(text: str) -> str:
    return text if len(text) <= REASON_LIMIT else text[: REASON_LIMIT - 1] + "…"


def subject_of(facts: HoldFacts) -> str:
    if facts.kind is AlertKind.HOLD:
        return f"Action needed: notifications from {facts.email} are on hold"
    if facts.kind is AlertKind.REMINDER:
        return f"Reminder: notifications from {facts.email} are still on hold"
    if facts.deleted:
        return f"Resolved: {facts.email} was deleted, its hold is over"
    return f"Resolved: notifications from {facts.email} are sending again"


def console_link(console_url: str, email: str) -> str:
    # The console routes by the URL's fragment (a static site: every page is index.html).
    return f"{console_url.rstrip('/')}/#/addresses/{quote(email, safe='@')}" if console_url else ""


def body_of(facts: HoldFacts, console_url: str, now: datetime) -> str:
    since = f"{facts.held_since:%Y-%m-%d %H:%M} UTC" if facts.held_since else "recently"
    link = console_link(console_url, facts.email)
    where = (f"Open the address in the Relaydesk console: {link}\nor from a terminal: "
             if link else "From a terminal: ")
    if facts.kind is AlertKind.RELEASE:
        what = ("The address was deleted; nothing more is held for it." if facts.deleted else
                "The credentials were changed and accepted: the notifications that waited are being sent now, "
                "through your mail server as before.")
        return (f"Notifications from {facts.email} were on hold from {since} until "
                f"{now:%Y-%m-%d %H:%M} UTC.\n\n{what}\n\n{_signature(facts)}")
    days = ""
    if facts.kind is AlertKind.REMINDER and facts.held_since:
        days = f" ({max(1, (now - facts.held_since).days)} day(s) now)"
    waiting = f"{facts.parked} notification(s) are waiting" if facts.parked else "New notifications will wait"
    return (
        f"Notifications from {facts.email} are on hold since {since}{days}: your mail server refused Relaydesk's "
        f"sign-in, so Relaydesk stopped sending through it.\n\n"
        f"Why: {facts.reason}\n\n"
        f"What to do: {facts.fix}\n\n"
        f"Nothing is lost. {waiting} and will go out through your mail server as soon as the credentials change.\n"
        f"{where}relaydesk addresses show {facts.email}\n"
        f"New password: relaydesk addresses rotate {facts.email} --password-stdin\n\n"
        "Relaydesk reminds you once a day while the hold lasts and writes again when it is released. This mail "
        "came from Relaydesk's own mail service, not through your server.\n\n"
        f"{_signature(facts)}")


def _signature(facts: HoldFacts) -> str:
    name = f"{facts.account_name} ({facts.account_id})" if facts.account_name else facts.account_id
    return f"-- \nRelaydesk, account {name}\nYou get this as an admin contact of the account " \
           f"(relaydesk accounts admins {facts.account_id})."


def compose(facts: HoldFacts, *, sender: str, recipients: list[str], console_url: str, now: datetime,
            ) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Relaydesk <{sender}>"
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject_of(facts)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Relaydesk-From-Account-Id"] = facts.account_id
    message[ALERT_HEADER] = facts.kind.value
    message.set_content(body_of(facts, console_url, now))
    return message
