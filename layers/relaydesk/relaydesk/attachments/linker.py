"""The one place notifications get their attachment links (connector and SES routes alike).

With RELAYDESK_ATTACHMENTS_BASE_URL set, a link is the attachments function's URL with a signed token that lasts
RELAYDESK_ATTACHMENT_LINK_DAYS. Unset (unit tests, a local stack without that function): S3's pre-signed URL,
which in Lambda dies with the role's session token after hours, not days.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from relaydesk.attachments.keys import SigningKeys
from relaydesk.attachments.links import sign_link
from relaydesk.clock import utcnow
from relaydesk.notification import AttachmentRef
from relaydesk.store.ports import Stores

_keys: list[SigningKeys] = []  # one per container (and per Stores, as tests make): the bounded key cache


def signing_keys(stores: Stores) -> SigningKeys:
    settings = stores.settings
    if not _keys or _keys[0].secrets is not stores.secrets or _keys[0].secret_id != settings.link_signing_secret_id:
        _keys[:] = [SigningKeys(stores.secrets, settings.link_signing_secret_id,
                                max_age=settings.credentials_cache_seconds)]
    return _keys[0]


def link_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}/{token}"


def link_builder(stores: Stores, account_id: str) -> Callable[[AttachmentRef], str]:
    """`link(ref) -> URL` for the attachments of one notification of `account_id`."""
    settings = stores.settings
    if not settings.attachments_base_url:
        blobs = stores.blobs
        return lambda ref: blobs.url_for(ref.s3_key)
    keys = signing_keys(stores)
    expires_at = utcnow() + timedelta(days=settings.attachment_link_days)

    def link(ref: AttachmentRef) -> str:
        return link_url(settings.attachments_base_url, sign_link(ref.s3_key, account_id, expires_at, keys.current()))

    return link
