"""The live check against a real local smarthost: each step reported, failures explained, TLS never downgraded."""

from __future__ import annotations

import asyncio
import socket

import pytest
from relaydesk.addresses.live_check import live_check, run_live_check
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import AuthenticationFailedError, CertificateVerificationError, TlsRequiredError


def credentials_for(server, *, password=None, host=None, tls_mode=TlsMode.STARTTLS, ca=True) -> SmtpCredentials:
    return SmtpCredentials(host=host or server.host, port=server.port, tls_mode=tls_mode, username=server.username,
                           password=password or server.password, ca_bundle_pem=server.ca_pem if ca else None)


def names(report) -> list[tuple[str, bool]]:
    return [(step.name, step.ok) for step in report.steps]


def test_starttls_check_passes_every_step(smarthost):
    heard = []
    report = run_live_check(credentials_for(smarthost), on_step=heard.append, sender="support@acme.test")

    assert report.ok, report
    assert names(report) == [("dns", True), ("tcp", True), ("greeting", True), ("starttls", True),
                             ("certificate", True), ("auth", True), ("sender", True)]
    assert [s.name for s in heard] == [s.name for s in report.steps]  # reported as they happened
    assert "TLSv1." in report.steps[3].detail
    assert "valid for 127.0.0.1" in report.steps[4].detail
    assert all(step.elapsed_ms >= 0 for step in report.steps)
    assert smarthost.received == []  # a check sends no mail


def test_host_name_is_verified_against_the_certificate(smarthost):
    # "localhost" is on the certificate; the resolver maps it to the loopback server.
    report = run_live_check(credentials_for(smarthost, host="localhost"),
                            resolver=lambda host, port: ["127.0.0.1"])
    assert report.ok, report
    assert "valid for localhost" in report.steps[4].detail


def test_implicit_tls_check_passes(make_smarthost):
    server = make_smarthost(mode="implicit")
    report = run_live_check(credentials_for(server, tls_mode=TlsMode.IMPLICIT))
    assert report.ok, report
    assert names(report) == [("dns", True), ("tcp", True), ("tls", True), ("certificate", True), ("auth", True)]


def test_wrong_password_is_a_535_explained_without_the_password(smarthost):
    wrong = "not-the-Password-42"
    report = run_live_check(credentials_for(smarthost, password=wrong))

    failed = report.failed_step
    assert failed.name == "auth" and failed.smtp_code == 535
    assert "username or password" in report.summary
    error = report.to_error()
    assert isinstance(error, AuthenticationFailedError)
    assert error.smtp_code == 535
    everything = report.model_dump_json() + str(error) + repr(error) + (error.action or "")
    assert wrong not in everything and smarthost.password not in everything


def test_server_without_starttls_gets_no_credentials(make_smarthost):
    server = make_smarthost(mode="none")
    report = run_live_check(credentials_for(server))

    assert names(report)[-1] == ("starttls", False)
    assert "does not offer STARTTLS" in report.summary
    assert "--tls implicit" in report.fix
    assert isinstance(report.to_error(), TlsRequiredError)
    assert server.stats.auth_attempts == 0


def test_certificate_for_another_host_is_refused_before_auth(make_smarthost):
    server = make_smarthost(cert_names=["wrong.example.net"])
    report = run_live_check(credentials_for(server))

    assert report.failed_step.name == "certificate"
    assert "not valid for the host name 127.0.0.1" in report.summary
    assert isinstance(report.to_error(), CertificateVerificationError)
    assert server.stats.auth_attempts == 0


def test_untrusted_ca_points_to_ca_bundle(smarthost):
    report = run_live_check(credentials_for(smarthost, ca=False))
    assert report.failed_step.name == "certificate"
    assert "--ca-bundle" in report.fix
    assert smarthost.stats.auth_attempts == 0


def test_implicit_tls_on_a_starttls_port_is_explained(smarthost):
    report = run_live_check(credentials_for(smarthost, tls_mode=TlsMode.IMPLICIT))
    assert report.failed_step.name == "tls"
    assert "--tls starttls" in report.fix


def test_closed_port_fails_at_tcp():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = run_live_check(SmtpCredentials(host="127.0.0.1", port=port, username="u", password="p"), timeout=5)
    assert names(report) == [("dns", True), ("tcp", False)]
    assert "587 for STARTTLS" in report.fix


def test_unresolvable_host_fails_at_dns():
    def resolver(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    report = run_live_check(SmtpCredentials(host="smtp.nowhere.invalid", username="u", password="p"),
                            resolver=resolver)
    assert names(report) == [("dns", False)]
    assert "does not resolve" in report.summary


def test_sender_refused_by_the_server_is_explained(smarthost):
    smarthost.faults.reply("MAIL", "550 5.7.60 SMTP; Client does not have permissions to send as this sender")
    report = run_live_check(credentials_for(smarthost), sender="support@acme.test")
    assert report.failed_step.name == "sender"
    assert "send as" in report.summary.lower()


def test_check_runs_from_inside_an_event_loop(smarthost):
    async def caller():
        sync_report = run_live_check(credentials_for(smarthost))  # a sync caller inside a loop
        async_report = await live_check(credentials_for(smarthost))
        return sync_report, async_report

    sync_report, async_report = asyncio.run(caller())
    assert sync_report.ok and async_report.ok


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_password_never_in_steps(make_smarthost, mode):
    server = make_smarthost(mode=mode)
    tls = TlsMode.IMPLICIT if mode == "implicit" else TlsMode.STARTTLS
    report = run_live_check(credentials_for(server, tls_mode=tls))
    assert report.ok
    assert server.password not in report.model_dump_json()
