"""Where a domain's keyring lives: one Secrets Manager secret per domain, `relaydesk/dkim/<domain>`."""

from __future__ import annotations

from relaydesk.dkim.keyring import Keyring
from relaydesk.errors import ConflictError, DkimNotSetUpError, NotFoundError
from relaydesk.store.ports import CURRENT, SecretStore

SECRET_PREFIX = "relaydesk/dkim/"  # Settings.dkim_secret_prefix, which template.yaml sets to the same


def secret_name(domain: str, prefix: str = SECRET_PREFIX) -> str:
    return f"{prefix}{domain.strip().lower()}"


def load_keyring(secrets: SecretStore, secret_id: str) -> tuple[Keyring, str]:
    """The keyring and the secret version it came from."""
    try:
        version = secrets.get(secret_id, CURRENT)
    except NotFoundError as error:
        raise DkimNotSetUpError("no DKIM keys for this domain") from error
    return Keyring.from_secret(version.value), version.version_id


def create_keyring(secrets: SecretStore, keyring: Keyring, prefix: str = SECRET_PREFIX) -> str:
    """Stores a new domain's keyring; returns the secret's ARN. ConflictError when the domain has keys already."""
    try:
        return secrets.create(secret_name(keyring.domain, prefix), keyring.to_secret(),
                              tags={"relaydesk:kind": "dkim", "relaydesk:domain": keyring.domain})
    except ConflictError as error:
        raise ConflictError(f"{keyring.domain} has DKIM keys already",
                            action="Show them with `relaydesk dkim show DOMAIN`, or `relaydesk dkim rotate DOMAIN` "
                                   "for new ones.") from error


def save_keyring(secrets: SecretStore, secret_id: str, keyring: Keyring) -> str:
    """A new current version of the domain's secret (the previous one stays as AWSPREVIOUS)."""
    return secrets.put_version(secret_id, keyring.to_secret(), [CURRENT])
