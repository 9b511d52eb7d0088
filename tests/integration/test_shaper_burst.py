"""The done-when of the sending limits, short: a burst for one Microsoft 365 mailbox through four concurrent relay
workers (moto in its own process with SQS fair queues' order, the local smarthost enforcing Exchange Online's limits
on the same scaled clock) gets no throttle reply, never more than 30 messages in a minute or the day's recipients
(lowered by the admin to 1,000, so the run sends 1,000 RCPTs rather than Microsoft's 10,000) as the provider counts
them, and each notification taken exactly once; the ones over the day wait, recorded. The full run (1,000
notifications, Microsoft's 10,000 a day, the rate and the second tenant's latency) is `make bench` (bench_shaper)."""

from __future__ import annotations

from bench.bench_shaper import Burst, run_burst


def test_a_burst_through_four_workers_stays_within_microsofts_limits_and_the_day_over_waits():
    outcome = run_burst(Burst(notifications=50, recipients=20, recipients_per_day=1_000, time_scale=30.0,
                              idle_samples=3, over_the_day=2, b_interval=0.5, timeout=240.0))

    assert outcome.throttles == {}
    assert outcome.taken_once and outcome.sent == 50
    assert outcome.most_in_a_minute <= 30
    assert outcome.most_recipients_in_a_day == 1_000  # exactly the day's recipients, and not one more
    assert len(outcome.over_the_day) == 2
    assert all(r.startswith("waiting: waiting for the mailbox's sending limit") and "the daily limit" in r
               for r in outcome.over_the_day)
    assert outcome.during  # the other tenant kept being served during the burst
