"""The shared SMTP test kit behaves like a real submission server: TLS before AUTH, AUTH before mail, faults on cue."""

from __future__ import annotations

import asyncio
import base64
import ssl
import time

import aiosmtplib
import pytest
from relaydesk.outbound.tls import client_tls_context

MESSAGE = (b"From: support@acme.test\r\nTo: alice@example.test\r\nSubject: Hello\r\n"
           b"Message-ID: <m1@acme.test>\r\n\r\nLine one\r\n.leading dot\r\n")


async def _submit(server, *, password=None, recipients=("alice@example.test",), message=MESSAGE, timeout=5):
    client = aiosmtplib.SMTP(hostname=server.host, port=server.port, timeout=timeout,
                             tls_context=client_tls_context(server.ca_pem),
                             start_tls=server.mode == "starttls", use_tls=server.mode == "implicit")
    await client.connect()
    try:
        await client.login(server.username, password or server.password)
        return await client.sendmail("support@acme.test", list(recipients), message)
    finally:
        client.close()


def submit(server, **kwargs):
    return asyncio.run(_submit(server, **kwargs))


def test_starttls_auth_and_send_arrive_with_exact_bytes_and_the_authenticated_user(smarthost):
    errors, reply = submit(smarthost)

    assert errors == {}
    assert reply.startswith("2.0.0 Ok: queued as")
    [got] = smarthost.received
    assert got.data == MESSAGE
    assert got.mail_from == "support@acme.test"
    assert got.rcpt_tos == ["alice@example.test"]
    assert got.auth_user == "relay@acme.test"
    assert got.tls is True
    assert got.reply.startswith("250 2.0.0 Ok: queued as")
    assert (smarthost.stats.connections, smarthost.stats.auth_attempts, smarthost.stats.transactions) == (1, 1, 1)


def test_certificate_verifies_against_the_local_ca_only(smarthost):
    # A client with the system trust store only (no local CA) must refuse the server.
    async def untrusted():
        client = aiosmtplib.SMTP(hostname=smarthost.host, port=smarthost.port, timeout=5,
                                 tls_context=client_tls_context(None), start_tls=True)
        await client.connect()

    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        asyncio.run(untrusted())
    assert smarthost.received == []


def test_auth_before_starttls_is_refused(smarthost):
    async def auth_in_clear():
        client = aiosmtplib.SMTP(hostname=smarthost.host, port=smarthost.port, timeout=5, start_tls=False)
        await client.connect()
        try:
            await client.ehlo()
            token = base64.b64encode(f"\0{smarthost.username}\0{smarthost.password}".encode()).decode()
            auth = await client.execute_command(b"AUTH", b"PLAIN", token.encode())
            mail = await client.execute_command(b"MAIL", b"FROM:<support@acme.test>")
            return client.supports_extension("auth"), auth, mail
        finally:
            client.close()

    auth_offered, auth, mail = asyncio.run(auth_in_clear())

    assert not auth_offered
    assert auth.code == 530 and mail.code == 530
    assert smarthost.stats.auth_attempts == 0


def test_wrong_password_gets_535_and_nothing_is_accepted(smarthost):
    with pytest.raises(aiosmtplib.SMTPAuthenticationError) as refused:
        submit(smarthost, password="not-the-password")

    assert refused.value.code == 535
    assert smarthost.received == []
    # aiosmtplib tries each offered mechanism (PLAIN, LOGIN); every attempt failed.
    assert smarthost.stats.auth_failures == smarthost.stats.auth_attempts >= 1


def test_password_changed_at_run_time_takes_effect_on_next_auth(smarthost):
    old = smarthost.password
    smarthost.set_password(smarthost.username, "rotated-password")

    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        submit(smarthost, password=old)
    errors, _ = submit(smarthost, password="rotated-password")

    assert errors == {}
    assert len(smarthost.received) == 1


def test_implicit_tls_mode_accepts_auth_and_mail(make_smarthost):
    server = make_smarthost(mode="implicit")

    errors, _ = submit(server)

    assert errors == {}
    assert server.received[0].tls is True
    assert server.received[0].auth_user == server.username


def test_server_without_starttls_never_gets_auth(make_smarthost):
    server = make_smarthost(mode="none")

    with pytest.raises(aiosmtplib.SMTPException, match="STARTTLS"):
        submit(server)  # the client requires STARTTLS, as the relay does

    assert server.stats.auth_attempts == 0
    assert server.received == []


def test_certificate_for_the_wrong_host_is_rejected_by_a_verifying_client(make_smarthost):
    server = make_smarthost(cert_names=["wrong.example.net"])

    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        submit(server)

    assert server.stats.auth_attempts == 0


@pytest.mark.parametrize("command,reply,error", [
    ("MAIL", "451 4.3.0 Try again later", aiosmtplib.SMTPSenderRefused),
    ("MAIL", "552 5.3.4 Message size exceeds fixed limit", aiosmtplib.SMTPSenderRefused),
    ("RCPT", "550 5.1.1 User unknown", aiosmtplib.SMTPRecipientsRefused),
    ("RCPT", "452 4.5.3 Too many recipients", aiosmtplib.SMTPRecipientsRefused),
    ("DATA", "554 5.7.1 Rejected by policy", aiosmtplib.SMTPDataError),
    ("DATA", "451 4.7.500 Server busy", aiosmtplib.SMTPDataError),
])
def test_scripted_reply_is_what_the_client_sees(smarthost, command, reply, error):
    smarthost.faults.reply(command, reply)

    with pytest.raises(error) as refused:
        submit(smarthost)

    code = getattr(refused.value, "code", None) or refused.value.recipients[0].code
    assert code == int(reply[:3])
    assert smarthost.received == []


def test_421_closes_the_connection(smarthost):
    smarthost.faults.reply("MAIL", "421 4.3.2 Service shutting down")

    with pytest.raises((aiosmtplib.SMTPSenderRefused, aiosmtplib.SMTPServerDisconnected)):
        submit(smarthost)
    assert smarthost.received == []


def test_fault_for_one_recipient_refuses_only_that_recipient(smarthost):
    smarthost.faults.reply("RCPT", "550 5.1.1 User unknown", recipient="bob@example.test")

    errors, _ = submit(smarthost, recipients=["alice@example.test", "bob@example.test"])

    assert errors["bob@example.test"].code == 550
    assert smarthost.received[0].rcpt_tos == ["alice@example.test"]


def test_fault_limited_to_first_use_then_server_accepts(smarthost):
    smarthost.faults.reply("DATA", "451 4.3.0 Try later", times=1)

    with pytest.raises(aiosmtplib.SMTPDataError):
        submit(smarthost)
    errors, _ = submit(smarthost)

    assert errors == {}
    assert len(smarthost.received) == 1
    assert smarthost.stats.transactions == 2


def test_drop_after_final_dot_keeps_the_message_but_sends_no_reply(smarthost):
    smarthost.faults.drop_after_data()

    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        submit(smarthost)

    [got] = smarthost.received
    assert got.data == MESSAGE
    assert got.reply is None


def test_stall_makes_the_client_time_out(smarthost):
    smarthost.faults.stall("DATA", 3)

    started = time.monotonic()
    with pytest.raises(aiosmtplib.SMTPTimeoutError):
        submit(smarthost, timeout=0.5)

    assert time.monotonic() - started < 2.5


def test_stalled_greeting_times_out_the_connect(smarthost):
    smarthost.faults.stall("CONNECT", 3)

    with pytest.raises((aiosmtplib.SMTPConnectTimeoutError, aiosmtplib.SMTPTimeoutError)):
        submit(smarthost, timeout=0.5)


def test_repr_and_records_never_show_the_password(smarthost):
    submit(smarthost)

    assert smarthost.password not in repr(smarthost)
    assert smarthost.password not in repr(smarthost.received)


def test_server_stops_and_releases_its_port(make_smarthost):
    server = make_smarthost()
    port = server.port
    server.stop()

    with pytest.raises(OSError):
        asyncio.run(asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 2))


def test_a_started_server_has_counted_no_connection_until_a_client_connects(make_smarthost):
    # aiosmtpd's own start-up probe used to be counted now and then, so "one client, one connection" flaked.
    for _ in range(20):
        server = make_smarthost()
        time.sleep(0.01)
        assert server.stats.connections == 0
        submit(server)
        assert server.stats.connections == 1


def test_cram_md5_is_offered_on_request_and_checks_the_password(make_smarthost):
    server = make_smarthost(cram_md5=True)

    async def cram(password: str) -> None:
        client = aiosmtplib.SMTP(hostname=server.host, port=server.port, timeout=5, start_tls=True,
                                 tls_context=client_tls_context(server.ca_pem))
        async with client:
            await client.ehlo()
            assert client.server_auth_methods[0] == "cram-md5"
            await client.auth_crammd5(server.username, password)

    asyncio.run(cram(server.password))
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        asyncio.run(cram("not-it"))
    assert [(a.mechanism, a.ok, a.digest) for a in server.auth_log] == [("CRAM-MD5", True, None),
                                                                       ("CRAM-MD5", False, None)]


def test_the_auth_log_names_what_was_tried_by_digest_never_the_password(smarthost):
    from local.smarthost import password_digest

    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        submit(smarthost, password="Wrong-Pw-123")
    submit(smarthost)
    wrong, right = password_digest("Wrong-Pw-123"), password_digest(smarthost.password)
    # aiosmtplib's login() walks PLAIN, then LOGIN: two failed logins for one wrong password.
    assert [(a.mechanism, a.ok, a.digest) for a in smarthost.auth_log] == [
        ("PLAIN", False, wrong), ("LOGIN", False, wrong), ("PLAIN", True, right)]
    assert len(smarthost.failed_logins("Wrong-Pw-123")) == 2 and smarthost.failed_logins(smarthost.password) == []
    assert "Wrong-Pw-123" not in repr(smarthost.auth_log)


def test_starttls_can_be_withdrawn_and_offered_again_while_the_server_runs(smarthost):
    smarthost.offer_starttls(False)
    with pytest.raises(aiosmtplib.SMTPException, match=r"(?i)starttls"):
        submit(smarthost)
    smarthost.offer_starttls(True)
    errors, _ = submit(smarthost)
    assert errors == {} and smarthost.stats.auth_attempts == 1  # no credentials went while it was off


def test_the_certificate_can_be_replaced_and_a_reload_drops_open_sessions(smarthost):
    async def session_then_reload() -> bool:
        client = aiosmtplib.SMTP(hostname=smarthost.host, port=smarthost.port, timeout=5, start_tls=True,
                                 tls_context=client_tls_context(smarthost.ca_pem))
        await client.connect()
        await client.login(smarthost.username, smarthost.password)
        assert smarthost.drop_connections() == 1
        for _ in range(50):
            if not client.is_connected:
                return True
            await asyncio.sleep(0.05)
        return False

    assert asyncio.run(session_then_reload())
    smarthost.use_certificate(["wrong.example.net"])
    with pytest.raises((aiosmtplib.SMTPException, ssl.SSLError), match=r"(?i)certificate"):
        submit(smarthost)
    smarthost.use_certificate(["127.0.0.1", "localhost"])
    assert submit(smarthost)[0] == {}
