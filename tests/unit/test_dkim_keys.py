"""DKIM keys, the records a customer publishes, and rotation as an admin sees it over time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from relaydesk.dkim.keyring import Keyring, KeyState
from relaydesk.dkim.keys import Algorithm, load_private_key
from relaydesk.dkim.records import TXT_STRING_LIMIT, key_record
from relaydesk.dkim.storage import create_keyring, load_keyring, save_keyring, secret_name
from relaydesk.errors import ConflictError, DkimNotSetUpError
from relaydesk.store.memory import MemorySecrets

from tests.dkim_helpers import EPOCH, keyring_for

DAY = timedelta(days=1)
OVERLAP = timedelta(hours=48)


def states(keyring: Keyring, at) -> list[KeyState]:
    return [keyring.state(g, at) for g in keyring.generations]


def test_setup_makes_one_rsa_2048_and_one_ed25519_key_that_sign_at_once():
    keyring = keyring_for("acme.test")
    [generation] = keyring.generations

    assert [k.algorithm for k in generation.keys] == [Algorithm.RSA_SHA256, Algorithm.ED25519_SHA256]
    rsa_key = load_private_key(Algorithm.RSA_SHA256, generation.keys[0].private_text())
    assert rsa_key.key_size == 2048
    assert keyring.signing_generation(EPOCH) is generation
    assert states(keyring, EPOCH) == [KeyState.ACTIVE]


def test_published_rsa_record_is_a_txt_at_the_selector_split_into_255_byte_strings():
    keyring = keyring_for("acme.test")
    rsa_key = keyring.generations[0].keys[0]

    record = key_record(rsa_key, "acme.test")

    assert record.name == f"{rsa_key.selector}._domainkey.acme.test"
    assert record.type == "TXT"
    assert record.value == f"v=DKIM1; k=rsa; p={rsa_key.public_key}"
    assert len(record.strings) == 2 and all(len(s) <= TXT_STRING_LIMIT for s in record.strings)
    assert "".join(record.strings) == record.value
    assert record.zone_line().startswith(f'{record.name}. IN TXT "v=DKIM1; k=rsa; p=')


def test_ed25519_record_names_its_key_type_and_fits_one_string():
    ed_key = keyring_for("acme.test").generations[0].keys[1]

    record = key_record(ed_key, "acme.test")

    assert record.value.startswith("v=DKIM1; k=ed25519; p=") and len(record.strings) == 1
    assert ed_key.selector.endswith("-ed")


def test_rotation_publishes_first_signs_after_the_overlap_then_retires_the_old_keys():
    keyring = keyring_for("acme.test")
    old = keyring.generations[0]
    rotated = EPOCH + 30 * DAY

    new = keyring.add_generation(rotated, overlap=OVERLAP)

    assert set(new.selectors).isdisjoint(old.selectors)
    assert states(keyring, rotated) == [KeyState.ACTIVE, KeyState.PUBLISHING]
    assert keyring.signing_generation(rotated + OVERLAP - timedelta(seconds=1)) is old
    assert states(keyring, rotated + OVERLAP) == [KeyState.RETIRING, KeyState.ACTIVE]
    assert keyring.signing_generation(rotated + OVERLAP) is new
    assert old.retire_at == rotated + 2 * OVERLAP
    assert states(keyring, rotated + 2 * OVERLAP) == [KeyState.RETIRED, KeyState.ACTIVE]
    assert [g for g, _ in keyring.published(rotated + 2 * OVERLAP)] == [new]


def test_retired_private_keys_are_dropped_at_the_next_rotation():
    keyring = keyring_for("acme.test")
    keyring.add_generation(EPOCH + 30 * DAY, overlap=OVERLAP)

    keyring.add_generation(EPOCH + 60 * DAY, overlap=OVERLAP)

    first = keyring.generations[0]
    assert all(k.private_key is None for k in first.keys)
    assert all(k.public_key for k in first.keys)  # still shown, so the admin knows which record to delete
    with pytest.raises(ValueError):
        first.keys[0].private_text()


def test_rotating_again_before_the_overlap_supersedes_the_unpublished_generation():
    keyring = keyring_for("acme.test")
    rotated = EPOCH + 30 * DAY
    keyring.add_generation(rotated, overlap=OVERLAP)

    keyring.add_generation(rotated + DAY, overlap=OVERLAP)

    assert states(keyring, rotated + DAY) == [KeyState.ACTIVE, KeyState.RETIRED, KeyState.PUBLISHING]
    assert keyring.signing_generation(rotated + DAY + OVERLAP) is keyring.generations[2]


def test_two_rotations_on_one_day_get_distinct_selectors():
    keyring = keyring_for("acme.test")
    day = EPOCH + 30 * DAY
    first = keyring.add_generation(day, overlap=OVERLAP)
    second = keyring.add_generation(day + timedelta(minutes=5), overlap=OVERLAP)

    assert set(first.selectors).isdisjoint(second.selectors)


def test_keyring_round_trips_through_its_secret_and_one_secret_per_domain():
    secrets = MemorySecrets()
    keyring = keyring_for("acme.test")

    arn = create_keyring(secrets, keyring)
    loaded, _ = load_keyring(secrets, arn)

    assert arn == secret_name("acme.test") == "relaydesk/dkim/acme.test"
    assert loaded.generations[0].keys[0].private_text() == keyring.generations[0].keys[0].private_text()
    with pytest.raises(ConflictError):
        create_keyring(secrets, keyring)
    keyring.add_generation(EPOCH + DAY, overlap=OVERLAP)
    save_keyring(secrets, arn, keyring)
    assert len(load_keyring(secrets, arn)[0].generations) == 2


def test_loading_a_domain_without_keys_is_a_typed_not_set_up_error():
    with pytest.raises(DkimNotSetUpError):
        load_keyring(MemorySecrets(), secret_name("nokeys.test"))
