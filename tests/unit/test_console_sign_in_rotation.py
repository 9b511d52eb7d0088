"""The console's address view says how each connector signs in (password, an Entra ID app's client secret or
certificate, a Google service account) with the identifiers only, and its rotate route takes the matching new
material: a password, a client secret, a certificate's PEM with its key, a service account's key file. Each goes
through the rotation's test before it is used; a bad or mismatched one is refused in words and stages nothing; no
secret, key or token ever comes back."""

from __future__ import annotations

import json

import pytest
from relaydesk.addresses import rotation
from relaydesk.credentials import OAuthGrant, SmtpCredentials
from relaydesk.store.ports import PENDING

from tests.unit.test_console_api import (
    CLIENT_SECRET,
    PASSWORD,
    acme,  # noqa: F401
    address_path,
    api,  # noqa: F401
    as_user,
    checker_that,
    connect,
    path,
    run_launched,
    stores,  # noqa: F401 - fixtures shared with the console's other route tests
)

NEW_CLIENT_SECRET = "Entra~new~secret~value~9876543210"
GOOGLE = dict(preset="google", username=None, host=None, port=None, tls_mode=None, password=None, auth_kind="oauth2",
              oauth_grant="service_account")
ENTRA = dict(preset="microsoft365", username=None, host=None, port=None, tls_mode=None, password=None,
             auth_kind="oauth2", oauth_tenant_id="acme.onmicrosoft.com",
             oauth_client_id="9a8b7c6d-1111-4222-8333-444455556666")


def thumbprint(cert) -> str:
    """The certificate's SHA-1 thumbprint as Entra ID's Certificates & secrets page lists it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    certificate = x509.load_pem_x509_certificate(cert.certificate_pem.encode("ascii"))
    return certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - what Entra ID shows, not security


def key_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and "-----" not in line]


@pytest.fixture
def rotation_check(stores, monkeypatch):  # noqa: F811
    """The rotation runs its four steps in process with a live check that passes, recording what it was given."""
    check = checker_that()
    monkeypatch.setattr("relaydesk.jobs.runner.default_starter",
                        lambda stores: lambda secret_id, token: rotation.rotate_in_process(
                            stores, secret_id, token, checker=check))
    return check


def rotate(stores, api, account, email: str, body: dict):  # noqa: F811
    admin = as_user(api, account, "admin")
    started = admin.post(address_path(account, email, "connector"), body)
    if started.status != 202:
        return started, None
    run_launched(stores)
    return started, admin.get(path(account, "jobs", started.body["job_id"]))


def stored(stores, account, email: str) -> SmtpCredentials:  # noqa: F811
    address = stores.directory.get_account_address(account.account_id, email)
    return SmtpCredentials.model_validate_json(stores.secrets.get(address.connector.secret_arn).value)


def connector_shown(api, account, email: str) -> tuple[dict, str]:  # noqa: F811
    details = as_user(api, account, "agent").get(address_path(account, email, "details"))
    listed = as_user(api, account, "agent").get(path(account, "support_addresses"))
    return details.body["address"]["connector"], details.raw + listed.raw


def test_every_sign_in_is_named_with_its_identifiers_and_no_secret_key_or_token_comes_back(
        stores, api, acme, monkeypatch, service_account_keys, app_certificates):  # noqa: F811
    key, cert = service_account_keys[0], app_certificates[0]
    connect(stores, api, acme, monkeypatch)  # support@acme.com with a password
    connect(stores, api, acme, monkeypatch, email="gmail@acme.com", **GOOGLE, service_account_key=key.json)
    connect(stores, api, acme, monkeypatch, email="cert@acme.com", **ENTRA, oauth_grant="client_certificate",
            oauth_certificate_pem=cert.bundle_pem)
    connect(stores, api, acme, monkeypatch, email="secret@acme.com", **ENTRA, oauth_client_secret=CLIENT_SECRET)

    password, seen = connector_shown(api, acme, "support@acme.com")
    google, raw_google = connector_shown(api, acme, "gmail@acme.com")
    certificate, raw_certificate = connector_shown(api, acme, "cert@acme.com")
    client_secret, raw_secret = connector_shown(api, acme, "secret@acme.com")

    assert (password["auth_kind"], password["sign_in"], password["oauth_client_id"]) == ("password", "password", None)
    assert google["sign_in"] == "service_account" and google["oauth_service_account"] == key.client_email
    assert google["oauth_client_id"] == key.client_id and google["oauth_tenant_id"] is None
    assert certificate["sign_in"] == "client_certificate"
    assert certificate["oauth_certificate_thumbprint"] == thumbprint(cert)
    assert certificate["oauth_certificate_expires_at"] and certificate["oauth_tenant_id"] == "acme.onmicrosoft.com"
    assert client_secret["sign_in"] == "client_secret"
    assert client_secret["oauth_client_id"] == ENTRA["oauth_client_id"]
    everything = seen + raw_google + raw_certificate + raw_secret
    for value in (PASSWORD, CLIENT_SECRET, *key_lines(key.private_key_pem), *key_lines(cert.private_key_pem),
                  *key_lines(cert.certificate_pem), key.private_key_id, "secret_arn", "secretsmanager"):
        assert value not in everything


def test_a_certificate_address_rotates_to_a_new_certificate_through_the_test(
        stores, api, acme, monkeypatch, app_certificates, rotation_check):  # noqa: F811
    old, new = app_certificates
    connect(stores, api, acme, monkeypatch, email="cert@acme.com", **ENTRA, oauth_grant="client_certificate",
            oauth_certificate_pem=old.bundle_pem)

    started, job = rotate(stores, api, acme, "cert@acme.com", {"oauth_certificate_pem": new.bundle_pem})

    assert started.status == 202 and job.body["status"] == "succeeded", job.body
    tested = rotation_check.seen[-1]  # the test signed in with the new certificate, the app's ids kept
    assert tested.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE
    assert tested.oauth_signing_key == new.private_key_pem.strip() + "\n"
    assert (tested.oauth_tenant_id, tested.oauth_client_id) == (ENTRA["oauth_tenant_id"], ENTRA["oauth_client_id"])
    assert stored(stores, acme, "cert@acme.com").oauth_certificate_thumbprint == thumbprint(new)
    shown, raw = connector_shown(api, acme, "cert@acme.com")
    assert shown["oauth_certificate_thumbprint"] == thumbprint(new)
    assert not any(line in started.raw + job.raw + raw for line in key_lines(new.private_key_pem))


def test_a_service_account_address_rotates_to_a_new_key_file(
        stores, api, acme, monkeypatch, service_account_keys, rotation_check):  # noqa: F811
    old, new = service_account_keys
    connect(stores, api, acme, monkeypatch, email="gmail@acme.com", **GOOGLE, service_account_key=old.json)

    started, job = rotate(stores, api, acme, "gmail@acme.com", {"service_account_key": new.json})

    assert job.body["status"] == "succeeded", job.body
    tested = rotation_check.seen[-1]
    assert tested.oauth_grant is OAuthGrant.SERVICE_ACCOUNT and tested.oauth_key_id == new.private_key_id
    assert tested.username == "gmail@acme.com" and tested.host == "smtp.gmail.com"
    assert stored(stores, acme, "gmail@acme.com").oauth_key_id == new.private_key_id
    assert not any(line in started.raw + job.raw for line in key_lines(new.private_key_pem))


def test_an_entra_app_moves_from_its_client_secret_to_a_certificate_and_the_secret_is_dropped(
        stores, api, acme, monkeypatch, app_certificates, rotation_check):  # noqa: F811
    cert = app_certificates[0]
    connect(stores, api, acme, monkeypatch, email="secret@acme.com", **ENTRA, oauth_client_secret=CLIENT_SECRET)

    _, job = rotate(stores, api, acme, "secret@acme.com", {"oauth_certificate_pem": cert.bundle_pem})

    assert job.body["status"] == "succeeded", job.body
    now = stored(stores, acme, "secret@acme.com")
    assert now.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE and now.oauth_client_secret is None
    assert connector_shown(api, acme, "secret@acme.com")[0]["sign_in"] == "client_certificate"

    _, job = rotate(stores, api, acme, "secret@acme.com", {"oauth_client_secret": NEW_CLIENT_SECRET})

    assert job.body["status"] == "succeeded", job.body
    back = stored(stores, acme, "secret@acme.com")
    assert back.oauth_grant is OAuthGrant.CLIENT_SECRET and back.oauth_private_key is None
    assert back.oauth_client_secret.get_secret_value() == NEW_CLIENT_SECRET and back.oauth_certificate_pem is None


@pytest.mark.parametrize("email, body, words", [
    ("gmail@acme.com", {"oauth_certificate_pem": "CERT"}, "signs in to Microsoft 365 only"),
    ("cert@acme.com", {"service_account_key": "KEY"}, "signs in to Google Workspace only"),
    ("cert@acme.com", {"oauth_certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
     "private key"),
    ("cert@acme.com", {"oauth_certificate_pem": "CERT", "oauth_client_secret": "x" * 40}, "give one new sign-in"),
    ("cert@acme.com", {"password": "a-Pa55word-for-oauth"}, "a password does not apply"),
    ("gmail@acme.com", {"service_account_key": '{"type": "authorized_user", "private_key": "AAAA"}'},
     "not a service account key"),
])
def test_mismatched_or_bad_material_is_refused_in_words_and_stages_nothing(
        stores, api, acme, monkeypatch, service_account_keys, app_certificates, email, body, words):  # noqa: F811
    connect(stores, api, acme, monkeypatch, email="gmail@acme.com", **GOOGLE,
            service_account_key=service_account_keys[0].json)
    connect(stores, api, acme, monkeypatch, email="cert@acme.com", **ENTRA, oauth_grant="client_certificate",
            oauth_certificate_pem=app_certificates[0].bundle_pem)
    body = {name: app_certificates[1].bundle_pem if value == "CERT" else
            service_account_keys[1].json if value == "KEY" else value for name, value in body.items()}

    reply, _ = rotate(stores, api, acme, email, body)

    assert reply.status == 400 and reply.body["code"] == "configuration_error", reply.body
    assert words in reply.body["message"]
    address = stores.directory.get_account_address(acme.account_id, email)
    assert PENDING not in json.dumps(stores.secrets.describe_stages(address.connector.secret_arn))
    for value in body.values():
        assert not any(line in reply.raw for line in key_lines(value) if len(line) > 8)
    assert "AAAA" not in reply.raw


def test_a_password_address_still_rotates_its_password(stores, api, acme, monkeypatch, rotation_check):  # noqa: F811
    connect(stores, api, acme, monkeypatch)

    _, job = rotate(stores, api, acme, "support@acme.com", {"password": "Another-Pa55word!"})

    assert job.body["status"] == "succeeded"
    assert stored(stores, acme, "support@acme.com").password.get_secret_value() == "Another-Pa55word!"


def test_a_refused_rotation_shows_its_own_fix_on_the_address_page(
        stores, api, acme, monkeypatch, app_certificates):  # noqa: F811
    old, new = app_certificates
    connect(stores, api, acme, monkeypatch, email="cert@acme.com", **ENTRA, oauth_grant="client_certificate",
            oauth_certificate_pem=old.bundle_pem)
    refusing = checker_that(fails_at="auth", reply="535 5.7.3 Authentication unsuccessful")
    monkeypatch.setattr("relaydesk.jobs.runner.default_starter",
                        lambda stores: lambda secret_id, token: rotation.rotate_in_process(
                            stores, secret_id, token, checker=refusing))

    _, job = rotate(stores, api, acme, "cert@acme.com", {"oauth_certificate_pem": new.bundle_pem})
    details = as_user(api, acme, "agent").get(address_path(acme, "cert@acme.com", "details")).body

    assert job.body["status"] == "failed"
    said = details["explanation"]
    assert said["summary"].startswith("credential rotation failed at auth")
    assert "the previous credentials stay live" in said["summary"]
    assert said["fix"] == "Check them."  # the live check's own fix, not a generic one
    assert stored(stores, acme, "cert@acme.com").oauth_certificate_thumbprint == thumbprint(old)
