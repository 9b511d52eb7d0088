"""Tokens from signed JWTs: a Google service account's JWT bearer grant (per mailbox) and an Entra ID app's
certificate assertion. Each assertion is checked by `local.jwt_check`, written apart from the signer, and the
certificate's `x5t#S256` against a thumbprint computed with the standard library. No sockets: the endpoint is a fake
(the real exchange: tests/integration/test_relay_signed_grants.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
from urllib.parse import parse_qs

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from relaydesk.addresses.sign_in import certificate_fields, service_account_fields
from relaydesk.credentials import GMAIL_SCOPE, GOOGLE_TOKEN_URL, AuthKind, OAuthGrant, SmtpCredentials
from relaydesk.errors import OAuthTokenError
from relaydesk.oauth import AccessTokens, Response
from relaydesk.oauth_jwt import CLIENT_ASSERTION_TYPE, JWT_BEARER_GRANT

from local.jwt_check import JwtRefused, decode, verify

NOW = 1_760_000_000.0
MAILBOX = "support@acme.test"
TENANT_URL = "https://login.microsoftonline.com/acme-tenant/oauth2/v2.0/token"


def google_creds(key, username: str = MAILBOX) -> SmtpCredentials:
    return SmtpCredentials(host="smtp.gmail.com", username=username, **service_account_fields(key.json))


def cert_creds(cert, client_id: str = "app-1") -> SmtpCredentials:
    return SmtpCredentials(host="smtp.office365.com", username=MAILBOX, oauth_tenant_id="acme-tenant",
                           oauth_client_id=client_id, **certificate_fields(cert.bundle_pem))


class Endpoint:
    """A fake token endpoint: records each form, answers `answers` first, else a new token."""

    def __init__(self) -> None:
        self.forms: list[dict[str, str]] = []
        self.answers: list[Response] = []

    def __call__(self, url: str, body: bytes, creds: SmtpCredentials, timeout: float) -> Response:
        self.forms.append({name: values[0] for name, values in parse_qs(body.decode()).items()})
        if self.answers:
            return self.answers.pop(0)
        return Response(200, json.dumps({"access_token": f"ya29.token-{len(self.forms)}", "expires_in": 3599,
                                         "token_type": "Bearer"}).encode())


def tokens(endpoint: Endpoint) -> AccessTokens:
    return AccessTokens(fetch=endpoint, clock=lambda: 100.0, wall_clock=lambda: NOW)


# --- Google: the service account's JWT bearer grant ---------------------------------------------------------------

def test_a_service_account_asks_for_a_token_with_an_rs256_jwt_for_the_mailbox_and_gmails_scope(service_account_keys):
    key = service_account_keys[0]
    endpoint = Endpoint()

    tokens(endpoint).token(google_creds(key))

    [form] = endpoint.forms
    assert set(form) == {"grant_type", "assertion"} and form["grant_type"] == JWT_BEARER_GRANT
    header, claims = decode(form["assertion"])
    assert header == {"alg": "RS256", "typ": "JWT", "kid": key.private_key_id}
    assert claims == {"iss": key.client_email, "sub": MAILBOX, "scope": GMAIL_SCOPE, "aud": GOOGLE_TOKEN_URL,
                      "iat": int(NOW), "exp": int(NOW) + 3600}
    verify(form["assertion"], load_pem_public_key(key.public_key_pem.encode()), ("RS256",))


def test_the_signature_is_the_service_accounts_own_and_no_other_key_verifies_it(service_account_keys):
    first, second = service_account_keys
    endpoint = Endpoint()
    tokens(endpoint).token(google_creds(first))
    assertion = endpoint.forms[0]["assertion"]

    with pytest.raises(JwtRefused, match="signature"):
        verify(assertion, load_pem_public_key(second.public_key_pem.encode()), ("RS256",))
    tampered = assertion.replace(assertion.split(".")[1], assertion.split(".")[1][:-2] + "xy")
    with pytest.raises(JwtRefused):
        verify(tampered, load_pem_public_key(first.public_key_pem.encode()), ("RS256",))


def test_tokens_of_a_service_account_are_kept_per_mailbox_and_renewed_for_a_new_key(service_account_keys):
    first, second = service_account_keys
    endpoint = Endpoint()
    cache = tokens(endpoint)

    support = cache.token(google_creds(first))
    assert cache.token(google_creds(first)) == support  # cached
    billing = cache.token(google_creds(first, "billing@acme.test"))
    rotated = cache.token(google_creds(second))

    assert len({support, billing, rotated}) == 3 and len(endpoint.forms) == 3
    assert [decode(f["assertion"])[1]["sub"] for f in endpoint.forms] == [MAILBOX, "billing@acme.test", MAILBOX]


def test_a_google_refusal_is_typed_with_its_error_and_the_admin_console_fix(service_account_keys):
    key = service_account_keys[0]
    endpoint = Endpoint()
    endpoint.answers.append(Response(401, json.dumps({
        "error": "unauthorized_client",
        "error_description": "Client is unauthorized to retrieve access tokens using this method, or client not "
                             "authorized for any of the scopes requested."}).encode()))

    with pytest.raises(OAuthTokenError) as refused:
        tokens(endpoint).token(google_creds(key))

    error = refused.value
    assert not error.transient and error.oauth_error == "unauthorized_client" and error.http_status == 401
    assert key.client_email in error.message and MAILBOX in error.message
    assert "Domain Wide Delegation" in error.action and key.client_id in error.action
    assert "https://mail.google.com/" in error.action


def test_an_endpoint_echoing_the_assertion_never_gets_it_into_the_error(service_account_keys):
    key = service_account_keys[0]

    def echoing(url, body, creds, timeout):
        assertion = parse_qs(body.decode())["assertion"][0]
        return Response(400, json.dumps({"error": "invalid_grant",
                                         "error_description": f"Bad assertion {assertion}"}).encode())

    with pytest.raises(OAuthTokenError) as refused:
        AccessTokens(fetch=echoing).token(google_creds(key))

    assert "eyJ" not in str(refused.value) and "***" in str(refused.value)


def test_an_unusable_private_key_is_refused_before_any_request_without_quoting_it(service_account_keys):
    key = service_account_keys[0]
    creds = google_creds(key)
    # A PEM-shaped value that is not a key (a truncated paste).
    broken = creds.model_copy(update={"oauth_private_key": type(creds.oauth_private_key)(
        "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n")})
    endpoint = Endpoint()

    with pytest.raises(OAuthTokenError) as refused:
        tokens(endpoint).token(broken)

    assert endpoint.forms == [] and refused.value.oauth_error == "invalid_private_key"
    assert not refused.value.transient and "MIIEvQ" not in str(refused.value)


# --- Microsoft: the certificate's client assertion ----------------------------------------------------------------

def test_a_certificate_app_sends_a_ps256_client_assertion_named_by_its_sha256_thumbprint(app_certificates):
    cert = app_certificates[0]
    endpoint = Endpoint()

    tokens(endpoint).token(cert_creds(cert))

    [form] = endpoint.forms
    assert form["grant_type"] == "client_credentials" and form["client_id"] == "app-1"
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE and "client_secret" not in form
    assert form["scope"] == "https://outlook.office365.com/.default"
    header, claims = decode(form["client_assertion"])
    der = ssl.PEM_cert_to_DER_cert(cert.certificate_pem)
    assert header == {"alg": "PS256", "typ": "JWT",
                      "x5t#S256": base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()}
    assert claims["aud"] == TENANT_URL and claims["iss"] == claims["sub"] == "app-1"
    assert claims["nbf"] == claims["iat"] == int(NOW) and claims["exp"] == int(NOW) + 600 and claims["jti"]
    from cryptography import x509
    verify(form["client_assertion"], x509.load_pem_x509_certificate(cert.certificate_pem.encode()).public_key(),
           ("PS256",))


def test_every_client_assertion_is_unique(app_certificates):
    endpoint = Endpoint()
    cache = tokens(endpoint)
    creds = cert_creds(app_certificates[0])

    cache.token(creds)
    cache.token(creds, fresh=True)

    jtis = [decode(form["client_assertion"])[1]["jti"] for form in endpoint.forms]
    assert len(set(jtis)) == 2


def test_a_new_certificate_gets_a_new_token_and_the_old_one_is_not_reused(app_certificates):
    endpoint = Endpoint()
    cache = tokens(endpoint)

    first = cache.token(cert_creds(app_certificates[0]))
    second = cache.token(cert_creds(app_certificates[1]))

    assert first != second and len(endpoint.forms) == 2


def test_entras_certificate_refusal_says_to_upload_the_certificate(app_certificates):
    endpoint = Endpoint()
    endpoint.answers.append(Response(401, json.dumps({
        "error": "invalid_client", "error_codes": [700027],
        "error_description": "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was "
                             "not found.]\r\nTrace ID: x"}).encode()))

    with pytest.raises(OAuthTokenError) as refused:
        tokens(endpoint).token(cert_creds(app_certificates[0]))

    assert refused.value.aadsts == "AADSTS700027" and "refused the certificate of app app-1" in refused.value.message
    assert "Certificates" in refused.value.action


@pytest.mark.parametrize("grant", [OAuthGrant.SERVICE_ACCOUNT, OAuthGrant.CLIENT_CERTIFICATE])
def test_the_credentials_never_show_the_private_key(service_account_keys, app_certificates, grant):
    creds = (google_creds(service_account_keys[0]) if grant is OAuthGrant.SERVICE_ACCOUNT
             else cert_creds(app_certificates[0]))
    key_line = creds.oauth_signing_key.splitlines()[3]

    shown = [repr(creds), str(creds), json.dumps(creds.model_dump(mode="json")), str(creds.model_dump())]

    assert creds.auth_kind is AuthKind.OAUTH2 and creds.oauth_grant is grant
    assert not any(key_line in text for text in shown)
    assert key_line in creds.to_secret_string()  # only the secret's value holds it
