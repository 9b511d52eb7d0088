"""Store reads per batch: the address and the account are read once per batch, not once per message."""

from __future__ import annotations

from dataclasses import replace

from relaydesk.addresses.model import ConnectorState
from relaydesk.tickets.model import DeliveryStatus

from tests.unit.outbound.kit import SUPPORT, make_world, sqs_record


class CountingDirectory:
    def __init__(self, inner) -> None:
        self._inner = inner
        self.reads: dict[str, int] = {}

    def __getattr__(self, name):
        attribute = getattr(self._inner, name)
        if name.startswith("get_"):
            def counted(*args, **kwargs):
                self.reads[name] = self.reads.get(name, 0) + 1
                return attribute(*args, **kwargs)
            return counted
        return attribute


def test_a_batch_of_ten_for_one_address_reads_the_address_and_the_account_once(memory_stores):
    world = make_world(memory_stores)
    directory = CountingDirectory(world.stores.directory)
    world.stores = replace(world.stores, directory=directory)
    relay = world.relay()
    notifications = [world.notification() for _ in range(10)]
    relay.relay_batch([sqs_record(n) for n in notifications])
    assert {world.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}
    # Once for the batch, and once more for the one write that remembers the secret version that logged in.
    assert directory.reads == {"get_account_address": 2, "get_account": 1}

    directory.reads.clear()
    relay.relay_batch([sqs_record(world.notification()) for _ in range(10)])
    assert directory.reads == {"get_account_address": 1, "get_account": 1}  # nothing to write: read once


def test_a_hold_within_the_batch_is_seen_by_the_next_message_and_lifted_once(memory_stores):
    world = make_world(memory_stores, state=ConnectorState.AUTH_FAILED)
    world.smarthost.password = "new-and-working-1"
    secret = world.address().connector.secret_arn
    from relaydesk.credentials import SmtpCredentials

    world.stores.secrets.put_version(secret, SmtpCredentials(host="smtp.acme.test", username=SUPPORT,
                                                             password="new-and-working-1").to_secret_string(),
                                     ["AWSCURRENT"])
    notifications = [world.notification() for _ in range(3)]
    world.relay().relay_batch([sqs_record(n) for n in notifications])
    assert {world.record(n).status for n in notifications} == {DeliveryStatus.DELIVERED}
    assert world.address().connector.state is ConnectorState.ACTIVE
    assert len(world.smarthost.transactions) == 3
    # The first connection logged in and lifted the hold; the others opened only then, with the same version.
    assert world.smarthost.logins == [(SUPPORT, True)] * world.smarthost.connections
