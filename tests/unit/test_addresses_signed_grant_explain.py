"""Plain words and the fix for every refusal of a Google service account's sign-in and of an Entra ID app's
certificate, as the admin reads them on a failed live check or a held address."""

from __future__ import annotations

import pytest
from relaydesk.addresses.explain import explain_google_token_error, explain_reply, explain_token_error

SA = "relaydesk-smtp@acme-mail.iam.gserviceaccount.com"
CLIENT_ID = "104583920154728301944"
MAILBOX = "support@acme.test"


@pytest.mark.parametrize(("error", "description", "meaning", "fix"), [
    ("unauthorized_client", "Client is unauthorized to retrieve access tokens using this method, or client not "
     "authorized for any of the scopes requested.", "domain-wide delegation is not set up",
     f"Manage Domain Wide Delegation > Add new: Client ID {CLIENT_ID}"),
    ("invalid_grant", "Invalid JWT Signature.", "key was deleted or disabled", f"Service accounts > {SA} > Keys"),
    ("invalid_grant", "Invalid email or User ID", f"does not know {MAILBOX} as a user", "not a group, an alias"),
    ("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
     "Check your iat and exp values in the JWT claim.", "outside its validity time", "clock"),
    ("invalid_client", "The OAuth client was not found.", f"does not know the service account {SA}",
     "IAM & Admin > Service accounts"),
    ("disabled_client", "The OAuth client was disabled.", f"{SA} is disabled", "Enable"),
    ("deleted_client", "The OAuth client was deleted.", f"{SA} was deleted", "undelete it within 30 days"),
    ("admin_policy_enforced", "", "admin policy blocks", "App access control"),
    ("access_denied", "", "user is suspended", "Directory > Users"),
    ("invalid_scope", "Invalid OAuth scope or ID token audience provided.", "refused the requested scope",
     "exactly the scope https://mail.google.com/"),
])
def test_each_google_token_refusal_has_its_own_meaning_and_fix(error, description, meaning, fix):
    explanation = explain_google_token_error(error, description, service_account=SA, client_id=CLIENT_ID,
                                             mailbox=MAILBOX)

    assert meaning in explanation.summary and fix in explanation.fix


def test_a_google_refusal_no_row_knows_still_says_what_google_said_and_where_to_look():
    explanation = explain_google_token_error("temporarily_unavailable", "try later", client_id=CLIENT_ID)

    assert "temporarily_unavailable" in explanation.summary and "try later" in explanation.summary
    assert CLIENT_ID in explanation.fix and "docs/providers/google.md" in explanation.fix


def test_fixes_that_need_no_new_key_say_how_to_release_the_held_mail():
    fix = explain_google_token_error("unauthorized_client", "", mailbox=MAILBOX).fix

    assert f"relaydesk addresses rotate {MAILBOX} --service-account-file KEY.json" in fix and "same key" in fix


def test_gmail_refusing_a_service_account_token_is_not_explained_as_a_password_problem():
    reply = "5.7.8 Username and Password not accepted. For more information, go to"

    google = explain_reply(535, reply, username=MAILBOX, oauth=True, google=True)
    password = explain_reply(535, reply, username=MAILBOX)

    assert "access token" in google.summary and "app password" not in google.fix
    assert "Gmail is on" in google.fix and MAILBOX in google.fix
    assert "password" in password.summary.lower()


@pytest.mark.parametrize(("code", "meaning", "fix"), [
    ("AADSTS700027", "does not accept the certificate", "Upload certificate"),
    ("AADSTS700024", "outside its validity time", "clock"),
    ("AADSTS700021", "names another app", "--client-id"),
    ("AADSTS50012", "malformed or addressed to another token endpoint", "--token-url"),
])
def test_entra_certificate_refusals_are_explained(code, meaning, fix):
    explanation = explain_token_error("invalid_client", f"{code}: something", client_id="app-1")

    assert meaning in explanation.summary and fix in explanation.fix
