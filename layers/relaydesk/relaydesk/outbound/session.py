"""One connection to one smarthost with one credential (aiosmtpd's split: a session owns a connection's state, a
delivery owns a message's): open or not, which secret version it logged in with, whether it came warm from the
pool, whether it may go back to the pool. Opening is rotation-aware: AWSCURRENT as the store says now, a pooled
connection only when no rotation is under way, and after a refused login the secret read again, then a staged
AWSPENDING version. Deciding what a refusal means for the address (a hold) is the group's (`connector.py`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from relaydesk.addresses.model import Connector, ConnectorState
from relaydesk.credentials import AuthKind
from relaydesk.errors import AuthenticationFailedError, OAuthTokenRefusedError, TransientDeliveryError
from relaydesk.outbound import pool
from relaydesk.outbound.credentials import CredentialCache, VersionedCredentials
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts
from relaydesk.store.ports import CURRENT, PENDING, PoolKey, SecretStore, SessionPool


@dataclass(frozen=True)
class SessionKit:
    """What a connection needs to open, handed in by the batch relay: the credentials cache, the warm pool, the
    client to open (unit tests hand in a fake smarthost), its timeouts, the secrets store (stages only, no values)
    and the name it greets with."""

    credentials: CredentialCache
    pool: SessionPool
    submission: Callable[..., SmtpSubmission]
    timeouts: Timeouts
    secrets: SecretStore
    local_hostname: str


class SmarthostSession:
    """One connection of a smarthost group, opened lazily and reopened at most once per batch when lost."""

    def __init__(self, kit: SessionKit, secret_id: str, version: VersionedCredentials | None = None) -> None:
        self.kit = kit
        self.secret_id = secret_id
        self.client: SmtpSubmission | None = None
        self.version = version  # the secret version it logged in with (a lane starts with its lead's)
        self.from_pool = False  # it came from the pool and has not carried a transaction yet
        self.reusable = True  # false once its state is doubtful or its credentials were refused
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        return self.client is not None and self.client.connected

    @property
    def route(self) -> str:
        assert self.client is not None
        return self.client.route

    def first_use(self) -> bool:
        """True once, for the first transaction on a connection that came from the pool."""
        reused, self.from_pool = self.from_pool, False
        return reused

    def ensure_open(self, connector: Connector, *, pooled_ok: bool = True) -> None:
        """An open, authenticated connection (typed errors when there is none)."""
        if self.connected:
            return
        if self.client is not None:  # lost since the last message: one reconnect per connection and batch
            if self.reconnects >= 1:
                raise TransientDeliveryError("the connection was lost again; the rest waits for the next attempt")
            self.reconnects += 1
        if self.version is not None:  # it logged in during this batch: the reconnect uses it again
            self._open(self.version)
            return
        credentials = self.kit.credentials
        if connector.state is ConnectorState.AUTH_FAILED:
            # Never the refused version again unless nothing else exists (the admin's verify, after a fix on the
            # server): a new current version, or a staged one, first.
            fresh = credentials.alternatives(self.secret_id, {connector.held_version or ""})
            self._open(fresh[0] if fresh else credentials.get(self.secret_id, CURRENT, fresh=True))
            return
        version, rotating = self._current_version()
        if pooled_ok and not rotating and self.take_warm(version):
            return
        self._open(version)

    def take_warm(self, version: VersionedCredentials) -> bool:
        """A pooled connection that logged in with `version`, if one is there."""
        warm = self.kit.pool.take(self.key(version))
        if warm is None:
            return False
        self.client, self.version, self.from_pool = warm, version, True  # type: ignore[assignment]
        return True

    def open_as_is(self) -> None:
        """Open with `version` and nothing else (a further connection of a group whose lead logged in)."""
        assert self.version is not None
        client = self._client(self.version)
        pool.run(client.open())
        self.client = client

    def give_back(self) -> None:
        """The connection to the pool for the next invocation, or closed when it must not be reused."""
        client, self.client = self.client, None
        if client is not None and self.version is not None and self.reusable:
            self.kit.pool.give(self.key(self.version), client)
        elif client is not None:
            pool.run(client.close())

    def drop(self) -> None:
        """Let go of a connection the server closed (no wait for its QUIT)."""
        client, self.client = self.client, None
        if client is not None:
            pool.discard(client)

    def forget_pooled(self) -> None:
        """The secret's login was refused: no pooled connection of it is reused."""
        self.kit.pool.forget(self.secret_id)

    def key(self, version: VersionedCredentials) -> PoolKey:
        creds = version.credentials
        return PoolKey(self.secret_id, creds.host, creds.port, creds.username, version.version_id)

    def _client(self, version: VersionedCredentials) -> SmtpSubmission:
        return self.kit.submission(version.credentials, version_id=version.version_id, timeouts=self.kit.timeouts,
                                   local_hostname=self.kit.local_hostname)

    def _current_version(self) -> tuple[VersionedCredentials, bool]:
        """AWSCURRENT as the store says now, checked before any connection is reused or authenticates (one
        DescribeSecret, no secret value): a cached version that is no longer current is read again, and nothing
        that logged in with it is reused. `rotating`: another version is staged AWSPENDING (a rotation under way),
        so a pooled connection is not reused either."""
        stages = self.kit.secrets.describe_stages(self.secret_id)
        credentials = self.kit.credentials
        version = credentials.get(self.secret_id, CURRENT)
        if CURRENT not in stages.get(version.version_id, []):
            self.kit.pool.forget(self.secret_id)
            credentials.forget(self.secret_id)
            version = credentials.get(self.secret_id, CURRENT, fresh=True)
        rotating = any(PENDING in staged for other, staged in stages.items() if other != version.version_id)
        return version, rotating

    def _open(self, version: VersionedCredentials) -> None:
        tried: set[str] = set()
        fresh = False  # after a refusal every try (oauth2) asks for a new access token, not the cached one
        while True:
            tried.add(version.version_id)
            client = self._client(version)
            oauth = version.credentials.auth_kind is AuthKind.OAUTH2
            try:
                pool.run(client.open(fresh_token=True) if oauth and fresh else client.open())
            except AuthenticationFailedError as error:
                self.forget_pooled()
                if oauth and not fresh and not isinstance(error, OAuthTokenRefusedError):
                    # The smarthost refused an access token the cache still thought good (revoked, or expired
                    # early): the same credentials once more with a new token.
                    fresh = True
                    continue
                fresh = True
                # Rotation-aware: the secret read again past the cache, then a staged AWSPENDING version.
                alternatives = self.kit.credentials.alternatives(self.secret_id, tried)
                if not alternatives:
                    raise _refused_version(error, version.version_id) from error
                version = alternatives[0]
                continue
            self.client, self.version = client, version
            return


def _refused_version(error: AuthenticationFailedError, version_id: str) -> AuthenticationFailedError:
    """The refusal of the last version tried, naming that version (the hold's `held_version`)."""
    if isinstance(error, OAuthTokenRefusedError):
        return OAuthTokenRefusedError(error.token_error, message=error.message, action=error.action,
                                      version_id=version_id)
    return type(error)(error.message, version_id=version_id, smtp_code=error.smtp_code,
                       enhanced_status=error.enhanced_status, server_reply=error.server_reply, action=error.action)
