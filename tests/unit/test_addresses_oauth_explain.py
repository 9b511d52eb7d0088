"""OAuth 2.0 (XOAUTH2) failures of a Microsoft 365 address explained in plain words, with the fix an admin applies."""

from __future__ import annotations

import pytest
from relaydesk.addresses.explain import aadsts_of, explain_reply, explain_step, explain_token_error

BASIC_AUTH_OFF = "5.7.30 Basic authentication is not supported for Client Submission."


def test_basic_auth_refused_tells_to_switch_the_address_to_oauth2_with_the_steps():
    explanation = explain_reply(550, BASIC_AUTH_OFF, username="support@acme.com")

    assert "550 5.7.30" in explanation.summary and "no longer accepts a password" in explanation.summary
    assert "relaydesk addresses rotate support@acme.com --auth oauth2" in explanation.fix
    assert "--client-secret-stdin" in explanation.fix
    assert "SMTP.SendAsApp" in explanation.fix and "New-ServicePrincipal" in explanation.fix
    assert "Add-MailboxPermission" in explanation.fix


def test_basic_auth_refused_at_the_auth_step_of_a_live_check_is_the_same_explanation():
    explanation = explain_step("auth", code=550, reply=BASIC_AUTH_OFF, username="support@acme.com")
    assert "--auth oauth2" in explanation.fix


def test_535_for_an_oauth_address_names_the_service_principal_and_mailbox_permission():
    explanation = explain_reply(535, "5.7.3 Authentication unsuccessful [SN4PR0]", username="support@acme.com",
                                oauth=True)

    assert "service principal is not registered" in explanation.summary
    assert "no permission on the mailbox support@acme.com" in explanation.summary
    assert "New-ServicePrincipal -AppId <client id> -ObjectId <Enterprise application's object id>" in explanation.fix
    assert "Add-MailboxPermission -Identity support@acme.com" in explanation.fix
    assert "-AccessRights FullAccess" in explanation.fix
    assert "Enterprise applications" in explanation.fix and "not the one under App registrations" in explanation.fix


def test_535_for_a_password_address_still_talks_about_the_password():
    explanation = explain_reply(535, "5.7.3 Authentication unsuccessful", username="support@acme.com")
    assert "wrong username or password" in explanation.summary
    assert "New-ServicePrincipal" not in explanation.fix


def test_wrong_client_secret_says_to_use_the_value_not_the_id():
    explanation = explain_token_error(
        "invalid_client", "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
                          "request is the client secret value, not the client secret ID")
    assert "AADSTS7000215" in explanation.summary
    assert "Value, not its Secret ID" in explanation.fix


def test_expired_client_secret_says_create_a_new_one_and_rotate():
    explanation = explain_token_error("invalid_client", "AADSTS7000222: The provided client secret keys for app "
                                                        "'c0ffee' are expired.")
    assert "expired" in explanation.summary
    assert "New client secret" in explanation.fix and "relaydesk addresses rotate" in explanation.fix


def test_unknown_application_points_at_the_client_id_and_tenant():
    explanation = explain_token_error("unauthorized_client", "AADSTS700016: Application with identifier 'abc' was "
                                      "not found in the directory 'Acme'.", tenant_id="t-1", client_id="abc")
    assert "no application with the client id abc in the tenant t-1" in explanation.summary
    assert "--client-id" in explanation.fix and "--tenant-id" in explanation.fix


def test_unknown_tenant_points_at_the_directory_id():
    explanation = explain_token_error("invalid_request", "AADSTS90002: Tenant 'nope' not found.", tenant_id="nope")
    assert "does not know the tenant nope" in explanation.summary
    assert "Directory (tenant) ID" in explanation.fix


@pytest.mark.parametrize(("error", "description"), [
    ("invalid_scope", "AADSTS70011: The provided request must include a 'scope' input parameter."),
    ("invalid_scope", ""),
])
def test_invalid_scope_names_the_default_scope(error, description):
    explanation = explain_token_error(error, description)
    assert "scope" in explanation.summary
    assert "https://outlook.office365.com/.default" in explanation.fix


def test_an_unknown_entra_error_shows_its_code():
    explanation = explain_token_error("invalid_request", "AADSTS50059: No tenant-identifying information found.")
    assert "AADSTS50059" in explanation.summary and "AADSTS50059" in explanation.fix


def test_the_code_given_by_the_token_error_wins_over_the_text():
    explanation = explain_token_error("invalid_client", "something went wrong", aadsts="AADSTS7000222")
    assert "expired" in explanation.summary


def test_aadsts_code_is_found_in_a_description():
    assert aadsts_of("AADSTS700016: Application ... Trace ID: 1") == "AADSTS700016"
    assert aadsts_of("no code here") is None


def test_a_failed_token_step_is_explained_from_its_detail():
    explanation = explain_step("token", error="invalid_client: AADSTS7000215: Invalid client secret provided.")
    assert "AADSTS7000215" in explanation.summary
