"""The local token endpoint acts like Google's for a service account (JWT bearer grant) and like Entra ID's for an
app's certificate (client assertion): signatures and claims checked, refusals with the providers' status, error and
description; and the XOAUTH2 smarthost takes a service account's token for its own mailbox only, refusing as Gmail
does. Over HTTPS on 127.0.0.1, with assertions made by Relaydesk's signer."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import aiosmtplib
import pytest
from relaydesk.addresses.sign_in import certificate_fields, service_account_fields
from relaydesk.credentials import SmtpCredentials
from relaydesk.oauth_jwt import CLIENT_ASSERTION_TYPE, JWT_BEARER_GRANT, client_assertion, service_account_assertion
from relaydesk.outbound.tls import client_tls_context

MAILBOX = "support@acme.test"
APP = "app-with-a-certificate"


def post(server, url: str, form: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST",  # noqa: S310
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(request, timeout=5, context=client_tls_context(server.ca_pem)) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@pytest.fixture
def google(token_server, service_account_keys):
    key = service_account_keys[0].with_token_uri(token_server.google_token_url)
    token_server.google.add_service_account(key)
    token_server.google.delegate(key.client_id)
    token_server.google.add_user(MAILBOX)
    return key


def sa_creds(key, **overrides) -> SmtpCredentials:
    return SmtpCredentials(host="smtp.gmail.com", username=overrides.pop("username", MAILBOX),
                           **{**service_account_fields(key.json), **overrides})


def ask_google(server, creds: SmtpCredentials, *, now: float | None = None) -> tuple[int, dict]:
    assertion = service_account_assertion(creds, time.time() if now is None else now)
    return post(server, server.google_token_url, {"grant_type": JWT_BEARER_GRANT, "assertion": assertion})


# --- Google -----------------------------------------------------------------------------------------------------------

def test_google_grants_a_bearer_token_for_the_delegated_mailbox(token_server, google):
    status, body = ask_google(token_server, sa_creds(google))

    assert status == 200 and set(body) == {"access_token", "expires_in", "token_type"}
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3599 and body["access_token"].startswith("ya29.")
    grant = token_server.grant_of(body["access_token"])
    assert (grant.client_id, grant.subject, grant.scope) == (google.client_email, MAILBOX, "https://mail.google.com/")


@pytest.mark.parametrize(("setup", "status", "error", "description"), [
    (lambda g, key, other: g.revoke_delegation(key.client_id), 401, "unauthorized_client",
     "Client is unauthorized to retrieve access tokens using this method"),
    (lambda g, key, other: g.delegate(key.client_id, ("https://www.googleapis.com/auth/gmail.send",)), 401,
     "unauthorized_client", "not authorized for any of the scopes requested"),
    (lambda g, key, other: g.delete_key(key), 400, "invalid_grant", "Invalid JWT Signature."),
    (lambda g, key, other: g.disable(key.client_email), 401, "disabled_client", "The OAuth client was disabled."),
    (lambda g, key, other: g.delete_service_account(key.client_email), 401, "deleted_client", "was deleted"),
    (lambda g, key, other: g.block(key.client_id), 400, "admin_policy_enforced", "restricted by policies"),
    (lambda g, key, other: g.suspend_user(MAILBOX), 400, "access_denied", "suspended"),
])
def test_google_refuses_as_google_does(token_server, google, service_account_keys, setup, status, error,
                                       description):
    setup(token_server.google, google, service_account_keys[1])

    got_status, body = ask_google(token_server, sa_creds(google))

    assert (got_status, body["error"]) == (status, error) and description in body["error_description"]
    assert set(body) == {"error", "error_description"} and token_server.tokens_issued == 0


@pytest.mark.parametrize(("claims", "error", "description"), [
    ({"username": "nobody@acme.test"}, "invalid_grant", "Invalid email or User ID"),
    ({"oauth_scope": "https://www.googleapis.com/auth/not-a-scope"}, "invalid_scope", "Invalid OAuth scope"),
    ({"oauth_token_url": "https://oauth2.googleapis.com/token"}, "invalid_grant", "Failed audience check"),
    ({"oauth_service_account": "someone-else@acme-mail.iam.gserviceaccount.com"}, "invalid_client", "not found"),
])
def test_google_checks_sub_scope_aud_and_iss(token_server, google, claims, error, description):
    status, body = ask_google(token_server, sa_creds(google, **claims))

    assert body["error"] == error and description in body["error_description"] and status in (400, 401)


def test_another_key_of_the_account_is_refused_until_it_is_added(token_server, google, service_account_keys):
    other = service_account_keys[1].with_token_uri(token_server.google_token_url)

    assert ask_google(token_server, sa_creds(other))[1]["error_description"] == "Invalid JWT Signature."
    token_server.google.add_key(other)
    assert ask_google(token_server, sa_creds(other))[0] == 200


@pytest.mark.parametrize("skew", [-3600 - 600, 600])  # expired past the 5 minutes of skew, or issued ahead
def test_an_assertion_outside_its_hour_is_refused_as_not_short_lived(token_server, google, skew):
    status, body = ask_google(token_server, sa_creds(google), now=time.time() + skew)

    assert (status, body["error"]) == (400, "invalid_grant") and "short-lived token" in body["error_description"]


def test_a_wrong_grant_type_or_no_assertion_is_refused(token_server, google):
    assert post(token_server, token_server.google_token_url, {"grant_type": "client_credentials"})[1]["error"] == \
        "unsupported_grant_type"
    assert post(token_server, token_server.google_token_url, {"grant_type": JWT_BEARER_GRANT})[1] == {
        "error": "invalid_request", "error_description": "Missing required parameter: assertion"}


# --- Entra ID with a certificate --------------------------------------------------------------------------------------

def cert_creds(token_server, cert, **overrides) -> SmtpCredentials:
    values = {**certificate_fields(cert.bundle_pem), "oauth_client_id": APP, "oauth_tenant_id": token_server.tenant,
              "oauth_token_url": token_server.token_url, **overrides}
    return SmtpCredentials(host="smtp.office365.com", username=MAILBOX, **values)


def ask_entra(server, creds: SmtpCredentials, *, client_id: str = APP, now: float | None = None):
    return post(server, server.token_url, {
        "grant_type": "client_credentials", "client_id": client_id, "scope": "https://outlook.office365.com/.default",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion(creds, time.time() if now is None else now)})


def test_an_uploaded_certificate_gets_an_app_token(token_server, app_certificates):
    token_server.add_certificate(APP, app_certificates[0].certificate_pem)

    status, body = ask_entra(token_server, cert_creds(token_server, app_certificates[0]))

    assert status == 200 and token_server.validate(body["access_token"]) == APP
    assert token_server.grant_of(body["access_token"]).subject is None  # an app token: Exchange decides the mailbox


@pytest.mark.parametrize(("case", "code", "words"), [
    ("not uploaded", 700027, "The key was not found."),
    ("wrong key", 700027, "use of the key to verify the signature failed"),
    ("other app", 700021, "doesn't match 'client_id'"),
    ("other audience", 50012, "audience claim does not match"),
    ("an hour late", 700024, "not within its valid time range"),
])
def test_entra_refuses_a_bad_client_assertion_with_its_code(token_server, app_certificates, case, code, words):
    first, second = app_certificates
    token_server.add_certificate(APP, first.certificate_pem)
    creds = cert_creds(token_server, first)
    if case == "not uploaded":
        creds = cert_creds(token_server, second)
    elif case == "wrong key":  # the uploaded certificate's thumbprint, signed by another key
        creds = creds.model_copy(update={"oauth_private_key": cert_creds(token_server, second).oauth_private_key})
    elif case == "other audience":
        creds = creds.model_copy(update={"oauth_token_url": "https://login.microsoftonline.com/x/oauth2/v2.0/token"})
    client_id = "another-app" if case == "other app" else APP
    if case == "other app":
        token_server.add_certificate("another-app", first.certificate_pem)

    status, body = ask_entra(token_server, creds, client_id=client_id,
                             now=time.time() - 3600 if case == "an hour late" else None)

    assert (status, body["error"], body["error_codes"]) == (401, "invalid_client", [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ") and words in body["error_description"]
    assert token_server.tokens_issued == 0


def test_a_client_secret_still_does_not_work_for_an_app_that_has_only_a_certificate(token_server, app_certificates):
    token_server.add_certificate(APP, app_certificates[0].certificate_pem)

    status, body = post(token_server, token_server.token_url, {
        "grant_type": "client_credentials", "client_id": APP, "client_secret": "",
        "scope": "https://outlook.office365.com/.default"})

    assert (status, body["error_codes"]) == (401, [7000215])


# --- the smarthost takes a service account's token for its own mailbox, and refuses as Gmail -------------------------

async def xoauth2(server, user: str, token: str) -> aiosmtplib.SMTPResponse:
    smtp = aiosmtplib.SMTP(hostname=server.host, port=server.port, tls_context=client_tls_context(server.ca_pem),
                           start_tls=True, timeout=5)
    async with smtp:
        return await smtp.auth_xoauth2(user, token)


def test_gmail_takes_the_token_for_its_sub_only_and_refuses_with_its_challenge_then_535(
        token_server, google, make_smarthost):
    gmail = make_smarthost(oauth=token_server, xoauth2_replies="gmail")
    token = ask_google(token_server, sa_creds(google))[1]["access_token"]
    token_server.google.add_user("billing@acme.test")

    accepted = asyncio.run(xoauth2(gmail, MAILBOX, token))
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        asyncio.run(xoauth2(gmail, "billing@acme.test", token))

    assert accepted.code == 235
    assert refused.value.code == 535 and "5.7.8 Username and Password not accepted" in refused.value.message
    assert (gmail.stats.auth_attempts, gmail.stats.auth_failures) == (2, 1)
