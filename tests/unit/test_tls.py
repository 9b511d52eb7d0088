"""The shared TLS client context: always verifying, TLS 1.2 or newer, built once per CA bundle."""

import ssl

from relaydesk.outbound.tls import client_tls_context


def test_every_context_verifies_the_certificate_and_host_name_and_refuses_old_tls():
    for bundle in (None, ""):
        context = client_tls_context(bundle)
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_context_is_built_once_per_ca_bundle_and_shared(local_ca):
    assert client_tls_context(None) is client_tls_context(None)
    private = client_tls_context(local_ca.pem)
    assert private is client_tls_context(local_ca.pem)
    assert private is not client_tls_context(None)
    assert private.verify_mode is ssl.CERT_REQUIRED and private.check_hostname
