"""Attachments of an inbound mail, stored in S3 under the ticket, one at a time (their metadata goes on the comment)."""

from __future__ import annotations

import re

from relaydesk.attachments.links import account_prefix
from relaydesk.inbound.parse import Attachment
from relaydesk.notification import AttachmentRef
from relaydesk.store.ports import BlobStore

PREFIX = "attachments/"  # attachments.links.PREFIX: what the attachments function may read
MAX_FILENAME = 120


def safe_filename(name: str) -> str:
    cleaned = re.sub(r"[^\w.\-]+", "_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip("._") or "attachment"
    return cleaned[-MAX_FILENAME:]


def attachment_key(account_id: str, ticket_id: str, comment_id: str, index: int, filename: str) -> str:
    """Under the account's own prefix: the relay attaches only objects under its notification's account's."""
    return f"{account_prefix(account_id)}{ticket_id}/{comment_id}/{index:02d}-{safe_filename(filename)}"


def store_attachments(blobs: BlobStore, attachments: list[Attachment], account_id: str, ticket_id: str,
                      comment_id: str) -> list[AttachmentRef]:
    """Keys are derived from the decision's ids, so a retry overwrites the same objects instead of adding more."""
    refs: list[AttachmentRef] = []
    for index, attachment in enumerate(attachments, start=1):
        key = attachment_key(account_id, ticket_id, comment_id, index, attachment.filename)
        data = attachment.payload()
        size = len(data)
        blobs.put(key, data, attachment.content_type)
        del data  # one decoded attachment in memory at a time
        refs.append(AttachmentRef(filename=attachment.filename[:255], content_type=attachment.content_type,
                                  size=size, s3_key=key, inline=attachment.inline,
                                  content_id=attachment.content_id))
    return refs
