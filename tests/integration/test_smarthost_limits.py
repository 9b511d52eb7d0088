"""The local smarthost enforces a provider's sending limits per signed-in mailbox, time-scaled, and answers over them
as Microsoft 365 does."""

from __future__ import annotations

import smtplib
import time

import pytest
from relaydesk.outbound.tls import client_tls_context

from local.provider_limits import CONCURRENT, DAILY, SendingLimits, microsoft365

MESSAGE = b"Subject: hi\r\n\r\nhello\r\n"


def signed_in(server) -> smtplib.SMTP:
    smtp = smtplib.SMTP(server.host, server.port, timeout=10)
    smtp.starttls(context=client_tls_context(server.ca_pem))
    smtp.login(server.username, server.password)
    return smtp


def test_a_fourth_mailbox_transaction_at_once_gets_exchange_onlines_432(make_smarthost):
    server = make_smarthost(limits=microsoft365())
    clients = [signed_in(server) for _ in range(4)]
    try:
        for smtp in clients[:3]:
            assert smtp.mail(server.username)[0] == 250
        code, text = clients[3].mail(server.username)
        assert f"{code} {text.decode()}" == CONCURRENT
        clients[0].rcpt("jane@example.net")
        assert clients[0].data(MESSAGE)[0] == 250  # one transaction ends: the fourth may start
        assert clients[3].mail(server.username)[0] == 250
        clients[1].rset()
        assert [e.kind for e in server.limits.events] == ["connections"]
    finally:
        for smtp in clients:
            smtp.close()


def test_over_thirty_in_a_minute_is_taken_but_counted_as_throttled_as_exchange_online_delays_it(make_smarthost):
    server = make_smarthost(limits=microsoft365())
    with signed_in(server) as smtp:
        for _ in range(31):
            smtp.sendmail(server.username, ["jane@example.net"], MESSAGE)
    assert [e.kind for e in server.limits.events] == ["minute"]
    assert server.limits.most_in_a_minute(server.username) == 31


def test_with_time_scaled_a_minute_passes_in_half_a_second(make_smarthost):
    server = make_smarthost(limits=microsoft365(time_scale=120))
    with signed_in(server) as smtp:
        for _ in range(20):
            smtp.sendmail(server.username, ["jane@example.net"], MESSAGE)
        time.sleep(0.6)  # 72 scaled seconds
        for _ in range(20):
            smtp.sendmail(server.username, ["jane@example.net"], MESSAGE)
    assert server.limits.events == [] and server.limits.most_in_a_minute(server.username) == 20


def test_the_days_recipients_used_up_get_the_submission_quota_refusal(make_smarthost):
    server = make_smarthost(limits=SendingLimits(recipients_per_day=5))
    with signed_in(server) as smtp:
        smtp.sendmail(server.username, ["a@example.net", "b@example.net", "c@example.net"], MESSAGE)
        with pytest.raises(smtplib.SMTPDataError) as refused:
            smtp.sendmail(server.username, ["d@example.net", "e@example.net", "f@example.net"], MESSAGE)
    assert f"{refused.value.smtp_code} {refused.value.smtp_error.decode()}" == DAILY
    assert len(server.received) == 1 and server.limits.most_recipients_in_a_day(server.username) == 3


def test_recipients_over_the_per_message_limit_are_refused_at_rcpt(make_smarthost):
    server = make_smarthost(limits=SendingLimits(recipients_per_message=2))
    with signed_in(server) as smtp:
        refused = smtp.sendmail(server.username, ["a@example.net", "b@example.net", "c@example.net"], MESSAGE)
    assert refused == {"c@example.net": (452, b"4.5.3 Too many recipients")}
    assert server.received[0].rcpt_tos == ["a@example.net", "b@example.net"]
