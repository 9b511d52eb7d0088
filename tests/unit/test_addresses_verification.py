"""Forwarding and outbound verification with fakes: the test mail goes out, comes back (or not), states change."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from relaydesk.addresses import lifecycle, verification
from relaydesk.addresses.model import ConnectorState, VerificationStatus
from relaydesk.errors import RuleViolation
from relaydesk.markers import VERIFICATION_HEADER, verification_marker
from relaydesk.notification import NotificationKind

from tests.tenancy import account_of
from tests.unit.test_addresses_rules import creds, passing_checker

SYSTEM = "support@acme.mail.relaydesk.test"


class Outbox:
    """The default outbound as a list: what the forwarding test would have sent."""

    def __init__(self) -> None:
        self.sent = []

    def __call__(self, message) -> None:
        self.sent.append(message)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.hooks = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.5)
        for hook in self.hooks:
            hook(self.now)


@pytest.fixture
def connected(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "acme", "Acme")
    lifecycle.connect_address(memory_stores, account.account_id, "support@acme.com", creds(),
                              checker=passing_checker())
    return memory_stores


def test_forwarding_test_mail_carries_the_token_in_header_and_body(connected):
    outbox = Outbox()
    address = verification.start_forwarding(connected, account_of(connected, "support@acme.com"),
                                            "support@acme.com", sender=outbox)

    mail = outbox.sent[0]
    token = address.forwarding.token
    assert address.forwarding.status is VerificationStatus.PENDING and address.forwarding.started_at
    assert mail["To"] == "support@acme.com"
    assert mail[VERIFICATION_HEADER] == token
    assert verification_marker(token) in mail.get_content()
    assert mail["Auto-Submitted"] == "auto-generated"


def test_forwarded_test_mail_marks_forwarding_verified(connected):
    outbox = Outbox()
    token = verification.start_forwarding(connected, account_of(connected, "support@acme.com"),
                                          "support@acme.com", sender=outbox).forwarding.token
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    handled = verification.on_verification_mail(connected, token=token, recipient=SYSTEM, forwarding_hops=1,
                                                received_at=when)

    address = connected.directory.get_address("support@acme.com")
    assert handled
    assert address.forwarding.status is VerificationStatus.VERIFIED
    assert address.forwarding.verified_at == when
    assert address.connector.state is ConnectorState.PENDING  # outbound not verified yet


def test_unknown_token_is_not_handled(connected):
    assert not verification.on_verification_mail(connected, token="DEADBEEF00", recipient="support@acme.com")


def test_test_mail_through_two_forwarding_hops_fails_with_the_reason(connected):
    token = verification.start_forwarding(connected, account_of(connected, "support@acme.com"),
                                          "support@acme.com", sender=Outbox()).forwarding.token
    assert verification.on_verification_mail(connected, token=token, recipient="support@acme.com",
                                             forwarding_hops=2)
    address = connected.directory.get_address("support@acme.com")
    assert address.forwarding.status is VerificationStatus.FAILED
    assert "2 forwarding hops" in address.forwarding.error


def test_outbound_verification_needs_forwarding_first(connected):
    with pytest.raises(RuleViolation) as caught:
        verification.start_outbound(connected, account_of(connected, "support@acme.com"), "support@acme.com")
    assert caught.value.code == "forwarding_not_verified"


def test_outbound_verification_queues_a_verification_notification_and_activates_on_return(connected):
    token = verification.start_forwarding(connected, account_of(connected, "support@acme.com"),
                                          "support@acme.com", sender=Outbox()).forwarding.token
    verification.on_verification_mail(connected, token=token, recipient=SYSTEM, forwarding_hops=1)

    address = verification.start_outbound(connected, account_of(connected, "support@acme.com"), "support@acme.com")
    notification, _ = connected.queue.sent[-1]

    assert notification.kind is NotificationKind.VERIFICATION
    assert notification.support_address == notification.recipients[0] == "support@acme.com"
    assert notification.verification_token == address.outbound.token
    assert verification_marker(address.outbound.token) in notification.text_body

    verification.on_verification_mail(connected, token=notification.verification_token,
                                      recipient="support@acme.com", forwarding_hops=1)
    address = connected.directory.get_address("support@acme.com")
    assert address.outbound.status is VerificationStatus.VERIFIED
    assert address.connector.state is ConnectorState.ACTIVE
    assert address.sends_through_connector


def test_verify_succeeds_when_both_mails_come_back(connected):
    clock, outbox = FakeClock(), Outbox()

    def inbound_delivers(_now: float) -> None:
        # The customer's forward brings back whatever was sent: the test mail, then the relay's notification.
        if outbox.sent:
            message = outbox.sent.pop()
            verification.on_verification_mail(connected, token=message[VERIFICATION_HEADER], recipient=SYSTEM,
                                               forwarding_hops=1)
        if connected.queue.sent:
            notification, _ = connected.queue.sent.pop()
            verification.on_verification_mail(connected, token=notification.verification_token,
                                              recipient=SYSTEM, forwarding_hops=1)

    clock.hooks.append(inbound_delivers)
    progress: list[str] = []
    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=30, sender=outbox,
                                  on_progress=progress.append, sleep=clock.sleep, clock=clock)

    assert verification.is_verified(address)
    assert address.connector.state is ConnectorState.ACTIVE
    assert "forwarding: verified" in progress and "outbound: verified" in progress
    lifecycle.set_default(connected, account_of(connected, "support@acme.com"), "support@acme.com")  # now allowed


def test_forwarding_timeout_fails_with_hints(connected):
    clock = FakeClock()
    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=10, sender=Outbox(),
                                  sleep=clock.sleep, clock=clock)

    assert address.forwarding.status is VerificationStatus.FAILED
    assert "server level" in address.forwarding.error
    assert "one forwarding hop" in address.forwarding.error
    assert SYSTEM in address.forwarding.error
    assert address.outbound.status is VerificationStatus.UNVERIFIED  # never started
    assert not connected.queue.sent


def test_outbound_timeout_fails_with_hints_and_keeps_connector_pending(connected):
    clock, outbox = FakeClock(), Outbox()

    def only_forwarding_returns(_now: float) -> None:
        if outbox.sent:
            verification.on_verification_mail(connected, token=outbox.sent.pop()[VERIFICATION_HEADER],
                                              recipient=SYSTEM, forwarding_hops=1)

    clock.hooks.append(only_forwarding_returns)
    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=10, sender=outbox,
                                  sleep=clock.sleep, clock=clock)

    assert address.forwarding.status is VerificationStatus.VERIFIED
    assert address.outbound.status is VerificationStatus.FAILED
    assert "send as" in address.outbound.error
    assert address.connector.state is ConnectorState.PENDING


def test_verify_again_after_a_timeout_starts_over_with_a_new_token(connected):
    clock = FakeClock()
    first = verification.verify(connected, account_of(connected, "support@acme.com"),
                                "support@acme.com", timeout=5, sender=Outbox(),
                                sleep=clock.sleep, clock=clock).forwarding.token
    outbox = Outbox()
    clock.hooks.append(lambda _now: outbox.sent and verification.on_verification_mail(
        connected, token=outbox.sent.pop()[VERIFICATION_HEADER], recipient=SYSTEM, forwarding_hops=1))
    second = verification.verify(connected, account_of(connected, "support@acme.com"),
                                 "support@acme.com", timeout=5, sender=outbox,
                                 sleep=clock.sleep, clock=clock)
    assert second.forwarding.token != first
    assert second.forwarding.status is VerificationStatus.VERIFIED
    # the old token no longer verifies anything
    assert not verification.on_verification_mail(connected, token=first, recipient=SYSTEM)


def test_auth_failure_during_outbound_verification_ends_the_wait(connected):
    clock, outbox = FakeClock(), Outbox()

    def relay_reports_auth_failure(_now: float) -> None:
        if outbox.sent:
            verification.on_verification_mail(connected, token=outbox.sent.pop()[VERIFICATION_HEADER],
                                              recipient=SYSTEM, forwarding_hops=1)
        elif connected.queue.sent:
            connected.queue.sent.pop()
            address = connected.directory.get_address("support@acme.com")
            address.connector.state = ConnectorState.AUTH_FAILED
            address.last_error = "535 5.7.3 Authentication unsuccessful"
            connected.directory.put_address(address)

    clock.hooks.append(relay_reports_auth_failure)
    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=600, sender=outbox,
                                  sleep=clock.sleep, clock=clock)
    assert address.outbound.status is VerificationStatus.FAILED
    assert "535 5.7.3" in address.outbound.error
    assert clock.now < 600


def test_enable_then_outbound_verification_again(connected):
    clock, outbox = FakeClock(), Outbox()

    def inbound_delivers(_now: float) -> None:
        if outbox.sent:
            verification.on_verification_mail(connected, token=outbox.sent.pop()[VERIFICATION_HEADER],
                                              recipient=SYSTEM, forwarding_hops=1)
        if connected.queue.sent:
            verification.on_verification_mail(connected, token=connected.queue.sent.pop()[0].verification_token,
                                              recipient=SYSTEM, forwarding_hops=1)

    clock.hooks.append(inbound_delivers)
    verification.verify(connected, account_of(connected, "support@acme.com"),
                        "support@acme.com", timeout=30, sender=outbox, sleep=clock.sleep, clock=clock)
    lifecycle.disable(connected, account_of(connected, "support@acme.com"), "support@acme.com")
    lifecycle.enable(connected, account_of(connected, "support@acme.com"), "support@acme.com")

    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=30, sender=outbox,
                                  sleep=clock.sleep, clock=clock)
    assert address.connector.state is ConnectorState.ACTIVE


def test_relay_refusing_the_verification_mail_ends_the_wait(connected):
    clock, outbox = FakeClock(), Outbox()

    def relay_refuses(_now: float) -> None:
        if outbox.sent:
            verification.on_verification_mail(connected, token=outbox.sent.pop()[VERIFICATION_HEADER],
                                              recipient=SYSTEM, forwarding_hops=1)
        elif connected.queue.sent:
            connected.queue.sent.pop()
            address = connected.directory.get_address("support@acme.com")
            address.last_error = ("the verification mail was refused: 554 5.2.0 SendAsDeniedException; "
                                  "MapiExceptionSendAsDenied 5.7.60")
            connected.directory.put_address(address)

    clock.hooks.append(relay_refuses)
    address = verification.verify(connected, account_of(connected, "support@acme.com"),
                                  "support@acme.com", timeout=600, sender=outbox,
                                  sleep=clock.sleep, clock=clock)
    assert address.outbound.status is VerificationStatus.FAILED
    assert "5.7.60" in address.outbound.error
    assert clock.now < 600
