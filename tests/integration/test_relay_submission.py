"""The SMTP submission client on its own against a real local smarthost: the bytes on the wire are the bytes
given, byte for byte, and a refused login never starts a transaction."""

from __future__ import annotations

import asyncio

import pytest
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError
from relaydesk.outbound.smtp import SmtpSubmission, Timeouts

MESSAGE = (b"From: support@acme.test\r\nTo: jane@example.net\r\nSubject: dots\r\nMessage-ID: <x@acme.test>\r\n\r\n"
           b".a line that starts with a dot\r\n..two dots\r\n.\r\n \r\nend\r\n")


def _submission(server, password: str | None = None) -> SmtpSubmission:
    credentials = SmtpCredentials(host="127.0.0.1", port=server.port, username=server.username,
                                  password=password or server.password, ca_bundle_pem=server.ca_pem)
    return SmtpSubmission(credentials, timeouts=Timeouts(connect=3, command=3, data=3))


async def _send_all(submission: SmtpSubmission, count: int) -> list[str]:
    await submission.open()
    try:
        return [(await submission.send("support@acme.test", ["jane@example.net"], MESSAGE)).reply
                for _ in range(count)]
    finally:
        await submission.close()


def test_the_server_receives_exactly_the_bytes_given_even_lines_that_start_with_a_dot(smarthost):
    replies = asyncio.run(_send_all(_submission(smarthost), 2))
    assert [r.data for r in smarthost.received] == [MESSAGE, MESSAGE]
    assert all(r.startswith("250 ") for r in replies)
    assert smarthost.stats.auth_attempts == 1  # two transactions on one connection


def test_a_refused_login_raises_the_servers_reply_without_the_password(smarthost):
    with pytest.raises(AuthenticationFailedError) as refused:
        asyncio.run(_send_all(_submission(smarthost, password="Wrong-Pw-123"), 1))
    assert refused.value.smtp_code == 535
    assert "Wrong-Pw-123" not in str(refused.value) and "Wrong-Pw-123" not in refused.value.server_reply
    assert smarthost.stats.mail_commands == 0


def test_a_refused_password_is_one_failed_login_where_aiosmtplibs_login_makes_three(make_smarthost):
    """The incident: a server offering CRAM-MD5, PLAIN and LOGIN saw three failures per refused login, because
    aiosmtplib's `login()` walks every mechanism it knows. The client layer tries one: PLAIN."""
    import aiosmtplib
    from relaydesk.outbound.tls import client_tls_context

    server = make_smarthost(cram_md5=True)

    async def walk() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.port, start_tls=True,
                               tls_context=client_tls_context(server.ca_pem))
        async with smtp:
            with pytest.raises(aiosmtplib.SMTPAuthenticationError):
                await smtp.login(server.username, "Wrong-Pw-123")

    asyncio.run(walk())
    assert [a.mechanism for a in server.failed_logins()] == ["CRAM-MD5", "PLAIN", "LOGIN"]  # the incident

    server.auth_log.clear()
    with pytest.raises(AuthenticationFailedError):
        asyncio.run(_send_all(_submission(server, password="Wrong-Pw-123"), 1))
    assert [(a.mechanism, a.ok) for a in server.auth_log] == [("PLAIN", False)]
    assert len(server.failed_logins("Wrong-Pw-123")) == 1

    asyncio.run(_send_all(_submission(server), 1))
    assert server.auth_log[-1].mechanism == "PLAIN" and server.auth_log[-1].ok


def test_the_session_reports_its_state_step_by_step(smarthost):
    session = _submission(smarthost)

    async def steps() -> list[tuple]:
        seen = []
        await session.connect()
        seen.append((session.connected, session.tls, session.authenticated))
        await session.secure()
        seen.append((session.tls.version, session.capabilities.starttls, session.capabilities.auth_mechanisms))
        await session.authenticate()
        seen.append((session.authenticated, session.mechanism, session.authenticated_as))
        await session.close()
        seen.append((session.connected, session.authenticated))
        return seen

    connected, secured, authenticated, closed = asyncio.run(steps())
    assert connected == (True, None, False)
    assert secured[0].startswith("TLSv1.") and secured[1] is False  # after STARTTLS it is not offered again
    assert set(secured[2]) == {"PLAIN", "LOGIN"}
    assert authenticated == (True, "PLAIN", smarthost.username)
    assert closed == (False, False)
