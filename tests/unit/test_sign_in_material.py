"""What an admin hands over to sign in without a password: a Google service account's key file and an Entra ID app's
certificate with its key. Good material becomes connector credentials; bad material is refused with what is wrong,
never with any of the material itself."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError
from relaydesk.addresses.sign_in import certificate_fields, service_account_fields
from relaydesk.credentials import GMAIL_SCOPE, GOOGLE_TOKEN_URL, OAuthGrant, SmtpCredentials
from relaydesk.errors import ConfigurationError

from local.app_credentials import AppCertificate

MAILBOX = "support@acme.test"


def key_line(pem: str) -> str:
    return pem.splitlines()[2]  # a line of the key's base64 body


def refused(call, *args, **kwargs) -> ConfigurationError:
    with pytest.raises(ConfigurationError) as raised:
        call(*args, **kwargs)
    return raised.value


# --- Google service account key file --------------------------------------------------------------------------------

def test_a_key_file_becomes_a_service_account_sign_in_for_gmail(service_account_keys):
    key = service_account_keys[0]

    creds = SmtpCredentials(host="smtp.gmail.com", username=MAILBOX, **service_account_fields(key.json))

    assert creds.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
    assert (creds.oauth_service_account, creds.oauth_client_id, creds.oauth_key_id) == (
        key.client_email, key.client_id, key.private_key_id)
    assert creds.token_url == GOOGLE_TOKEN_URL and creds.oauth_scope == GMAIL_SCOPE
    assert creds.oauth_client_secret is None and creds.oauth_tenant_id is None


def test_the_key_files_token_uri_is_where_the_token_comes_from(service_account_keys):
    key = service_account_keys[0].with_token_uri("https://127.0.0.1:8443/token")

    assert service_account_fields(key.json)["oauth_token_url"] == "https://127.0.0.1:8443/token"


@pytest.mark.parametrize(("change", "words"), [
    ({"type": "authorized_user"}, "not a service account key"),
    ({"client_email": None}, "has no client_email"),
    ({"private_key": ""}, "has no private_key"),
    ({"client_id": "relaydesk-smtp"}, "not the numeric client ID"),
    ({"client_email": "someone@gmail.com"}, "is not a service account's address"),
    ({"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"}, "not an unencrypted PEM"),
])
def test_a_wrong_key_file_is_refused_naming_the_problem_never_the_key(service_account_keys, change, words):
    document = json.loads(service_account_keys[0].json)
    document.update(change)

    error = refused(service_account_fields, json.dumps(document))

    assert words in error.message
    assert key_line(service_account_keys[0].private_key_pem) not in str(error) + (error.action or "")


def test_a_file_that_is_not_json_or_is_huge_is_refused(service_account_keys):
    assert "not JSON" in refused(service_account_fields, service_account_keys[0].json[:-20]).message
    assert "larger than" in refused(service_account_fields, b"{" + b" " * 70_000 + b"}").message
    assert "empty" in refused(service_account_fields, "  \n").message


def test_a_short_rsa_key_is_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 (the weak key refused)
    pem = small.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    document = {"type": "service_account", "client_email": "relay-smtp@acme-mail.iam.gserviceaccount.com",
                "client_id": "1234567890", "private_key_id": "k1", "private_key": pem}

    assert "1024 bits" in refused(service_account_fields, json.dumps(document)).message


def test_service_account_credentials_need_the_account_the_key_and_a_mailbox(service_account_keys):
    fields = service_account_fields(service_account_keys[0].json)

    with pytest.raises(ValidationError) as missing_key:
        SmtpCredentials(host="smtp.gmail.com", username=MAILBOX, **{**fields, "oauth_private_key": None})
    with pytest.raises(ValidationError) as no_mailbox:
        SmtpCredentials(host="smtp.gmail.com", username="support", **fields)

    assert "(service_account) needs oauth_private_key" in str(missing_key.value)
    assert "a mailbox address as username" in str(no_mailbox.value)
    assert key_line(service_account_keys[0].private_key_pem) not in str(missing_key.value) + str(no_mailbox.value)


# --- Entra ID app certificate -------------------------------------------------------------------------------------

def test_a_certificate_and_its_key_become_a_certificate_sign_in_in_either_order(app_certificates):
    cert = app_certificates[0]

    for pem in (cert.bundle_pem, cert.private_key_pem + cert.certificate_pem):
        fields = certificate_fields(pem)
        creds = SmtpCredentials(host="smtp.office365.com", username=MAILBOX, oauth_tenant_id="t",
                                oauth_client_id="app-1", **fields)
        assert creds.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE
        assert creds.oauth_certificate_pem.strip() == cert.certificate_pem.strip()
        assert len(creds.oauth_certificate_thumbprint) == 40  # SHA-1 hex, as Entra ID lists it
        assert creds.oauth_certificate_expires_at > dt.datetime.now(dt.UTC) + dt.timedelta(days=300)


def test_a_key_of_another_certificate_is_refused(app_certificates):
    first, second = app_certificates

    error = refused(certificate_fields, first.certificate_pem + second.private_key_pem)

    assert "does not belong to the certificate" in error.message
    assert key_line(second.private_key_pem) not in error.message


def test_an_expired_or_not_yet_valid_certificate_is_refused():
    old = AppCertificate.create(days=30, not_before=dt.datetime(2020, 1, 1, tzinfo=dt.UTC))

    assert "not valid now" in refused(certificate_fields, old.bundle_pem).message


@pytest.mark.parametrize(("material", "words"), [
    ("certificate only", "0 private keys and 1 certificates"),
    ("key only", "1 private keys and 0 certificates"),
    ("encrypted", "the private key is encrypted"),
])
def test_incomplete_or_encrypted_pem_is_refused(app_certificates, material, words):
    cert = app_certificates[0]
    pem = {"certificate only": cert.certificate_pem, "key only": cert.private_key_pem,
           "encrypted": cert.certificate_pem + "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n"
                                               "-----END ENCRYPTED PRIVATE KEY-----\n"}[material]

    assert words in refused(certificate_fields, pem).message
