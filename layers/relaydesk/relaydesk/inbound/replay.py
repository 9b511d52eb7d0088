"""Replays inbound mail that failed after Lambda's retries: from the inbound DLQ (Lambda's on-failure records), or
straight from the raw mail in S3, through the same domain entry as the function."""

from __future__ import annotations

import json
from dataclasses import dataclass

from relaydesk.errors import NotFoundError
from relaydesk.inbound.outcome import InboundResult
from relaydesk.inbound.parse import parse
from relaydesk.inbound.receipt import SesReceipt, raw_mail_key
from relaydesk.inbound.service import VerificationHook, process_inbound, process_receipt
from relaydesk.store.inbound_ports import DeadLetters, InboundPorts
from relaydesk.store.ports import Stores

MAX_BATCHES = 100  # one --all run drains at most 1,000 dead letters; run it again for more


@dataclass
class Replayed:
    ses_message_id: str
    result: InboundResult | None = None
    error: str | None = None


def ses_record_of(body: str) -> dict | None:
    """The SES record inside a dead letter: Lambda's on-failure record wraps the event in `requestPayload`."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    event = document.get("requestPayload", document)
    records = event.get("Records") if isinstance(event, dict) else None
    if not records or not isinstance(records[0], dict) or "ses" not in records[0]:
        return None
    return records[0]


def _message_id(record: dict) -> str:
    return str(record.get("ses", {}).get("mail", {}).get("messageId", ""))


def replay_dead_letters(stores: Stores, ports: InboundPorts, dead_letters: DeadLetters, *,
                        ses_message_id: str | None = None,
                        on_verification: VerificationHook | None = None) -> list[Replayed]:
    """Processes dead letters (all, or the one for `ses_message_id`); each is deleted only once it succeeded."""
    done: list[Replayed] = []
    seen: set[str] = set()
    skipped: list[str] = []
    try:
        _drain(stores, ports, dead_letters, ses_message_id, on_verification, done, seen, skipped)
    finally:
        for handle in skipped:  # the others are for another replay: visible again now, not after the timeout
            dead_letters.release(handle)
    return done


def _drain(stores: Stores, ports: InboundPorts, dead_letters: DeadLetters, ses_message_id: str | None,
           on_verification: VerificationHook | None, done: list[Replayed], seen: set[str],
           skipped: list[str]) -> None:
    for _ in range(MAX_BATCHES):
        batch = dead_letters.receive(10)
        fresh = [(h, b) for h, b in batch if h not in seen]
        if not fresh:
            break
        for handle, body in fresh:
            seen.add(handle)
            record = ses_record_of(body)
            if record is None:
                done.append(Replayed("", error="not an SES event; left in the queue"))
                skipped.append(handle)
                continue
            message_id = _message_id(record)
            if ses_message_id and message_id != ses_message_id:
                skipped.append(handle)
                continue
            try:
                result = process_inbound(stores, record, ports=ports, on_verification=on_verification)
            except Exception as error:  # noqa: BLE001  # reported per message; the dead letter stays for the next replay
                done.append(Replayed(message_id, error=f"{type(error).__name__}: {error}"))
                skipped.append(handle)
                continue
            dead_letters.delete(handle)
            done.append(Replayed(message_id, result=result))
            if ses_message_id:
                return


def replay_from_s3(stores: Stores, ports: InboundPorts, ses_message_id: str, *,
                   on_verification: VerificationHook | None = None) -> InboundResult:
    """Without the SES event: the recipient and the verdicts come from the headers SES put on the stored mail."""
    key = raw_mail_key(ses_message_id)
    if not stores.blobs.exists(key):
        raise NotFoundError(f"no raw mail at s3 key {key}",
                            action="Check the SES message id (the object name under inbound/ in the raw mail bucket).")
    headers = parse(stores.blobs.chunks(key)).headers
    receipt = SesReceipt.from_stored_mail(ses_message_id, headers, stores.settings.mail_domain)
    return process_receipt(stores, receipt, ports=ports, on_verification=on_verification)
