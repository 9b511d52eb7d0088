"""Connector credentials from the secret store, cached in the warm container for a bounded age.

The cache keys on (secret id, version stage), so asking for AWSPENDING never returns a cached AWSCURRENT value
(powertools' own secret cache keys on name and transform only). After an authentication failure the relay asks
again with `fresh=True`, which reads the store and refreshes the entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from pydantic import ValidationError

from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import ConfigurationError, NotFoundError
from relaydesk.store.ports import CURRENT, PENDING, SecretStore


class VersionedCredentials(NamedTuple):
    secret_id: str
    version_id: str
    stage: str
    credentials: SmtpCredentials


def parse_secret(value: str) -> SmtpCredentials:
    """The secret's JSON as credentials; a bad secret names the fields at fault, never their values."""
    try:
        return SmtpCredentials.model_validate_json(value)
    except ValidationError as error:
        # A field's location, or the model check's own message (it names fields, never values).
        fields = sorted({".".join(str(p) for p in e["loc"]) or e["msg"].removeprefix("Value error, ")
                         for e in error.errors()})
        raise ConfigurationError(
            f"the connector secret is not valid: check {', '.join(fields)}",
            action="Store the credentials again with `relaydesk addresses rotate`.") from None


class CredentialCache:
    def __init__(self, secrets: SecretStore, max_age_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._secrets = secrets
        self._max_age = max_age_seconds
        self._clock = clock
        self._entries: dict[tuple[str, str], tuple[float, VersionedCredentials]] = {}
        self._lock = threading.Lock()

    def get(self, secret_id: str, stage: str = CURRENT, *, fresh: bool = False) -> VersionedCredentials:
        """The credentials under `stage`; `fresh` bypasses the cache. NotFoundError when no version has the stage."""
        key = (secret_id, stage)
        now = self._clock()
        if not fresh:
            with self._lock:
                cached = self._entries.get(key)
            if cached is not None and now - cached[0] < self._max_age:
                return cached[1]
        version = self._secrets.get(secret_id, stage)
        entry = VersionedCredentials(secret_id, version.version_id, stage, parse_secret(version.value))
        with self._lock:
            self._entries[key] = (now, entry)
        return entry

    def alternatives(self, secret_id: str, tried: set[str]) -> list[VersionedCredentials]:
        """After a 535: the current version read again past the cache, then a staged AWSPENDING version, each only
        when it is a version not tried yet (a rotation may be half-way)."""
        found: list[VersionedCredentials] = []
        for stage in (CURRENT, PENDING):
            try:
                candidate = self.get(secret_id, stage, fresh=True)
            except NotFoundError:
                continue
            if candidate.version_id not in tried and candidate.version_id not in {c.version_id for c in found}:
                found.append(candidate)
        return found

    def forget(self, secret_id: str) -> None:
        with self._lock:
            for key in [k for k in self._entries if k[0] == secret_id]:
                del self._entries[key]
