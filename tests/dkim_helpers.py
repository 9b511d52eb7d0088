"""Test helpers for DKIM: keyrings made once per worker, an offline DNS for dkimpy, a notification."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from functools import lru_cache

import dkim
from relaydesk.dkim.keyring import Keyring, new_keyring
from relaydesk.dkim.records import key_record

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=8)
def _keyring(domain: str) -> Keyring:
    return new_keyring(domain, EPOCH)  # RSA key generation takes ~0.1 s: once per domain per worker


def keyring_for(domain: str = "acme.test") -> Keyring:
    """A fresh copy of the domain's keyring (first generation active since EPOCH); callers may change it."""
    return _keyring(domain).model_copy(deep=True)


def offline_dns(*keyrings: Keyring, at: datetime = EPOCH, extra: dict[str, str] | None = None):
    """dkimpy's `dnsfunc`: the TXT records of every published key of these keyrings, as the customer published them."""
    records = {f"{r.name}.": r.value for kr in keyrings for g, _ in kr.published(at) for r in
               (key_record(k, kr.domain) for k in g.keys)}
    records.update(extra or {})

    def dnsfunc(name, timeout=5):
        name = name.decode() if isinstance(name, bytes) else name
        value = records.get(name)
        return value.encode() if value is not None else None

    return dnsfunc


def verify_all(message: bytes, dnsfunc) -> list[bool]:
    """dkimpy's verdict on every DKIM-Signature of the message, top first."""
    count = sum(1 for name, _ in dkim.DKIM(message).headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(count):
        try:
            results.append(bool(dkim.DKIM(message).verify(idx=index, dnsfunc=dnsfunc)))
        except dkim.DKIMException:
            results.append(False)
    return results


def notification(domain: str = "acme.test", *, body: str = "Hello Bob,\n\nYour ticket was updated.\n",
                 **extra_headers: str) -> bytes:
    """A notification shaped as compose makes it (contract headers, threading, CRLF), as bytes."""
    message = EmailMessage(policy=SMTP)
    message["From"] = f"Acme Support <support@{domain}>"
    message["To"] = "Bob Example <bob@example.net>"
    message["Subject"] = "[RD#1042] Your printer is on fire"
    message["Date"] = format_datetime(EPOCH)
    message["Message-ID"] = f"<n-1@{domain}>"
    message["In-Reply-To"] = "<original@example.net>"
    message["References"] = "<original@example.net>"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Auto-Response-Suppress"] = "All"
    message["X-Mailer"] = "Relaydesk Mailer"
    message["X-Relaydesk-From-Account-Id"] = "acc_1"
    message["X-Relaydesk-Email-Id"] = "n-1"
    for name, value in extra_headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message.as_bytes()
