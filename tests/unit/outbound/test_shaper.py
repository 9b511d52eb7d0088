"""The shared shaper: every change is one conditional write; a lost race is computed again on the winner's state, so
concurrent relays never admit more than the limit between them."""

from __future__ import annotations

import threading

import pytest
from relaydesk.addresses.providers import PROFILES
from relaydesk.errors import ShaperBusyError
from relaydesk.outbound.shaper import Shaper, mailbox_key
from relaydesk.outbound.shaping import Ask
from relaydesk.outbound.turns import MailboxTurn
from relaydesk.store.memory import MemoryShaperStates
from relaydesk.store.ports import StoredState

MICROSOFT = PROFILES["microsoft365"].limits
KEY = mailbox_key("smtp.office365.com", "support@acme.test")


class FixedClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.at = now

    def now(self) -> float:
        return self.at

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def shaper_seconds(self, real: float) -> float:
        return real


def test_the_key_is_the_mailbox_at_its_smarthost_and_names_no_address():
    assert KEY == mailbox_key("SMTP.office365.com ", "Support@Acme.test")
    assert KEY != mailbox_key("smtp.office365.com", "billing@acme.test")
    assert "acme" not in KEY and KEY.startswith("SHAPER#")


def test_an_uncontended_change_is_one_write_and_no_read():
    states = MemoryShaperStates()
    shaper = Shaper(states, FixedClock())
    turn = shaper.take(KEY, MICROSOFT, [Ask(1)] * 3, lease_id="a", lease_seconds=60)
    shaper.give_back(KEY, turn.lease, [1000.5] * 3, sent_recipients=3)
    assert (states.writes, states.conflicts) == (2, 0)


def test_a_write_that_lost_a_race_is_computed_again_on_the_winners_state():
    states = MemoryShaperStates()
    mine, theirs = Shaper(states, FixedClock()), Shaper(states, FixedClock())
    mine.take(KEY, MICROSOFT, [Ask(1)] * 10, lease_id="mine-1", lease_seconds=60)
    theirs.take(KEY, MICROSOFT, [Ask(1)] * 15, lease_id="theirs", lease_seconds=60)  # read mine, then wrote
    second = mine.take(KEY, MICROSOFT, [Ask(1)] * 10, lease_id="mine-2", lease_seconds=60)  # my cache is stale
    assert states.conflicts == 1
    assert len(second.admitted) == 5  # 30 - 10 - 15: nothing admitted twice


def test_concurrent_relays_never_admit_more_than_the_minute_allows():
    states = MemoryShaperStates()
    clock = FixedClock()
    admitted: list[int] = []
    lock = threading.Lock()

    def relay(worker: int) -> None:
        shaper = Shaper(states, clock)
        for batch in range(10):
            turn = shaper.take(KEY, MICROSOFT, [Ask(1)] * 10, lease_id=f"{worker}-{batch}", lease_seconds=60)
            with lock:
                admitted.append(len(turn.admitted))
            if turn.lease:
                shaper.give_back(KEY, turn.lease, [clock.now()] * len(turn.admitted),
                                 sent_recipients=len(turn.admitted))

    threads = [threading.Thread(target=relay, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 30


class AlwaysLosing(MemoryShaperStates):
    def write(self, key: str, body: str, version: int) -> StoredState | None:
        self.conflicts += 1
        return StoredState(None, version + 1)  # somebody else always wrote first


def test_a_shaper_that_keeps_losing_gives_up_with_a_typed_error_and_admits_nothing():
    states = AlwaysLosing()
    with pytest.raises(ShaperBusyError):
        Shaper(states, FixedClock()).take(KEY, MICROSOFT, [Ask(1)], lease_id="x", lease_seconds=60)
    assert states.writes == 0 and states.conflicts == 8


class ThrottledOnce(MemoryShaperStates):
    """The shaper's table refuses the next `failures` writes, as `DynamoShaperStates` does when DynamoDB still
    throttles after the SDK's retries."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def write(self, key: str, body: str, version: int) -> StoredState | None:
        if self.failures:
            self.failures -= 1
            raise ShaperBusyError("writing the sending-limit state failed: ProvisionedThroughputExceededException")
        return super().write(key, body, version)


def test_a_throttled_give_back_is_tried_again_so_the_mailbox_connections_are_free_for_other_invocations():
    states = ThrottledOnce()
    mine, theirs = Shaper(states, FixedClock()), Shaper(states, FixedClock())
    turn = mine.take(KEY, MICROSOFT, [Ask(1)] * 3, lease_id="mine", lease_seconds=60)
    mailbox = MailboxTurn(mine, KEY, turn.lease, limits=MICROSOFT, lease_seconds=lambda: 60.0,
                          remaining_ms=lambda: 30_000)
    assert mailbox.more_connections(2) == 2  # all three of Microsoft's connections are this invocation's now
    assert theirs.take(KEY, MICROSOFT, [Ask(1)], lease_id="t1", lease_seconds=60).lease is None

    states.failures = 2
    mailbox.close()

    assert states.failures == 0  # both refusals were met, and the third try landed
    assert theirs.take(KEY, MICROSOFT, [Ask(1)], lease_id="t2", lease_seconds=60).lease == "t2"


def test_a_give_back_that_never_lands_leaves_the_leases_to_expire_and_raises_nothing():
    states = ThrottledOnce()
    shaper = Shaper(states, FixedClock())
    turn = shaper.take(KEY, MICROSOFT, [Ask(1)], lease_id="mine", lease_seconds=60)
    states.failures = 1_000
    MailboxTurn(shaper, KEY, turn.lease, limits=MICROSOFT, remaining_ms=lambda: 0).close()  # no time left: one try
    assert states.failures == 999
