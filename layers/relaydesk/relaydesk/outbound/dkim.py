"""DKIM signing with the customer's domain, for the relay: `signer_for(address, secrets)` right before submission.

The domain's keyring (one secret per domain) is read once and its keys parsed once per container, then reused for
KEYRING_CACHE_SECONDS; which generation signs is decided by the clock at every message, so a rotation takes effect
at its `active_from` even from a cached keyring. The keyring, key and signer modules (with cryptography) are imported
by the first address that signs: a relay whose addresses do not sign never imports them (bench/bench_coldstart.py).
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Protocol

from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import DkimNotSetUpError
from relaydesk.store.ports import SecretStore

if TYPE_CHECKING:
    from relaydesk.dkim.keyring import Generation, Keyring
    from relaydesk.dkim.signer import DkimSigner

KEYRING_CACHE_SECONDS = 300.0  # a rotation's overlap is hours: five minutes of staleness is harmless


class MessageSigner(Protocol):
    def sign(self, message: bytes) -> bytes:
        """The same message with DKIM-Signature header(s) prepended; the body bytes are untouched."""
        ...


class _Cached:
    def __init__(self, keyring: Keyring, expires: float) -> None:
        self.keyring = keyring
        self.expires = expires
        self.signers: dict[int, DkimSigner] = {}  # id(generation) -> signer with parsed keys


_cache: weakref.WeakKeyDictionary[object, dict[str, _Cached]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def signer_for(address: SupportAddress, secrets: SecretStore, *,
               now: Callable[[], datetime] = lambda: datetime.now(UTC),
               monotonic: Callable[[], float] = time.monotonic) -> MessageSigner | None:
    """The signer for the address's domain, or None when signing is off for it (then nothing is signed at all).

    Raises DkimNotSetUpError when signing is on but the domain has no keys, or none that may sign yet."""
    if not address.dkim.enabled:
        return None
    from relaydesk.dkim.storage import secret_name

    domain = (address.dkim.domain or address.domain).lower()
    secret_id = address.dkim.secret_arn or secret_name(domain)
    cached = _cached_keyring(secrets, secret_id, monotonic())
    generation = cached.keyring.signing_generation(now())
    if generation is None:
        raise DkimNotSetUpError(f"no DKIM key of {domain} may sign yet",
                                action="Run `relaydesk dkim show DOMAIN`: every generation is still publishing.")
    signer = cached.signers.get(id(generation))
    if signer is None:
        signer = cached.signers[id(generation)] = _signer(cached.keyring.domain, generation)
    return signer


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _cached_keyring(secrets: SecretStore, secret_id: str, at: float) -> _Cached:
    with _lock:
        entry = _cache.get(secrets, {}).get(secret_id)
    if entry is not None and entry.expires > at:
        return entry
    from relaydesk.dkim.storage import load_keyring

    keyring, _ = load_keyring(secrets, secret_id)
    entry = _Cached(keyring, at + KEYRING_CACHE_SECONDS)
    with _lock:
        _cache.setdefault(secrets, {})[secret_id] = entry
    return entry


def _signer(domain: str, generation: Generation) -> DkimSigner:
    from relaydesk.dkim.keys import load_private_key
    from relaydesk.dkim.signer import DkimSigner, SigningKey

    keys = [SigningKey(k.selector, k.algorithm, load_private_key(k.algorithm, k.private_text()))
            for k in generation.keys if k.private_key is not None]
    if not keys:
        raise DkimNotSetUpError(f"the signing keys of {domain} were retired")
    return DkimSigner(domain, keys)
