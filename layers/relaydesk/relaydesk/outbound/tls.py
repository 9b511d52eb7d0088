"""The one TLS client context every SMTP client here uses: verified, TLS 1.2 or newer, never downgraded."""

from __future__ import annotations

import ssl
from functools import lru_cache

CONTEXTS_KEPT = 64  # one per distinct CA bundle; a warm relay sees a handful of private smarthosts at most


@lru_cache(maxsize=CONTEXTS_KEPT)
def client_tls_context(ca_bundle_pem: str | None = None) -> ssl.SSLContext:
    """System trust store, or the address's own CA bundle for a private smarthost; the host name is always checked.

    Cached per bundle: building a context loads and parses the whole trust store (the relay benchmark's profile
    showed it per connection), and a configured context is safe to share between connections and threads. Nobody
    changes a context after it is returned."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_bundle_pem:
        context.load_verify_locations(cadata=ca_bundle_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
