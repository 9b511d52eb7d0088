"""Upload forms signed as one account (attribute-based access control): the presigned POST the tenant API hands a
browser is signed with a role session tagged `relaydesk:account-id=<the caller's account>`, whose only grant is
PutObject under `attachments/<that account>/uploads/`. IAM itself then refuses an upload anywhere else, whatever the
code asked for, and the session token a form must carry (every presigned request made with a role does) belongs to a
session that may do nothing more."""

from __future__ import annotations

from typing import Any

from relaydesk.store.account_secrets import AccountSessions
from relaydesk.store.s3 import S3Blobs

UPLOAD_FORM_SECONDS = 300  # the longest form handed out (tickets.uploads.POST_SECONDS)


class AccountUploads:
    """A `BlobStore` for one account's requests: upload forms signed by the account's session, every other call by the
    function's own store (reading what a comment names is checked by key in the domain)."""

    def __init__(self, blobs: Any, sessions: AccountSessions, account_id: str, bucket: str) -> None:
        self._blobs = blobs
        self._sessions = sessions  # of the uploads role, renewed UPLOAD_FORM_SECONDS before its end
        self._account_id = account_id
        self._bucket = bucket

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict:
        signer = S3Blobs(self._sessions.client(self._account_id), self._bucket)
        return signer.presigned_post(key, content_type, max_bytes, expires_in)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._blobs, name)
