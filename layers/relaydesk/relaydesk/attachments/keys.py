"""The link signing key, read from Secrets Manager once per container and kept for a bounded age."""

from __future__ import annotations

import time
from collections.abc import Callable

from relaydesk.errors import ConfigurationError, NotFoundError
from relaydesk.store.ports import SecretStore

DEFAULT_MAX_AGE_SECONDS = 300  # a rotated secret (the revocation of every link) takes effect within this


class SigningKeys:
    """`current()` is the HMAC key; read again after `max_age` seconds so a rotation reaches warm containers."""

    def __init__(self, secrets: SecretStore, secret_id: str, max_age: float = DEFAULT_MAX_AGE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.secrets = secrets
        self.secret_id = secret_id
        self.max_age = max_age
        self._clock = clock
        self._value: bytes | None = None
        self._read_at = 0.0

    def current(self) -> bytes:
        now = self._clock()
        if self._value is None or now - self._read_at >= self.max_age:
            self._value = self._read()
            self._read_at = now
        return self._value

    def _read(self) -> bytes:
        if not self.secret_id:
            raise ConfigurationError("RELAYDESK_LINK_SIGNING_SECRET_ID is not set",
                                     action="Deploy template.yaml's LinkSigningSecret; pass its ARN to the function.")
        try:
            return self.secrets.get(self.secret_id).value.encode("utf-8")
        except NotFoundError:
            # The secret's name is not secret, but the message names only what to do, as the adapter's does.
            raise ConfigurationError("the link signing secret cannot be read",
                                     action="Check LinkSigningSecret exists and the function may read it.") from None
