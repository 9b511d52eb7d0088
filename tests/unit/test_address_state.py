"""The state machine of a support address walked whole: every transition from every phase is either in the table
(and lands where the table says, with its effects and its event) or refused with an error naming both."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from relaydesk.addresses import state
from relaydesk.addresses.model import (
    AddressKind,
    Connector,
    ConnectorState,
    ErrorTopic,
    SupportAddress,
    Verification,
    VerificationStatus,
)
from relaydesk.addresses.state import BACK_TO_WORK, TRANSITIONS, Direction, Effect, HoldReason, Phase
from relaydesk.credentials import SmtpCredentials, TlsMode
from relaydesk.errors import TransitionRefused
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store import memory
from relaydesk.store.memory import MemoryHeld

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
EMAIL = "support@acme.test"
FROM_PHASES = [phase for phase in Phase if phase is not Phase.DELETED]  # a deleted address is no longer there


def address_in(phase: Phase, *, outbound_verified: bool = True) -> SupportAddress | None:
    if phase is Phase.NEW:
        return None
    outbound = Verification(status=VerificationStatus.VERIFIED, verified_at=NOW) if outbound_verified \
        else Verification()
    if phase is Phase.FORWARDING:
        return SupportAddress(email=EMAIL, account_id="A1", kind=AddressKind.FORWARDING, outbound=outbound)
    held = ConnectorState(phase.value).held
    connector = Connector(host="smtp.acme.test", secret_arn="secret", state=ConnectorState(phase.value),
                          held_since=NOW if held else None, held_version="v1" if held else None)
    return SupportAddress(email=EMAIL, account_id="A1", kind=AddressKind.SMTP_CONNECTOR, connector=connector,
                          outbound=outbound, last_error="auth_failed: refused" if held else None,
                          last_error_about=ErrorTopic.SENDING if held else None)


def new_forwarding() -> SupportAddress:
    return SupportAddress(email=EMAIL, account_id="A1", kind=AddressKind.FORWARDING)


def new_connector() -> SupportAddress:
    return SupportAddress(email=EMAIL, account_id="A1", kind=AddressKind.SMTP_CONNECTOR,
                          connector=Connector(host="smtp.acme.test", secret_arn="secret"))


SAMPLES: dict[str, state.Transition] = {
    "create": state.Create(new_forwarding()),
    "connect": state.Connect(new_connector()),
    "verify_forwarding": state.StartVerification(Direction.FORWARDING, "TOKENF"),
    "forwarding_verified": state.VerificationPassed(Direction.FORWARDING),
    "forwarding_failed": state.VerificationFailed(Direction.FORWARDING, "no test mail came back"),
    "verify_outbound": state.StartVerification(Direction.OUTBOUND, "TOKENO"),
    "activate": state.VerificationPassed(Direction.OUTBOUND),
    "outbound_failed": state.VerificationFailed(Direction.OUTBOUND, "554 5.7.60 SendAsDenied"),
    "hold_credentials": state.Hold(HoldReason.CREDENTIALS, "auth_failed: 535 5.7.8", "v2"),
    "hold_tls": state.Hold(HoldReason.TLS, "tls_failed: no STARTTLS"),
    "release": state.Release("v3"),
    "note_error": state.NoteError("could not connect: timed out"),
    "clear_error": state.ClearError(frozenset(ErrorTopic)),
    "disable": state.Disable(),
    "enable": state.Enable(),
    "delete": state.Delete(),
    "change_settings": state.ChangeSettings(
        SmtpCredentials(host="smtp2.acme.test", port=465, tls_mode=TlsMode.IMPLICIT, username=EMAIL, password="pw"),
        version_id="v4"),
}


# Every change an address goes through: a table missing one of these would leave its write to someone else.
REQUIRED_TRANSITIONS = {"create", "connect", "verify_forwarding", "forwarding_verified", "forwarding_failed",
                        "verify_outbound", "activate", "outbound_failed", "hold_credentials", "hold_tls",
                        "release", "note_error", "clear_error", "disable", "enable", "delete", "change_settings"}


def test_the_table_has_every_transition_an_address_needs_and_each_has_a_sample():
    assert REQUIRED_TRANSITIONS <= set(TRANSITIONS)
    assert set(SAMPLES) == set(TRANSITIONS)
    assert {sample.name for sample in SAMPLES.values()} == set(TRANSITIONS)


CASES = [(name, phase, verified) for name in TRANSITIONS for phase in FROM_PHASES for verified in (True, False)]


@pytest.mark.parametrize(("name", "phase", "outbound_verified"), CASES)
def test_each_transition_from_each_phase_lands_where_the_table_says_or_is_refused(name, phase, outbound_verified):
    before = address_in(phase, outbound_verified=outbound_verified)
    snapshot = before.model_copy(deep=True) if before is not None else None
    transition = SAMPLES[name]
    allowed = TRANSITIONS[name]

    if phase not in allowed:
        with pytest.raises(TransitionRefused) as refused:
            state.apply(before, transition, NOW)
        assert refused.value.transition == name and refused.value.phase == phase.value
        assert f"cannot {name.replace('_', ' ')}" in refused.value.message and refused.value.action
        assert before == snapshot  # refused: nothing changed
        return

    applied = state.apply(before, transition, NOW)

    expected = allowed[phase]
    if expected == BACK_TO_WORK:
        expected = Phase.ACTIVE if outbound_verified else Phase.PENDING
    assert applied.phase is expected
    if expected is not Phase.DELETED:
        assert state.phase_of(applied.address) is expected
    releases = name in state.RELEASING and expected not in (Phase.AUTH_FAILED, Phase.TLS_FAILED) and applied.changed
    assert (Effect.RELEASE_HELD in applied.effects) is releases
    if applied.changed:
        assert applied.address.events[-1].transition == name and applied.address.events[-1].at == NOW
        assert applied.address.updated_at == NOW
    assert before == snapshot  # a function of the address: the input is left as it was
    if applied.address.connector is not None and not applied.address.connector.state.held:
        assert applied.address.connector.held_since is None and applied.address.connector.held_version is None


def test_a_hold_keeps_its_first_time_and_names_the_refused_version():
    held = state.apply(address_in(Phase.ACTIVE), SAMPLES["hold_credentials"], NOW).address
    later = state.apply(held, state.Hold(HoldReason.CREDENTIALS, "auth_failed: again", "v5"),
                        NOW.replace(hour=11)).address
    assert later.connector.held_since == NOW and later.connector.held_version == "v5"
    assert later.last_error == "auth_failed: again" and later.last_error_about is ErrorTopic.SENDING


@pytest.mark.parametrize(("fix", "about", "cleared"), [
    ("release", ErrorTopic.SENDING, True), ("release", ErrorTopic.ROTATION, True),
    ("release", ErrorTopic.FORWARDING, False), ("activate", ErrorTopic.SENDING, True),
    ("activate", ErrorTopic.FORWARDING, False), ("forwarding_verified", ErrorTopic.FORWARDING, True),
    ("forwarding_verified", ErrorTopic.SENDING, False), ("change_settings", ErrorTopic.ROTATION, True),
    ("change_settings", ErrorTopic.SENDING, True), ("note_error", ErrorTopic.SENDING, False)])
def test_the_last_error_goes_when_what_it_is_about_is_fixed_and_only_then(fix, about, cleared):
    address = address_in(Phase.ACTIVE)
    address.last_error, address.last_error_about = "something went wrong", about
    after = state.apply(address, SAMPLES[fix], NOW).address
    if fix == "note_error":
        assert after.last_error == "could not connect: timed out"
    else:
        assert (after.last_error is None) is cleared


def test_a_verification_outcome_of_an_earlier_test_mail_changes_nothing():
    address = address_in(Phase.PENDING, outbound_verified=False)
    started = state.apply(address, state.StartVerification(Direction.OUTBOUND, "NEWTOKEN"), NOW).address
    stale = state.apply(started, state.VerificationFailed(Direction.OUTBOUND, "refused", token="OLDTOKEN"), NOW)
    assert not stale.changed and stale.address.outbound.status is VerificationStatus.PENDING


def test_testing_a_verified_connector_again_keeps_its_route_and_a_release_goes_back_to_active():
    held = address_in(Phase.AUTH_FAILED)
    testing = state.apply(held, state.StartVerification(Direction.OUTBOUND, "T2"), NOW).address
    assert testing.outbound.status is VerificationStatus.PENDING and state.outbound_proven(testing)
    assert state.apply(testing, state.Release("v1"), NOW).phase is Phase.ACTIVE


def test_nothing_to_change_writes_nothing(memory_stores):
    state.create(memory_stores, state.Connect(new_connector()), now=NOW)
    before = memory_stores.directory.get_address(EMAIL)
    after = state.change(memory_stores, "A1", EMAIL, state.ClearError(frozenset(ErrorTopic)))
    assert after == before and memory_stores.directory.get_address(EMAIL).events == before.events


def test_events_are_bounded():
    address = address_in(Phase.ACTIVE)
    for n in range(state.MAX_EVENTS + 5):
        address = state.apply(address, state.NoteError(f"error {n}"), NOW).address
    assert len(address.events) == state.MAX_EVENTS and address.events[-1].detail == f"error {state.MAX_EVENTS + 4}"


def test_leaving_a_hold_releases_every_parked_notification_and_staying_releases_none(memory_stores):
    stores = replace(memory_stores, held=MemoryHeld())
    state.create(stores, state.Connect(new_connector()), now=NOW)
    state.change(stores, "A1", EMAIL, state.Hold(HoldReason.TLS, "tls_failed: no STARTTLS"))
    parked = [Notification(notification_id=new_id("N"), account_id="A1", support_address=EMAIL,
                           recipients=["jane@example.net"], subject="s", text_body="b") for _ in range(3)]
    for note in parked:
        stores.held.park(EMAIL, note)

    state.change(stores, "A1", EMAIL, state.NoteError("still no STARTTLS"))
    assert stores.queue.sent == [] and len(stores.held.list(EMAIL)) == 3

    after = state.change(stores, "A1", EMAIL, state.Release("v1"))
    assert after.connector.state is ConnectorState.PENDING  # outbound never verified: back to pending
    assert sorted(n.notification_id for n, _ in stores.queue.sent) == sorted(n.notification_id for n in parked)
    assert stores.held.list(EMAIL) == []


def test_a_deleted_address_is_gone_and_a_refusal_names_the_address_and_what_to_do(memory_stores):
    state.create(memory_stores, state.Create(new_forwarding()), now=NOW)
    with pytest.raises(TransitionRefused) as refused:
        state.change(memory_stores, "A1", EMAIL, state.Disable())
    assert refused.value.message == f"{EMAIL}: cannot disable: it is not connected to a smarthost"
    state.change(memory_stores, "A1", EMAIL, state.Delete())
    assert memory_stores.directory.get_address(EMAIL) is None


def test_a_release_killed_half_way_loses_nothing_and_the_next_releasing_transition_sends_the_rest(memory_stores):
    class DyingQueue(memory.MemoryQueue):
        """The invocation is killed after the first notification went back to the queue."""

        def send(self, notification, delay_seconds=0):
            if len(self.sent) == 1:
                raise KeyboardInterrupt("killed")
            super().send(notification, delay_seconds)

    stores = replace(memory_stores, held=MemoryHeld(), queue=DyingQueue())
    state.create(stores, state.Connect(new_connector()), now=NOW)
    for transition in (state.StartVerification(Direction.OUTBOUND, "T"), state.VerificationPassed(Direction.OUTBOUND),
                       state.Hold(HoldReason.CREDENTIALS, "auth_failed: 535", "v1")):
        state.change(stores, "A1", EMAIL, transition)
    parked = [Notification(notification_id=new_id("N"), account_id="A1", support_address=EMAIL,
                           recipients=["jane@example.net"], subject="s", text_body="b") for _ in range(3)]
    for note in parked:
        stores.held.park(EMAIL, note)

    with pytest.raises(KeyboardInterrupt):
        state.change(stores, "A1", EMAIL, state.Release("v1"))
    assert stores.directory.get_address(EMAIL).connector.state is ConnectorState.ACTIVE
    assert len(stores.queue.sent) == 1 and len(stores.held.list(EMAIL)) == 2  # one sent, none lost

    stores = replace(stores, queue=memory.MemoryQueue())
    state.change(stores, "A1", EMAIL, state.StartVerification(Direction.OUTBOUND, "T2"))
    state.change(stores, "A1", EMAIL, state.VerificationPassed(Direction.OUTBOUND))  # the admin's verify
    assert len(stores.queue.sent) == 2 and stores.held.list(EMAIL) == []  # every one sent once


def test_an_admins_release_ends_the_hold_and_counts_what_it_sent_leftovers_too(memory_stores):
    stores = replace(memory_stores, held=MemoryHeld())
    state.create(stores, state.Connect(new_connector()), now=NOW)

    def park(count: int) -> None:
        for _ in range(count):
            stores.held.park(EMAIL, Notification(notification_id=new_id("N"), account_id="A1", support_address=EMAIL,
                                                 recipients=["jane@example.net"], subject="s", text_body="b"))

    state.change(stores, "A1", EMAIL, state.Hold(HoldReason.CREDENTIALS, "auth_failed: 535", "v1"))
    park(2)
    assert state.release(stores, "A1", EMAIL) == 2
    address = stores.directory.get_address(EMAIL)
    assert address.connector.state is ConnectorState.PENDING and address.events[-1].detail == "released by an admin"
    park(1)  # left behind by a release killed half-way: the address is no longer held
    assert state.release(stores, "A1", EMAIL) == 1
    assert len(stores.queue.sent) == 3 and stores.held.list(EMAIL) == []
    state.change(stores, "A1", EMAIL, state.Disable())
    with pytest.raises(TransitionRefused):
        state.release(stores, "A1", EMAIL)
