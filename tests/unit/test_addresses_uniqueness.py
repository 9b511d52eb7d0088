"""Uniqueness is decided at verification: any account may add an address nobody has verified, the first account to
prove control of the mailbox (its forwarding verified) owns it, and the loser is told so without naming anyone."""

from __future__ import annotations

import pytest
from relaydesk.addresses import lifecycle, verification
from relaydesk.addresses.model import VerificationStatus
from relaydesk.errors import RuleViolation
from relaydesk.markers import VERIFICATION_HEADER

from tests.unit.test_addresses_rules import creds, passing_checker
from tests.unit.test_addresses_verification import Outbox

VICTIM = "support@victim.example"


@pytest.fixture
def owner(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "victim-co", "Victim Company", "production")
    return account


@pytest.fixture
def squatter(memory_stores):
    account, _ = lifecycle.create_account(memory_stores, "squatter", "Squatter Ltd", "sandbox")
    return account


def forward_back(stores, account, outbox: Outbox) -> bool:
    """The customer's server forwards the test mail to the account's system address, as a real forward does."""
    message = outbox.sent.pop()
    return verification.on_verification_mail(stores, token=message[VERIFICATION_HEADER], forwarding_hops=1,
                                             recipient=f"support@{account.subdomain}.mail.relaydesk.test")


def names_no_tenant(text: str, account) -> bool:
    return not any(part and part.lower() in text.lower()
                   for part in (account.account_id, account.subdomain, account.name))


def test_an_unverified_claim_by_another_account_blocks_nothing(memory_stores, owner, squatter):
    lifecycle.connect_address(memory_stores, squatter.account_id, VICTIM, creds(), checker=passing_checker())

    address = lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM)

    assert address.account_id == owner.account_id
    assert {claim.account_id for claim in memory_stores.directory.list_claims(VICTIM)} == {
        owner.account_id, squatter.account_id}


def test_the_first_account_to_verify_owns_the_address_and_the_other_is_refused_without_names(
        memory_stores, owner, squatter):
    lifecycle.add_forwarding_address(memory_stores, squatter.account_id, VICTIM)
    lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM)
    outbox = Outbox()
    verification.start_forwarding(memory_stores, owner.account_id, VICTIM, sender=outbox)

    assert forward_back(memory_stores, owner, outbox)

    assert memory_stores.directory.owner_of(VICTIM) == owner.account_id
    with pytest.raises(RuleViolation) as caught:
        verification.start_forwarding(memory_stores, squatter.account_id, VICTIM, sender=outbox)
    assert caught.value.code == "address_in_use"
    assert names_no_tenant(caught.value.message + caught.value.action, owner)
    assert outbox.sent == []  # no test mail for an address someone else owns


def test_of_two_verifications_in_flight_the_first_mail_back_wins(memory_stores, owner, squatter):
    lifecycle.add_forwarding_address(memory_stores, squatter.account_id, VICTIM)
    lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM)
    owner_mail, squatter_mail = Outbox(), Outbox()
    verification.start_forwarding(memory_stores, owner.account_id, VICTIM, sender=owner_mail)
    verification.start_forwarding(memory_stores, squatter.account_id, VICTIM, sender=squatter_mail)

    forward_back(memory_stores, owner, owner_mail)
    assert forward_back(memory_stores, squatter, squatter_mail)  # consumed, not turned into a ticket

    lost = memory_stores.directory.get_account_address(squatter.account_id, VICTIM)
    assert lost.forwarding.status is VerificationStatus.FAILED
    assert "another Relaydesk account" in lost.forwarding.error
    assert names_no_tenant(lost.forwarding.error + (lost.last_error or ""), owner)
    won = memory_stores.directory.get_account_address(owner.account_id, VICTIM)
    assert won.forwarding.status is VerificationStatus.VERIFIED
    assert memory_stores.directory.owner_of(VICTIM) == owner.account_id


def test_an_owned_address_cannot_be_added_by_another_account_and_the_refusal_names_nobody(
        memory_stores, owner, squatter):
    lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM)
    memory_stores.directory.claim_address(owner.account_id, VICTIM)

    with pytest.raises(RuleViolation) as caught:
        lifecycle.add_forwarding_address(memory_stores, squatter.account_id, VICTIM)

    assert caught.value.code == "address_in_use"
    assert names_no_tenant(caught.value.message + caught.value.action, owner)


def test_deleting_the_owners_address_frees_it_for_another_account(memory_stores, owner, squatter):
    lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM)
    memory_stores.directory.claim_address(owner.account_id, VICTIM)

    lifecycle.delete_address(memory_stores, owner.account_id, VICTIM)

    assert memory_stores.directory.owner_of(VICTIM) is None
    assert lifecycle.add_forwarding_address(memory_stores, squatter.account_id, VICTIM).account_id == \
        squatter.account_id


def test_an_account_never_sees_another_accounts_record_of_the_same_address(memory_stores, owner, squatter):
    lifecycle.add_forwarding_address(memory_stores, owner.account_id, VICTIM, "Victim Support")

    with pytest.raises(lifecycle.NotFoundError) as caught:
        lifecycle.get_address(memory_stores, squatter.account_id, VICTIM)
    with pytest.raises(lifecycle.NotFoundError) as unknown:
        lifecycle.get_address(memory_stores, squatter.account_id, "nobody@victim.example")

    assert caught.value.message == unknown.value.message.replace("nobody@", "support@")  # the same words
