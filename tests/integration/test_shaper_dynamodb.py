"""The shaper's state in DynamoDB (moto, the counters table from template.yaml): conditional writes keep four relays
sharing one mailbox under its limit, a lost race costs one more write, not a read."""

from __future__ import annotations

import threading

import boto3
import pytest
from relaydesk.addresses.providers import PROFILES
from relaydesk.outbound.shaper import Shaper, mailbox_key
from relaydesk.outbound.shaping import Ask
from relaydesk.store.shaper_dynamodb import DynamoShaperStates

MICROSOFT = PROFILES["microsoft365"].limits
KEY = mailbox_key("smtp.office365.com", "support@acme.test")


class FixedClock:
    def now(self) -> float:
        return 1_000_000.0

    def real_seconds(self, seconds: float) -> float:
        return seconds

    def shaper_seconds(self, real: float) -> float:
        return real


class Counting:
    """Counts the adapter's DynamoDB calls."""

    def __init__(self, client) -> None:
        self.client = client
        self.calls: dict[str, int] = {}
        self.lock = threading.Lock()

    def __getattr__(self, name):
        call = getattr(self.client, name)

        def counted(*args, **kwargs):
            with self.lock:
                self.calls[name] = self.calls.get(name, 0) + 1
            return call(*args, **kwargs)
        return counted


@pytest.fixture
def client():
    return Counting(boto3.client("dynamodb"))


@pytest.fixture
def states(aws_stack, client):
    return DynamoShaperStates(client, aws_stack.settings.counters_table)


def test_the_item_is_written_once_per_version_and_a_stale_write_gets_the_current_item_back(states, aws_stack):
    assert states.read(KEY).version == 0
    assert states.write(KEY, '{"a": 1}', 0) is None
    assert states.write(KEY, '{"a": 2}', 0) == (('{"a": 1}'), 1)  # lost: what is there now, without a read
    assert states.write(KEY, '{"a": 2}', 1) is None
    item = boto3.client("dynamodb").get_item(TableName=aws_stack.settings.counters_table,
                                             Key={"pk": {"S": KEY}})["Item"]
    assert item["version"] == {"N": "2"} and int(item["expires_at"]["N"]) > 0
    assert "acme" not in str(item)  # the key and the state name no address


def test_four_relays_sharing_a_mailbox_admit_thirty_a_minute_between_them(states, client, atomic_moto_writes):
    admitted: list[int] = []
    lock = threading.Lock()

    def relay(worker: int) -> None:
        shaper = Shaper(states, FixedClock())  # a container of its own, with its own cache
        for batch in range(6):
            turn = shaper.take(KEY, MICROSOFT, [Ask(1)] * 10, lease_id=f"{worker}-{batch}", lease_seconds=60)
            with lock:
                admitted.append(len(turn.admitted))
            if turn.lease:
                shaper.give_back(KEY, turn.lease, [1_000_000.0] * len(turn.admitted),
                                 sent_recipients=len(turn.admitted))

    threads = [threading.Thread(target=relay, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 30
    calls = client.calls
    # each change is one PutItem, plus one more per lost race; a container reads only the first time
    assert calls["put_item"] >= 4 * 6 and calls.get("get_item", 0) <= 4


def test_an_uncontended_relay_pays_one_write_per_change(states, client):
    shaper = Shaper(states, FixedClock())
    turn = shaper.take(KEY, MICROSOFT, [Ask(1)] * 5, lease_id="a", lease_seconds=60)
    shaper.give_back(KEY, turn.lease, [1_000_000.0] * 5, sent_recipients=5)
    shaper.take(KEY, MICROSOFT, [Ask(1)] * 5, lease_id="b", lease_seconds=60)
    assert client.calls == {"get_item": 1, "put_item": 3}
