"""Recipients over the mailbox's per-message limit go in several messages: the first keeps the notification's id,
each other part gets an id derived from it and its number, so a retried split makes the same parts (and the
idempotency guard sends each once)."""

from __future__ import annotations

import hashlib
import re

from relaydesk.notification import Notification

NOTIFICATION_ID = re.compile(r"N[0-9A-Z]{18}")  # ids.new_id("N"), as markers.notification_id_from_message_id reads
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def part_id(notification_id: str, part: int) -> str:
    """The id of part `part` (2, 3, ...): the parent's time prefix, then 8 characters of a hash, so it keeps the
    shape of an id (sortable, valid in a Message-ID, found again in a reply's In-Reply-To)."""
    digest = int.from_bytes(hashlib.sha256(f"{notification_id}/{part}".encode()).digest()[:8], "big")
    tail = "".join(_ALPHABET[(digest >> (5 * i)) & 31] for i in range(8))
    head = notification_id[:11] if NOTIFICATION_ID.fullmatch(notification_id) else \
        "N" + "".join(_ALPHABET[(digest >> (5 * (8 + i))) & 31] for i in range(10))
    return head + tail


def recipient_count(notification: Notification) -> int:
    return len(notification.recipients) + len(notification.cc)


def split(notification: Notification, limit: int) -> list[Notification]:
    """The notification in parts of at most `limit` recipients (To first, then Cc, each part keeping who was To
    and who was Cc); one part when it fits. A part without a To sends to its Cc addresses as To."""
    everyone = [("to", r) for r in notification.recipients] + [("cc", c) for c in notification.cc]
    if len(everyone) <= limit:
        return [notification]
    parts = []
    for number, start in enumerate(range(0, len(everyone), limit), start=1):
        chunk = everyone[start:start + limit]
        to = [address for kind, address in chunk if kind == "to"]
        cc = [address for kind, address in chunk if kind == "cc"]
        if not to:
            to, cc = cc, []
        parts.append(notification.model_copy(update={
            "notification_id": notification.notification_id if number == 1 else part_id(notification.notification_id,
                                                                                        number),
            "recipients": to, "cc": cc}))
    return parts
