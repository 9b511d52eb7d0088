"""The one TLS client context every SMTP client here uses: verified, TLS 1.2 or newer, never downgraded."""

from __future__ import annotations

import ssl


def client_tls_context(ca_bundle_pem: str | None = None) -> ssl.SSLContext:
    """System trust store, or the address's own CA bundle for a private smarthost; the host name is always checked."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if ca_bundle_pem:
        context.load_verify_locations(cadata=ca_bundle_pem)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context
