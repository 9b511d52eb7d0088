"""What SES tells us about one received message: its id (the S3 key), the envelope recipients and the verdicts."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from relaydesk.clock import utcnow

RAW_MAIL_PREFIX = "inbound/"  # template.yaml's receipt rule S3Action ObjectKeyPrefix
_SES_ID = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
_RECEIVED_FOR = re.compile(r"\bfor\s+<?([^\s<>;]+@[^\s<>;]+)>?", re.IGNORECASE)


def raw_mail_key(ses_message_id: str) -> str:
    if not _SES_ID.match(ses_message_id or ""):
        raise ValueError("not an SES message id")
    return RAW_MAIL_PREFIX + ses_message_id


class SesReceipt(BaseModel):
    message_id: str
    recipients: list[str] = Field(default_factory=list)
    received_at: datetime = Field(default_factory=utcnow)
    source: str = ""
    spam: str = "PASS"
    virus: str = "PASS"
    dmarc: str = "PASS"
    dmarc_policy: str | None = None  # none | quarantine | reject (SES: receipt.dmarcPolicy)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SesReceipt:
        """From one `Records[]` item of the SES Lambda action event (or its `ses` member)."""
        ses = record.get("ses", record)
        mail = ses.get("mail", {}) or {}
        receipt = ses.get("receipt", {}) or {}

        def verdict(name: str) -> str:
            return str((receipt.get(name) or {}).get("status", "PASS")).upper()

        recipients = receipt.get("recipients") or mail.get("destination") or []
        return cls(message_id=mail["messageId"], recipients=[str(r).lower() for r in recipients],
                   received_at=receipt.get("timestamp") or mail.get("timestamp") or utcnow(),
                   source=str(mail.get("source") or ""), spam=verdict("spamVerdict"),
                   virus=verdict("virusVerdict"), dmarc=verdict("dmarcVerdict"),
                   dmarc_policy=(str(receipt["dmarcPolicy"]).lower() if receipt.get("dmarcPolicy") else None))

    @classmethod
    def from_stored_mail(cls, message_id: str, headers: list[tuple[str, str]], mail_domain: str,
                         received_at: datetime | None = None) -> SesReceipt:
        """For a replay from the S3 object alone: SES wrote its verdicts and the recipient into the stored headers."""
        found = {name.lower(): value for name, value in reversed(headers)}
        recipients: list[str] = []
        for name, value in headers:
            if name.lower() == "received":
                match = _RECEIVED_FOR.search(value)
                if match and match.group(1).lower().endswith("." + mail_domain.lower()):
                    recipients.append(match.group(1).lower())
        auth = found.get("authentication-results", "").lower()
        dmarc = "FAIL" if "dmarc=fail" in auth else "PASS"
        policy = re.search(r"dmarc=fail[^;]*\bp=(\w+)", auth)
        return cls(message_id=message_id, recipients=recipients, received_at=received_at or utcnow(),
                   spam=found.get("x-ses-spam-verdict", "PASS").strip().upper(),
                   virus=found.get("x-ses-virus-verdict", "PASS").strip().upper(), dmarc=dmarc,
                   dmarc_policy=policy.group(1) if policy else ("reject" if dmarc == "FAIL" else None))

    @property
    def raw_key(self) -> str:
        return raw_mail_key(self.message_id)
