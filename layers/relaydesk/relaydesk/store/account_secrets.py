"""Secrets Manager as one account (attribute-based access control): the tenant API touches connector secrets through
a role session tagged `relaydesk:account-id=<the caller's account>`, and the role's policy allows only secrets that
carry the same tag, so IAM itself refuses another account's secret whatever the code asks for."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from relaydesk.store.secrets import SecretsManagerStore

ACCOUNT_TAG = "relaydesk:account-id"  # the tag on every connector secret (lifecycle.TAG_ACCOUNT) and on the session
SESSION_SECONDS = 900  # STS's shortest session; a new one is taken a minute before it ends
RENEW_BEFORE_SECONDS = 60
MAX_CACHED_ACCOUNTS = 256  # one warm container rarely serves more; the oldest session is dropped first


class AccountSessions:
    """One tagged role session per account, cached until shortly before it expires, as a client of `service`.
    `renew_before`: seconds of validity a handed-out client keeps at least (what is signed with it must stay valid
    that long: an upload form, for one)."""

    def __init__(self, sts: Any, role_arn: str, make_client: Callable[..., Any], *,
                 clock: Callable[[], float] = time.time, service: str = "secretsmanager",
                 renew_before: int = RENEW_BEFORE_SECONDS) -> None:
        assert renew_before < SESSION_SECONDS
        self._sts = sts
        self._role_arn = role_arn
        self._make_client = make_client  # boto3 Session.client: (service, **credentials) -> client
        self._clock = clock
        self._service = service
        self._renew_before = renew_before
        self._lock = threading.Lock()
        self._clients: OrderedDict[str, tuple[Any, float]] = OrderedDict()

    def secretsmanager(self, account_id: str) -> Any:
        return self.client(account_id)

    def client(self, account_id: str) -> Any:
        with self._lock:
            cached = self._clients.get(account_id)
            if cached and cached[1] - self._renew_before > self._clock():
                self._clients.move_to_end(account_id)
                return cached[0]
        credentials = self._sts.assume_role(
            RoleArn=self._role_arn, RoleSessionName=f"tenant-{account_id}"[:64], DurationSeconds=SESSION_SECONDS,
            Tags=[{"Key": ACCOUNT_TAG, "Value": account_id}])["Credentials"]
        client = self._make_client(self._service, aws_access_key_id=credentials["AccessKeyId"],
                                   aws_secret_access_key=credentials["SecretAccessKey"],
                                   aws_session_token=credentials["SessionToken"])
        expires = credentials["Expiration"]
        expires_at = expires.timestamp() if hasattr(expires, "timestamp") else self._clock() + SESSION_SECONDS
        with self._lock:
            self._clients[account_id] = (client, expires_at)
            self._clients.move_to_end(account_id)
            while len(self._clients) > MAX_CACHED_ACCOUNTS:
                self._clients.popitem(last=False)
        return client


class AccountSecrets:
    """A `SecretStore` acting as one account; the role session is taken at the first call, not before (most tenant
    requests never touch a secret)."""

    def __init__(self, sessions: AccountSessions, account_id: str, kms_key_id: str | None = None) -> None:
        self._sessions = sessions
        self._account_id = account_id
        self._kms_key_id = kms_key_id

    def __getattr__(self, name: str) -> Any:
        store = SecretsManagerStore(self._sessions.secretsmanager(self._account_id), self._kms_key_id)
        return getattr(store, name)
