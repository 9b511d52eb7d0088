"""How each kind of answer is treated: delivered, retried later, failed for good, or held for new credentials."""

from __future__ import annotations

import pytest
from relaydesk.errors import (
    AuthenticationFailedError,
    CertificateVerificationError,
    PermanentDeliveryError,
    TlsRequiredError,
    TransientDeliveryError,
)
from relaydesk.outbound.policy import (
    MAX_VISIBILITY_SECONDS,
    Outcome,
    classify_code,
    classify_error,
    error_for_reply,
    retry_delay,
)


@pytest.mark.parametrize(("code", "outcome"), [
    (250, Outcome.DELIVERED), (251, Outcome.DELIVERED), (421, Outcome.DEFERRED), (451, Outcome.DEFERRED),
    (452, Outcome.DEFERRED), (550, Outcome.FAILED), (552, Outcome.FAILED), (554, Outcome.FAILED),
    (535, Outcome.AUTH_FAILED), (None, Outcome.DEFERRED)])
def test_reply_codes_map_to_outcomes(code, outcome):
    assert classify_code(code) is outcome


@pytest.mark.parametrize(("code", "kind", "outcome"), [
    (451, TransientDeliveryError, Outcome.DEFERRED), (550, PermanentDeliveryError, Outcome.FAILED),
    (535, AuthenticationFailedError, Outcome.AUTH_FAILED)])
def test_a_server_reply_becomes_a_typed_error_with_code_and_enhanced_status(code, kind, outcome):
    error = error_for_reply(code, "5.1.1 <x@y> no such user" if code >= 500 else "4.7.1 try later", "refused")
    assert isinstance(error, kind)
    assert error.smtp_code == code
    assert error.enhanced_status in {"5.1.1", "4.7.1"}
    assert classify_error(error) is outcome


def test_tls_and_certificate_failures_are_retried_later_never_sent_in_clear():
    assert classify_error(TlsRequiredError("no STARTTLS")) is Outcome.DEFERRED
    assert classify_error(CertificateVerificationError("wrong host")) is Outcome.DEFERRED


def test_retry_delay_grows_with_each_attempt_and_stays_within_sqs_bounds():
    delays = [retry_delay(n) for n in range(1, 8)]
    assert delays == sorted(delays) and len(set(delays)) > 4
    assert delays[0] >= 60
    assert max(delays) <= MAX_VISIBILITY_SECONDS
