"""The connector secret with OAuth 2.0 fields: what it needs, where its token comes from, and that the client
secret is written only into the secret itself."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError
from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import ConfigurationError
from relaydesk.outbound.credentials import parse_secret

CLIENT_SECRET = "Qx8~client-secret-VALUE-not-its-id"


def oauth(**overrides) -> SmtpCredentials:
    values = dict(host="smtp.office365.com", username="support@acme.com", auth_kind=AuthKind.OAUTH2,
                  oauth_tenant_id="acme.onmicrosoft.com", oauth_client_id="11111111-2222-3333-4444-555555555555",
                  oauth_client_secret=CLIENT_SECRET)
    values.update(overrides)
    return SmtpCredentials(**values)


def test_an_oauth2_address_gets_its_token_from_entra_ids_endpoint_for_its_tenant_with_exchanges_scope():
    creds = oauth()

    assert creds.token_url == "https://login.microsoftonline.com/acme.onmicrosoft.com/oauth2/v2.0/token"
    assert creds.oauth_scope == "https://outlook.office365.com/.default"


def test_a_configured_token_url_wins_and_an_empty_one_means_entra_ids():
    assert oauth(oauth_token_url="https://login.example.test/t/token").token_url == "https://login.example.test/t/token"
    assert oauth(oauth_token_url="  ").token_url.startswith("https://login.microsoftonline.com/acme.onmicrosoft.com/")


@pytest.mark.parametrize(("missing", "named"), [
    ({"oauth_client_id": None}, "oauth_client_id"),
    ({"oauth_client_secret": None}, "oauth_client_secret"),
    ({"oauth_client_secret": ""}, "oauth_client_secret"),
    ({"oauth_tenant_id": ""}, "oauth_tenant_id or oauth_token_url"),
])
def test_oauth2_without_an_app_id_a_client_secret_or_a_tenant_is_refused_naming_what_is_missing(missing, named):
    with pytest.raises(ValidationError) as raised:
        oauth(**missing)

    assert named in str(raised.value)
    assert CLIENT_SECRET not in str(raised.value)  # the input is never echoed


def test_a_token_url_alone_is_enough_without_a_tenant():
    assert oauth(oauth_tenant_id=None, oauth_token_url="https://idp.example.test/token").oauth_tenant_id is None


def test_the_password_kind_needs_a_password_and_says_so_without_echoing_anything():
    with pytest.raises(ValidationError, match="auth_kind password needs a password"):
        SmtpCredentials(host="smtp.acme.test", username="support@acme.test")


def test_a_secret_stored_before_oauth_existed_still_loads():
    stored = json.dumps({"host": "smtp.acme.test", "port": 587, "tls_mode": "starttls", "auth_kind": "password",
                         "username": "support@acme.test", "password": "pw", "oauth_client_id": None,
                         "oauth_tenant_id": None, "oauth_refresh_token": None, "ca_bundle_pem": None})

    creds = parse_secret(stored)

    assert creds.auth_kind is AuthKind.PASSWORD and creds.password.get_secret_value() == "pw"
    assert creds.oauth_client_secret is None and creds.oauth_token_url is None


def test_the_client_secret_is_written_into_the_secret_string_and_nowhere_else():
    creds = oauth()

    stored = json.loads(creds.to_secret_string())
    assert stored["oauth_client_secret"] == CLIENT_SECRET and stored["auth_kind"] == "oauth2"
    assert parse_secret(creds.to_secret_string()) == creds
    for shown in (repr(creds), str(creds), json.dumps(creds.model_dump(mode="json")), str(creds.model_dump())):
        assert CLIENT_SECRET not in shown


def test_a_bad_oauth_secret_names_what_is_missing_and_never_its_values():
    with pytest.raises(ConfigurationError) as raised:
        parse_secret(json.dumps({"host": "smtp.office365.com", "username": "support@acme.com", "auth_kind": "oauth2",
                                 "oauth_client_secret": CLIENT_SECRET}))

    assert "oauth_client_id" in raised.value.message and CLIENT_SECRET not in raised.value.message
