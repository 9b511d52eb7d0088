"""What a BDAT group carries and what its replies mean (RFC 3030 with RFC 2920): the body as it is, framed by its
length; the envelope's refusals before the BDAT's own error; the doubtful window once the group was written."""

from __future__ import annotations

import aiosmtplib
import pytest
from aiosmtplib.response import SMTPResponse
from relaydesk.errors import NothingAcceptedError, PermanentDeliveryError, TransientDeliveryError
from relaydesk.outbound.chunked import chunked_group, judge_chunk, judge_cut_short, over_size
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.pipelined import reply_held_back
from relaydesk.outbound.pipelining import GroupReplies, PipeliningSMTP
from relaydesk.outbound.smtp import Accepted

BODY = b"Subject: x\r\n\r\n.hi\r\n.\r\n"
MESSAGE = Outgoing("a@acme.test", ("b@example.net", "c@example.net"), BODY)
LOST = aiosmtplib.SMTPServerDisconnected("Connection lost")


def _replies(*pairs: tuple[int, str]) -> list[SMTPResponse]:
    return [SMTPResponse(code, text) for code, text in pairs]


def test_the_group_is_the_envelope_then_bdat_last_and_the_body_untouched():
    group, owed = chunked_group(MESSAGE)

    assert group == (b"MAIL FROM:<a@acme.test>\r\nRCPT TO:<b@example.net>\r\nRCPT TO:<c@example.net>\r\n"
                     b"BDAT 22 LAST\r\n" + BODY)  # no dot-stuffing: the length frames the body
    assert owed == 4 and len(BODY) == 22


def test_a_body_without_a_final_crlf_gets_one_counted_in_the_length():
    group, _ = chunked_group(Outgoing("a@acme.test", ("b@example.net",), b"Subject: x\r\n\r\nhi"))

    assert group.endswith(b"BDAT 18 LAST\r\nSubject: x\r\n\r\nhi\r\n")


def test_an_accepted_chunk_delivers_with_the_refused_recipients_noted_and_no_reset():
    sent, reset = judge_chunk(MESSAGE, _replies((250, "Ok"), (250, "Ok"), (452, "4.2.2 Mailbox full"),
                                                (250, "2.0.0 Ok: queued as 4F2A")))

    assert isinstance(sent, Accepted) and sent.reply == "250 2.0.0 Ok: queued as 4F2A" and not reset
    assert [(r.recipient, r.smtp_code) for r in sent.refused] == [("c@example.net", 452)]


def test_a_refused_mail_from_is_the_outcome_not_the_bdat_error_that_follows():
    sent, reset = judge_chunk(MESSAGE, _replies((553, "5.7.1 Not owned by user"), (503, "5.5.1 need MAIL"),
                                                (503, "5.5.1 need MAIL"), (503, "5.5.1 need MAIL command")))

    assert isinstance(sent, PermanentDeliveryError) and sent.server_reply == "553 5.7.1 Not owned by user"
    assert sent.refused == [] and reset


def test_every_recipient_refused_is_the_mildest_refusal_not_the_bdat_554():
    sent, reset = judge_chunk(MESSAGE, _replies((250, "Ok"), (550, "5.1.1 No such user"), (450, "4.2.0 Greylisted"),
                                                (554, "5.5.1 Error: no valid recipients")))

    assert isinstance(sent, TransientDeliveryError) and sent.smtp_code == 450 and reset
    assert [r.smtp_code for r in sent.refused] == [550, 450]


@pytest.mark.parametrize("reply, kind", [((554, "5.7.1 Spam"), PermanentDeliveryError),
                                         ((451, "4.3.0 Try later"), TransientDeliveryError)])
def test_a_refused_bdat_last_is_the_messages_outcome_as_an_end_of_data_reply_is(reply, kind):
    sent, reset = judge_chunk(MESSAGE, _replies((250, "Ok"), (550, "5.1.1 No"), (250, "Ok"), reply))

    assert type(sent) is kind and sent.smtp_code == reply[0] and reset
    assert [r.recipient for r in sent.refused] == ["b@example.net"]


def test_a_421_on_mail_from_means_nothing_was_accepted_and_no_reset_on_a_closing_connection():
    sent, reset = judge_chunk(MESSAGE, _replies((421, "4.3.2 Shutting down"), (503, "x"), (503, "x"), (503, "x")))

    assert isinstance(sent, NothingAcceptedError) and sent.server_reply == "421 4.3.2 Shutting down" and not reset


def test_a_connection_lost_after_the_envelope_was_accepted_is_doubtful():
    error = judge_cut_short(MESSAGE, _replies((250, "Ok"), (250, "Ok")), LOST)

    assert isinstance(error, TransientDeliveryError) and not isinstance(error, NothingAcceptedError)
    assert "may have accepted it" in error.message


def test_a_connection_lost_before_any_reply_is_doubtful_too_since_the_body_left_with_the_envelope():
    error = judge_cut_short(MESSAGE, [], aiosmtplib.SMTPReadTimeoutError("Timed out"))

    assert isinstance(error, TransientDeliveryError) and not isinstance(error, NothingAcceptedError)


def test_a_connection_lost_after_a_refusal_that_ended_the_transaction_keeps_the_refusal():
    refused_mail = judge_cut_short(MESSAGE, _replies((550, "5.7.1 Sender refused")), LOST)
    nobody = judge_cut_short(MESSAGE, _replies((250, "Ok"), (550, "5.1.1 No"), (550, "5.1.1 No")), LOST)

    assert isinstance(refused_mail, PermanentDeliveryError) and refused_mail.smtp_code == 550
    assert isinstance(nobody, PermanentDeliveryError) and len(nobody.refused) == 2


def test_a_421_before_the_chunk_was_read_means_nothing_was_accepted():
    error = judge_cut_short(MESSAGE, _replies((250, "Ok"), (421, "4.4.2 Timeout, closing")), LOST)

    assert isinstance(error, NothingAcceptedError) and error.smtp_code == 421


def test_a_message_over_the_servers_size_is_a_552_before_the_wire():
    assert over_size(MESSAGE, None) is None and over_size(MESSAGE, len(BODY)) is None
    error = over_size(MESSAGE, len(BODY) - 1)

    assert isinstance(error, PermanentDeliveryError) and error.smtp_code == 552 and error.enhanced_status == "5.3.4"


@pytest.mark.parametrize("advertised, limit", [("36700160", 36700160), ("", None), ("0", None), ("-5", None),
                                               ("12abc", None), ("9" * 40, None), ("٣٤", None)])
def test_the_servers_size_keyword_is_read_as_a_bound_only_when_it_is_a_plain_positive_number(advertised, limit):
    client = PipeliningSMTP()
    client.esmtp_extensions = {"size": advertised}

    assert client.size_limit == limit


def test_a_421_to_the_rset_that_opened_the_group_means_nothing_was_accepted():
    error = judge_cut_short(MESSAGE, [], LOST, before=_replies((421, "4.4.2 Timeout, closing")))

    assert isinstance(error, NothingAcceptedError) and error.smtp_code == 421


@pytest.mark.parametrize("arrived, held", [
    ((0.001, 0.001, 0.045), True),  # Postfix without TCP_NODELAY: its BDAT reply waited for a delayed ACK
    ((0.050, 0.050, 0.100), True),  # across a 25 ms path: a round trip more for the ACK
    ((0.080, 0.080, 0.115), False),  # the chunk took 35 ms to handle, under half the round trip
    ((0.001, 0.001, 0.020), False),  # loopback: 19 ms to store the message
    ((0.050,), False),
])
def test_a_bdat_reply_is_held_back_when_it_comes_late_after_the_envelopes(arrived, held):
    exchanged = GroupReplies([SMTPResponse(250, "Ok")] * len(arrived), written_at=0.0, arrived=arrived)

    assert reply_held_back(exchanged) is held
