"""Provider throttle replies are recognised by the table: they fail nothing and hold nothing."""

from __future__ import annotations

import pytest
from relaydesk.errors import AuthenticationFailedError, PermanentDeliveryError
from relaydesk.notification import Notification
from relaydesk.outbound.policy import Outcome, classify_error, error_for_reply
from relaydesk.outbound.split import NOTIFICATION_ID, part_id, split
from relaydesk.outbound.throttles import THROTTLE_REPLIES, describe, throttle_rule

THROTTLES = [
    (432, "4.3.2 Concurrent connections limit exceeded. Visit https://aka.ms/concurrent_sending"),
    (432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
    (554, "5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message"),
    (550, "5.2.251 Sender throttled due to continuous mailbox full errors"),
    (550, "5.2.252 Sender throttled due to continuous send as denied errors"),
    (550, "5.2.253 Sender throttled due to continuous invalid license errors"),
    (550, "5.2.254 Sender throttled due to continuous too many recipients errors"),
    (550, "5.2.255 Sender throttled due to continuous invalid recipients errors"),
    (421, "4.7.0 Try again later, closing connection. (EHLO) - gsmtp"),
    (450, "4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages"),
    (450, "4.2.1 Peak SMTP relay limit exceeded for customer. This is a temporary error."),
    (550, "5.4.5 Daily user sending limit exceeded. For more information on Gmail's sending limits"),
    (421, "4.4.2 Message submission rate for this client has exceeded the configured limit"),
    (450, "4.7.1 <unknown[203.0.113.9]>: Client host rejected: Error: too much mail from 203.0.113.9"),
]
NOT_THROTTLES = [
    (550, "5.1.1 User unknown"),
    (554, "5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied"),
    (421, "4.7.0 TLS required for RCPT domain, closing connection."),
    (451, "4.3.0 Temporary System Problem. Try again later"),
    (421, "4.3.2 Service shutting down"),
    (535, "5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."),
]


@pytest.mark.parametrize("code,text", THROTTLES)
def test_each_providers_throttle_reply_waits_instead_of_failing(code, text):
    rule = throttle_rule(code, f"{code} {text}")
    assert rule is not None and rule.pause > 0
    assert classify_error(error_for_reply(code, text, "refused")) is Outcome.THROTTLED
    assert describe(rule, f"{code} {text}").startswith("waiting for the mailbox's sending limit: ")


@pytest.mark.parametrize("code,text", NOT_THROTTLES)
def test_other_replies_keep_their_meaning(code, text):
    assert throttle_rule(code, f"{code} {text}") is None
    assert classify_error(error_for_reply(code, text, "refused")) is not Outcome.THROTTLED


def test_a_refused_login_is_never_a_throttle_even_with_a_throttle_looking_reply():
    error = AuthenticationFailedError("refused", smtp_code=535, server_reply="535 4.3.2 try later")
    assert classify_error(error) is Outcome.AUTH_FAILED
    assert classify_error(PermanentDeliveryError("x", smtp_code=550, server_reply="550 5.1.1 unknown")) \
        is Outcome.FAILED


def test_every_row_says_what_it_means():
    assert all(rule.meaning and rule.provider for rule in THROTTLE_REPLIES)


def notification(to: int, cc: int = 0) -> Notification:
    return Notification(notification_id="N01J9ZK3Q8V2X4B6C7D", account_id="A1", support_address="support@acme.test",
                        recipients=[f"to{i}@example.net" for i in range(to)],
                        cc=[f"cc{i}@example.net" for i in range(cc)], subject="s", text_body="b")


def test_recipients_over_the_limit_go_in_parts_that_keep_who_is_to_and_who_is_cc():
    parts = split(notification(150, 70), 100)
    assert [(len(p.recipients), len(p.cc)) for p in parts] == [(100, 0), (50, 50), (20, 0)]
    assert parts[2].recipients[0] == "cc50@example.net"  # a part without a To sends to its Cc as To
    assert parts[0].notification_id == "N01J9ZK3Q8V2X4B6C7D"
    assert [p.notification_id for p in split(notification(150, 70), 100)] == [p.notification_id for p in parts]
    assert all(NOTIFICATION_ID.fullmatch(p.notification_id) for p in parts)
    assert len({p.notification_id for p in parts}) == 3
    small = notification(3)
    assert split(small, 100) == [small]
    assert NOTIFICATION_ID.fullmatch(part_id("not-an-id", 2))
