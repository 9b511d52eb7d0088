"""Refused credentials: one fresh look at the secret (and a staged version), then the address is held and its
notifications wait, neither dropped nor retried hot, until the credentials change."""

from __future__ import annotations

import pytest
from relaydesk.addresses.model import ConnectorState
from relaydesk.outbound.credentials import CredentialCache
from relaydesk.outbound.hold import release_held
from relaydesk.outbound.policy import Outcome
from relaydesk.tickets.model import DeliveryStatus

from tests.tenancy import account_of
from tests.unit.outbound.kit import PASSWORD, SUPPORT, make_world, rotate_secret, sqs_record


@pytest.fixture
def world(memory_stores):
    return make_world(memory_stores)


def _server_changes_password(world, password: str = "new-server-pw") -> None:  # noqa: S107
    world.smarthost.password = password


def test_refused_credentials_hold_the_address_with_the_reply_and_what_to_do(world):
    _server_changes_password(world)
    notification = world.notification()
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.HELD and not result.failed  # parked, so SQS may forget it
    address = world.address()
    assert address.connector.state is ConnectorState.AUTH_FAILED and address.connector.held_since is not None
    assert "535 5.7.8" in address.last_error and "What to do" in address.last_error
    assert [n.notification_id for n in world.stores.held.list(SUPPORT)] == [notification.notification_id]
    record = world.record(notification)
    assert record.status is DeliveryStatus.AUTH_FAILED and record.attempts[-1].smtp_code == 535


def test_a_held_address_is_not_retried_hot(world):
    _server_changes_password(world)
    relay = world.relay()
    relay.relay_batch([sqs_record(world.notification())])
    logins = len(world.smarthost.logins)
    [later] = relay.relay_batch([sqs_record(world.notification())])
    assert later.result.outcome is Outcome.HELD
    assert len(world.smarthost.logins) == logins  # no new AUTH with the same refused secret
    assert len(world.stores.held.list(SUPPORT)) == 2


def test_a_secret_rotated_since_the_cache_was_filled_is_read_again_and_the_mail_goes(world):
    relay = world.relay(credentials=CredentialCache(world.stores.secrets, 3600))
    relay.relay_batch([sqs_record(world.notification())])  # fills the cache with the old password
    _server_changes_password(world)
    rotate_secret(world.stores, "new-server-pw")
    [result] = relay.relay_batch([sqs_record(world.notification())])
    assert result.result.outcome is Outcome.DELIVERED
    assert world.address().connector.state is ConnectorState.ACTIVE


def test_a_staged_pending_version_is_tried_when_current_is_refused(world):
    _server_changes_password(world, "staged-pw")
    rotate_secret(world.stores, "staged-pw", stage="AWSPENDING")
    [result] = world.relay().relay_batch([sqs_record(world.notification())])
    assert result.result.outcome is Outcome.DELIVERED
    assert [ok for _, ok in world.smarthost.logins] == [False, True]


def test_changed_credentials_release_every_held_notification_and_none_is_lost(world):
    _server_changes_password(world)
    relay = world.relay()
    held = [world.notification() for _ in range(3)]
    relay.relay_batch([sqs_record(n) for n in held])
    assert len(world.stores.held.list(SUPPORT)) == 3 and world.smarthost.transactions == []

    rotate_secret(world.stores, "new-server-pw")  # the admin updates the secret
    fresh = world.notification()
    [result] = relay.relay_batch([sqs_record(fresh)])  # the relay notices the new VersionId
    assert result.result.outcome is Outcome.DELIVERED
    assert world.stores.held.list(SUPPORT) == []
    released = [n for n, _ in world.stores.queue.sent]
    assert {n.notification_id for n in released} == {n.notification_id for n in held}
    relay.relay_batch([sqs_record(n, receive_count=1) for n in released])
    delivered = {world.record(n).status for n in [*held, fresh]}
    assert delivered == {DeliveryStatus.DELIVERED} and len(world.smarthost.transactions) == 4


def test_release_held_after_a_rotation_queues_the_parked_notifications_and_lifts_the_hold(world):
    _server_changes_password(world)
    notification = world.notification()
    world.relay().relay_batch([sqs_record(notification)])
    assert release_held(world.stores, account_of(world.stores, SUPPORT), SUPPORT) == 1
    assert world.address().connector.state is ConnectorState.ACTIVE and world.address().last_error is None
    assert [n.notification_id for n, _ in world.stores.queue.sent] == [notification.notification_id]
    assert world.stores.held.list(SUPPORT) == []


def test_release_held_leaves_a_disabled_connector_disabled(world):
    address = world.address()
    address.connector.state = ConnectorState.DISABLED
    world.stores.directory.put_address(address)
    assert release_held(world.stores, account_of(world.stores, SUPPORT), SUPPORT) == 0
    assert world.address().connector.state is ConnectorState.DISABLED


def test_a_refused_verification_mail_holds_the_address_but_is_not_parked(world):
    from relaydesk.notification import NotificationKind

    _server_changes_password(world)
    notification = world.notification(kind=NotificationKind.VERIFICATION, ticket_id=None, recipients=[SUPPORT],
                                      verification_token="VTOKEN12345")
    [result] = world.relay().relay_batch([sqs_record(notification)])
    assert result.result.outcome is Outcome.AUTH_FAILED and not result.failed
    assert world.address().connector.state is ConnectorState.AUTH_FAILED
    assert world.stores.held.list(SUPPORT) == []


def test_an_address_refused_before_it_was_ever_verified_keeps_sending_through_the_default_outbound(world):
    from relaydesk.addresses.model import Verification

    address = world.address()
    address.connector.state = ConnectorState.AUTH_FAILED
    address.outbound = Verification()
    world.stores.directory.put_address(address)
    [result] = world.relay().relay_batch([sqs_record(world.notification())])
    assert (result.result.outcome, result.result.route) == (Outcome.DELIVERED, "ses")
    assert world.smarthost.logins == [] and world.stores.held.list(SUPPORT) == []


def test_a_verification_mail_is_tried_on_a_held_address_and_success_releases_the_rest(world):
    from relaydesk.notification import NotificationKind

    world.smarthost.password = "server-side-pw"
    parked = world.notification()
    world.relay().relay_batch([sqs_record(parked)])
    world.smarthost.password = PASSWORD  # the admin fixed the mailbox on the server; the secret is unchanged
    verification = world.notification(kind=NotificationKind.VERIFICATION, ticket_id=None, recipients=[SUPPORT],
                                      verification_token="VTOKEN12345")
    [result] = world.relay().relay_batch([sqs_record(verification)])
    assert result.result.outcome is Outcome.DELIVERED
    assert world.address().connector.state is ConnectorState.ACTIVE
    assert [n.notification_id for n, _ in world.stores.queue.sent] == [parked.notification_id]
