"""The shaper's arithmetic: what a provider counting on its side sees is never over its limits, whatever the batches,
the send durations and the crashes; the waiting ones get turns in order, evenly paced at the limit's rate."""

from __future__ import annotations

import bisect
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from relaydesk.addresses.providers import PROFILES, Limits
from relaydesk.outbound import shaping
from relaydesk.outbound.shaping import Ask, Reason, ShaperState

MICROSOFT = PROFILES["microsoft365"].limits  # 30 a minute, 10,000 recipients a day, 3 connections


def take(state, limits, n, now, *, recipients=1, due=False, lease="L", seconds=120.0):
    turn_at = now if due else None
    return shaping.admit(state, limits, [Ask(recipients, turn_at)] * n, now, lease_id=lease, lease_seconds=seconds)


def test_a_burst_goes_out_at_thirty_a_minute_under_three_connections():
    state = ShaperState()
    turns = [take(state, MICROSOFT, 10, 0.0, lease=f"L{i}") for i in range(3)]
    assert [len(t.admitted) for t in turns] == [10, 10, 10]

    fourth = take(state, MICROSOFT, 10, 0.5, lease="L3")
    assert fourth.lease is None and set(fourth.reasons.values()) == {Reason.CONNECTIONS}

    for i, turn in enumerate(turns):  # each batch finishes its ten sends within two seconds
        shaping.release(state, turn.lease, [1.0 + i * 0.3 + k * 0.01 for k in range(10)], sent_recipients=10, now=2.0)
    fifth = take(state, MICROSOFT, 10, 3.0, lease="L4")
    assert fifth.admitted == [] and set(fifth.reasons.values()) == {Reason.RATE}
    turns_at = sorted(fifth.waits.values())
    # the first a minute after the first send completed (1.00 s), then one every two seconds (a minute / 30), not a
    # wave of thirty at once
    assert 61.0 <= turns_at[0] <= 61.1
    assert all(abs(later - earlier - 2.0) < 1e-6 for earlier, later in pairwise(turns_at))
    sixth = take(state, MICROSOFT, 25, 3.5, lease="L5")
    assert min(sixth.waits.values()) >= turns_at[-1] + 2.0 - 1e-6 and max(sixth.waits.values()) >= 121.0


def test_new_notifications_queue_behind_the_ones_given_a_turn_and_a_due_turn_goes_first():
    state = ShaperState()
    shaping.release(state, take(state, MICROSOFT, 30, 0.0).lease, [0.5] * 30, sent_recipients=30, now=1.0)
    waiting = take(state, MICROSOFT, 35, 1.0, lease="W")
    turns_at = sorted(waiting.booked.values())
    assert turns_at[0] >= 60.5 and turns_at[30] >= turns_at[0] + 60  # in order, never more than thirty a minute
    assert all(later - earlier >= 2.0 - 1e-6 for earlier, later in pairwise(turns_at))  # evenly paced

    at_turn = turns_at[0] + 0.1
    mixed = shaping.admit(state, MICROSOFT, [Ask(1), Ask(1, turns_at[0])], at_turn, lease_id="M", lease_seconds=60)
    assert mixed.admitted == [1]  # the due one goes; the new one waits behind the turns given
    assert mixed.reasons[0] == Reason.LINE and mixed.booked[0] >= turns_at[-1]


def test_a_turn_given_under_a_lower_limit_does_not_hold_back_new_ones_once_the_limit_is_raised():
    slow = Limits(messages_per_minute=1, recipients_per_day=10_000, recipients_per_message=500, connections=3)
    state = ShaperState()
    shaping.release(state, take(state, slow, 1, 0.0).lease, [0.5], sent_recipients=1, now=1.0)
    far = take(state, slow, 1, 1.0, lease="W").booked[0]
    assert far >= 60.5  # a minute at one a minute
    raised = take(state, MICROSOFT, 1, 2.0, lease="N")  # the admin reset the limit: thirty a minute
    assert raised.reasons[0] == Reason.LINE and raised.booked[0] <= 2.0 + 2.0  # in the gap before it, paced


def test_a_killed_invocation_gives_its_connection_back_at_the_lease_expiry_and_its_sends_count_until_then():
    state = ShaperState()
    take(state, MICROSOFT, 10, 0.0, lease="dead", seconds=70.0)  # never released
    for i in range(2):
        take(state, MICROSOFT, 1, 0.0, lease=f"busy{i}")
    assert take(state, MICROSOFT, 1, 1.0, lease="x").lease is None  # three connections taken

    later = take(state, MICROSOFT, 25, 71.0, lease="after")
    assert later.lease == "after"
    # the dead batch's 10 sends count as completed at 70 s, the two live ones are still open: 30 - 12 = 18 may go
    assert len(later.admitted) == 18


def test_the_recipients_of_a_day_are_never_more_than_the_limit_and_come_back_a_day_later():
    limits = Limits(messages_per_minute=1000, recipients_per_day=100, recipients_per_message=10, connections=5)
    state = ShaperState()
    first = take(state, limits, 12, 0.0, recipients=10)
    assert len(first.admitted) == 10 and set(first.reasons.values()) == {Reason.DAY}
    shaping.release(state, first.lease, [1.0] * 10, sent_recipients=100, now=2.0)
    assert min(first.waits.values()) >= shaping.DAY  # not before the day has slid past the first sends
    later = take(state, limits, 1, 3600.0, recipients=10, lease="b")  # the line holds the first two's turns too
    assert later.admitted == [] and later.reasons == {0: Reason.DAY}  # its ticket names what binds longest
    turn = max(first.waits.values())
    assert turn <= shaping.DAY + 2 * shaping.DAY_BUCKET + 1  # at most two ten-minute buckets past the day
    assert len(take(state, limits, 2, turn, recipients=10, due=True, lease="c").admitted) == 2


def test_admitted_but_unsent_recipients_are_given_back_to_the_day():
    limits = Limits(messages_per_minute=1000, recipients_per_day=100, recipients_per_message=10, connections=5)
    state = ShaperState()
    turn = take(state, limits, 10, 0.0, recipients=10)
    shaping.release(state, turn.lease, [1.0] * 4, sent_recipients=40, now=2.0)  # six were never sent
    assert len(take(state, limits, 10, 3.0, recipients=10, lease="again").admitted) == 6


def test_a_throttle_reply_pauses_doubles_while_they_follow_and_halves_the_rate_until_it_recovers():
    state = ShaperState()
    assert shaping.slow_down(state, 30.0, 100.0) == 130.0
    assert shaping.effective(MICROSOFT, state, 100.0) == (15, 1)
    paused = take(state, MICROSOFT, 2, 110.0)
    assert paused.admitted == [] and set(paused.reasons.values()) == {Reason.PAUSED}
    assert min(paused.waits.values()) >= 130.0

    assert shaping.slow_down(state, 30.0, 140.0) == 200.0  # the second in a row: 60 s
    assert shaping.effective(MICROSOFT, state, 140.0)[0] == 8  # halved again from 0.57 (recovering since 100 s)
    assert shaping.effective(MICROSOFT, state, 140.0 + shaping.RECOVERY)[0] == 30
    assert shaping.slow_down(state, 30.0, 140.0 + 2 * shaping.STREAK_RESET) == 140.0 + 2 * shaping.STREAK_RESET + 30


# --- the provider's view -------------------------------------------------------------------------------------------

def most_in_any_window(times: list[float], window: float) -> int:
    """The most completions any window (t - window, t] holds, as the provider counts."""
    times = sorted(times)
    return max((bisect.bisect_right(times, t) - bisect.bisect_right(times, t - window) for t in times), default=0)


def most_recipients_in_any_day(sends: list[tuple[float, int]]) -> int:
    sends = sorted(sends)
    best = 0
    for end, _ in sends:
        best = max(best, sum(r for at, r in sends if end - shaping.DAY < at <= end))
    return best


batch = st.tuples(
    st.floats(min_value=0.0, max_value=30.0),  # seconds since the previous batch asked
    st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=10),  # recipients per notification
    st.floats(min_value=0.0, max_value=20.0),  # how long each send takes
    st.booleans(),  # the invocation is killed before it gives the lease back
)


@settings(max_examples=120, deadline=None)
@given(st.lists(batch, min_size=1, max_size=60), st.integers(min_value=1, max_value=20),
       st.integers(min_value=5, max_value=60))
def test_no_minute_and_no_day_the_provider_counts_is_ever_over_the_limits(batches, per_minute, per_day):
    limits = Limits(messages_per_minute=per_minute, recipients_per_day=per_day, recipients_per_message=5,
                    connections=2)
    state = ShaperState()
    now = 0.0
    completions: list[float] = []
    recipients: list[tuple[float, int]] = []
    open_batches: list[tuple[float, str, list[float], int]] = []  # (release time, lease, completions, recipients)
    for index, (gap, sizes, duration, killed) in enumerate(batches):
        now += gap
        for done in [b for b in open_batches if b[0] <= now]:
            open_batches.remove(done)
            shaping.release(state, done[1], done[2], sent_recipients=done[3], now=done[0])
        turn = shaping.admit(state, limits, [Ask(size) for size in sizes], now, lease_id=f"L{index}",
                             lease_seconds=30.0)
        if turn.lease is None:
            continue
        # the sends go one after another; a killed invocation's sends still reach the server before its lease ends
        sent = [now + min(duration * (k + 1) / len(turn.admitted), 29.0) for k in range(len(turn.admitted))]
        completions += sent
        recipients += [(at, sizes[i]) for at, i in zip(sent, turn.admitted, strict=True)]
        if not killed:
            open_batches.append((max(sent), turn.lease, sent, sum(sizes[i] for i in turn.admitted)))
    assert most_in_any_window(completions, shaping.WINDOW) <= per_minute
    assert most_recipients_in_any_day(recipients) <= per_day


day_batch = st.tuples(st.floats(min_value=0.0, max_value=4 * 3600.0), st.lists(st.integers(1, 5), min_size=1,
                                                                               max_size=10),
                      st.floats(min_value=0.0, max_value=20.0))


@settings(max_examples=150, deadline=None)
@given(st.lists(day_batch, min_size=2, max_size=40), st.integers(min_value=5, max_value=40))
def test_no_sliding_day_holds_more_recipients_than_the_limit_over_days_of_traffic(batches, per_day):
    limits = Limits(messages_per_minute=1000, recipients_per_day=per_day, recipients_per_message=5, connections=2)
    state = ShaperState()
    now = 0.0
    recipients: list[tuple[float, int]] = []
    for index, (gap, sizes, duration) in enumerate(batches):
        now += gap
        turn = shaping.admit(state, limits, [Ask(size, now) for size in sizes], now, lease_id=f"L{index}",
                             lease_seconds=60.0)
        sent = [now + duration for _ in turn.admitted]
        recipients += [(at, sizes[i]) for at, i in zip(sent, turn.admitted, strict=True)]
        if turn.lease:
            shaping.release(state, turn.lease, sent, sent_recipients=sum(sizes[i] for i in turn.admitted),
                            now=now + duration)
    assert most_recipients_in_any_day(recipients) <= per_day


def test_a_send_at_the_end_of_a_bucket_still_counts_a_full_day_later():
    limits = Limits(messages_per_minute=1000, recipients_per_day=10, recipients_per_message=10, connections=2)
    state = ShaperState()
    first = take(state, limits, 1, shaping.DAY_BUCKET - 0.1, recipients=10)
    shaping.release(state, first.lease, [shaping.DAY_BUCKET + 5.0], sent_recipients=10,
                    now=shaping.DAY_BUCKET + 5.0)
    # the provider still counts that send until 600 + 5 + 86400 s
    for at in (shaping.DAY, shaping.DAY + shaping.DAY_BUCKET, shaping.DAY + shaping.DAY_BUCKET + 4.0):
        assert take(state, limits, 1, at, recipients=1, due=True, lease=f"at{at}").admitted == []


def test_a_batchs_further_connections_lease_what_the_mailbox_has_left_and_none_while_it_is_paused():
    state = ShaperState()
    assert take(state, MICROSOFT, 5, 0.0, lease="first").lease == "first"
    more = shaping.lease_connections(state, MICROSOFT, 1.0, lease_ids=["b", "c", "d"], lease_seconds=60.0)
    assert more == ["b", "c"]  # Microsoft 365's three, the batch's first included
    assert take(state, MICROSOFT, 1, 1.5, lease="another").lease is None  # another invocation finds none free

    shaping.release(state, "first", [2.0] * 5, sent_recipients=5, now=2.0, connections=("b", "c"))
    assert state.leases == {}  # the further ones go back with the first, in the same change
    assert take(state, MICROSOFT, 1, 2.5, lease="another").lease == "another"
    shaping.release(state, "another", [3.0], sent_recipients=1, now=3.0)

    shaping.slow_down(state, 30.0, 3.0)  # a throttle reply: paused, then half the connections
    assert shaping.lease_connections(state, MICROSOFT, 4.0, lease_ids=["e"], lease_seconds=60.0) == []
    assert take(state, MICROSOFT, 1, 40.0, lease="after").lease == "after"
    assert shaping.lease_connections(state, MICROSOFT, 40.0, lease_ids=["f", "g"], lease_seconds=60.0) == []
