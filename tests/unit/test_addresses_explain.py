"""Smarthost failures explained in plain words, with the fix an admin can apply."""

from __future__ import annotations

import pytest
from relaydesk.addresses.explain import explain_reply, explain_step
from relaydesk.addresses.presets import resolve
from relaydesk.credentials import TlsMode
from relaydesk.errors import ConfigurationError


def test_exchange_online_smtp_auth_disabled_names_the_powershell_fix():
    explanation = explain_reply(535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled "
                                     "for the Tenant. Visit https://aka.ms/smtp_auth_disabled")
    assert "SMTP AUTH is disabled for the tenant or for this mailbox" in explanation.summary
    assert "Set-CASMailbox" in explanation.fix and "-SmtpClientAuthenticationDisabled $false" in explanation.fix


@pytest.mark.parametrize(("code", "reply", "expected"), [
    (530, "5.7.57 Client not authenticated to send mail. [AM0PR]", "not authenticated to send"),
    (554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; 5.7.60",
     "send as"),
    (534, "5.7.9 Application-specific password required. Learn more at https://support.google.com/mail",
     "app password"),
    (535, "5.7.8 Username and Password not accepted.", "username or password"),
])
def test_known_provider_replies(code, reply, expected):
    explanation = explain_reply(code, reply)
    assert expected in (explanation.summary + explanation.fix).lower()


def test_wrong_host_certificate_says_to_use_the_name_on_the_certificate():
    explanation = explain_step("certificate", error="Hostname mismatch, certificate is not valid for 'mx.acme.com'.",
                               host="mx.acme.com")
    assert "not valid for the host name mx.acme.com" in explanation.summary
    assert "host name written on the server's certificate" in explanation.fix


def test_untrusted_certificate_points_to_ca_bundle():
    explanation = explain_step("certificate", error="self-signed certificate in certificate chain")
    assert "--ca-bundle" in explanation.fix and "never skips" in explanation.fix


def test_missing_starttls_is_explained():
    explanation = explain_step("starttls", error="STARTTLS extension not supported by server", host="h", port=587)
    assert "does not offer STARTTLS" in explanation.summary and "465" in explanation.fix


def test_presets_fill_host_port_and_tls():
    assert resolve("microsoft365") == ("smtp.office365.com", 587, TlsMode.STARTTLS)
    assert resolve("google") == ("smtp.gmail.com", 587, TlsMode.STARTTLS)
    assert resolve("amazon-ses", region="eu-west-1")[0] == "email-smtp.eu-west-1.amazonaws.com"
    assert resolve("generic", host="mail.acme.com", tls_mode="implicit") == ("mail.acme.com", 465, TlsMode.IMPLICIT)
    with pytest.raises(ConfigurationError):
        resolve("generic")
