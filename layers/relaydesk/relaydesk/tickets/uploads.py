"""Attachments of an agent's reply or note: uploaded by the browser (or the CLI) straight to S3 through a
short-lived presigned POST whose policy S3 enforces (exact key, declared type, size), under the account's own
prefix; checked again when a comment names them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from relaydesk.errors import NotFoundError, RuleViolation
from relaydesk.ids import new_id
from relaydesk.inbound.attachments import safe_filename
from relaydesk.notification import AttachmentRef
from relaydesk.store.ports import Stores

POST_SECONDS = 300  # the form is used at once; a leaked one is useless five minutes later
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024  # one file; mail bigger than the smarthost takes goes out with links
MAX_ATTACHMENTS = 10  # per comment
MAX_TOTAL_BYTES = 40 * 1024 * 1024
# What a help desk exchanges; not HTML, SVG or scripts (an attachment link opens in a browser).
ALLOWED_TYPES = frozenset({
    "application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "image/heic", "text/plain", "text/csv",
    "application/zip", "application/json", "application/xml", "message/rfc822", "application/octet-stream",
    "application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet"})
_UPLOAD_KEY = re.compile(r"^attachments/(?P<account>[^/]+)/uploads/U[0-9A-Z]{18}/(?P<name>[\w.\-]{1,120})$")


@dataclass(frozen=True)
class UploadForm:
    """What the uploader POSTs to `url`: every field of `fields`, then the file as the field `file`."""

    key: str
    url: str
    fields: dict[str, str]
    expires_in: int
    max_bytes: int


def uploads_prefix(account_id: str) -> str:
    return f"attachments/{account_id}/uploads/"


def upload_form(stores: Stores, account_id: str, filename: str, content_type: str, size: int) -> UploadForm:
    kind = (content_type or "").strip().lower()
    if kind not in ALLOWED_TYPES:
        raise RuleViolation(f"files of type {kind[:80]!r} cannot be attached", rule="attachment_type",
                            action="Attach PDFs, images, text, office documents or a ZIP archive.")
    if not 0 < size <= MAX_ATTACHMENT_BYTES:
        raise RuleViolation(f"an attachment is 1 byte to {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB",
                            rule="attachment_size", action="Share a bigger file by a link in the reply instead.")
    key = f"{uploads_prefix(account_id)}{new_id('U')}/{safe_filename(filename or 'attachment')}"
    post = stores.blobs.presigned_post(key, kind, size, POST_SECONDS)  # no more than the size declared
    return UploadForm(key=key, url=post["url"], fields=dict(post["fields"]), expires_in=POST_SECONDS,
                      max_bytes=size)


def uploaded(stores: Stores, account_id: str, keys: list[str]) -> list[AttachmentRef]:
    """The uploads a comment names, each checked: this account's, really uploaded, within type and size."""
    if len(keys) > MAX_ATTACHMENTS:
        raise RuleViolation(f"at most {MAX_ATTACHMENTS} attachments per comment", rule="attachment_count")
    refs: list[AttachmentRef] = []
    for key in dict.fromkeys(keys):
        match = _UPLOAD_KEY.match(key or "")
        if match is None or match["account"] != account_id:
            raise NotFoundError("no such upload in this account", action="Upload the file again, then send.")
        try:
            size, kind = stores.blobs.describe(key)
        except NotFoundError:
            raise NotFoundError(f"the upload {match['name']} has not arrived (or expired)",
                                action="Upload the file again, then send.") from None
        if kind.lower() not in ALLOWED_TYPES or size > MAX_ATTACHMENT_BYTES:
            raise RuleViolation(f"the upload {match['name']} breaks the attachment limits", rule="attachment_type")
        refs.append(AttachmentRef(filename=match["name"], content_type=kind.lower(), size=size, s3_key=key))
    if sum(r.size for r in refs) > MAX_TOTAL_BYTES:
        raise RuleViolation(f"at most {MAX_TOTAL_BYTES // (1024 * 1024)} MB of attachments per comment",
                            rule="attachment_size")
    return refs
