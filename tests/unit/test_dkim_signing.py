"""DKIM signatures as a receiver checks them: dkimpy's verifier with an offline DNS, for RSA and Ed25519."""

from __future__ import annotations

import re
from datetime import timedelta

import dkim
import pytest
from relaydesk.addresses.model import AddressKind, DkimSettings, SupportAddress
from relaydesk.dkim.storage import create_keyring, save_keyring, secret_name
from relaydesk.errors import DkimNotSetUpError, DkimSigningError
from relaydesk.outbound import dkim as outbound_dkim
from relaydesk.store.memory import MemorySecrets

from tests.dkim_helpers import EPOCH, keyring_for, notification, offline_dns, verify_all


@pytest.fixture(autouse=True)
def _fresh_cache():
    outbound_dkim.clear_cache()
    yield
    outbound_dkim.clear_cache()


def address(enabled: bool = True, domain: str = "acme.test") -> SupportAddress:
    return SupportAddress(email=f"support@{domain}", account_id="acc_1", kind=AddressKind.SMTP_CONNECTOR,
                          dkim=DkimSettings(enabled=enabled, domain=domain, secret_arn=secret_name(domain)))


@pytest.fixture
def keyring():
    return keyring_for("acme.test")


@pytest.fixture
def secrets(keyring):
    store = MemorySecrets()
    create_keyring(store, keyring)
    return store


def sign(secrets, message: bytes | None = None, *, at=EPOCH) -> bytes:
    signer = outbound_dkim.signer_for(address(), secrets, now=lambda: at)
    assert signer is not None
    return signer.sign(message or notification())


def signature_tags(message: bytes) -> list[dict[bytes, bytes]]:
    return [dkim.util.parse_tag_value(value) for name, value in dkim.DKIM(message).headers
            if name.lower() == b"dkim-signature"]


def replace_header(message: bytes, name: str, new_value: str) -> bytes:
    pattern = re.compile(rb"^(" + re.escape(name.encode()) + rb":)[^\r\n]*(\r\n[ \t][^\r\n]*)*", re.M | re.I)
    changed, count = pattern.subn(lambda m: m.group(1) + b" " + new_value.encode(), message, count=1)
    assert count == 1, name
    return changed


def test_notification_carries_an_rsa_and_an_ed25519_signature_that_both_verify(secrets, keyring):
    signed = sign(secrets)

    assert dkim.verify(signed, dnsfunc=offline_dns(keyring))  # the top signature, as most receivers read it
    assert verify_all(signed, offline_dns(keyring)) == [True, True]
    assert [t[b"a"] for t in signature_tags(signed)] == [b"rsa-sha256", b"ed25519-sha256"]


def test_signature_is_for_the_customer_domain_relaxed_with_no_length_and_no_sha1(secrets, keyring):
    for tags in signature_tags(sign(secrets)):
        assert tags[b"d"] == b"acme.test"
        assert tags[b"c"] == b"relaxed/relaxed"
        assert b"l" not in tags
        assert b"sha1" not in tags[b"a"]
        assert tags[b"s"].decode() in keyring.generations[0].selectors


def test_body_bytes_are_untouched_and_signatures_are_prepended(secrets):
    original = notification()
    signed = sign(secrets, original)

    assert signed.endswith(original)
    assert signed.startswith(b"DKIM-Signature: ")


def test_every_header_of_the_contract_is_signed_and_the_singletons_oversigned(secrets):
    signed_names = signature_tags(sign(secrets))[0][b"h"].decode().replace(" ", "").replace("\r\n", "").split(":")

    for name in ("from", "to", "subject", "date", "message-id", "in-reply-to", "references", "mime-version",
                 "content-type", "x-relaydesk-email-id", "auto-submitted"):
        assert name in signed_names
    for name in ("from", "to", "subject", "date", "message-id", "in-reply-to", "references", "mime-version",
                 "content-type"):
        assert signed_names.count(name) == 2, name  # present once, signed twice
    assert signed_names.count("cc") == 1 and signed_names.count("reply-to") == 1  # absent: signed as absent
    assert "received" not in signed_names


@pytest.mark.parametrize("header", ["From", "To", "Subject", "Date", "Message-ID", "In-Reply-To", "References",
                                    "MIME-Version", "Content-Type", "X-Relaydesk-Email-Id"])
def test_changing_a_signed_header_breaks_both_signatures(secrets, keyring, header):
    signed = sign(secrets)

    tampered = replace_header(signed, header, "tampered <x@evil.example>")

    assert verify_all(tampered, offline_dns(keyring)) == [False, False]


@pytest.mark.parametrize("body_change", [b"Your ticket was updated.", b"Hello Bob,"])
def test_changing_the_body_breaks_both_signatures(secrets, keyring, body_change):
    signed = sign(secrets)

    tampered = signed.replace(body_change, body_change.replace(b"o", b"0"), 1)

    assert tampered != signed
    assert verify_all(tampered, offline_dns(keyring)) == [False, False]


def test_appending_a_line_to_the_body_breaks_both_signatures(secrets, keyring):
    tampered = sign(secrets) + b"Click here to claim your prize\r\n"

    assert verify_all(tampered, offline_dns(keyring)) == [False, False]


@pytest.mark.parametrize("added", ["From: CEO <ceo@acme.test>", "Subject: Urgent wire transfer",
                                   "Reply-To: attacker@evil.example", "Cc: victim@example.net",
                                   "To: other@example.net", "Content-Type: text/html"])
def test_an_added_copy_of_an_oversigned_header_breaks_both_signatures(secrets, keyring, added):
    signed = sign(secrets)
    split = signed.index(b"\r\nFrom: ") + 2  # below the signatures, where a forger would add it

    for tampered in (signed[:split] + added.encode() + b"\r\n" + signed[split:],
                     added.encode() + b"\r\n" + signed):
        assert verify_all(tampered, offline_dns(keyring)) == [False, False]


def test_a_relay_adding_received_headers_and_refolding_whitespace_keeps_both_signatures_valid(secrets, keyring):
    signed = sign(secrets)

    relayed = (b"Received: from relaydesk by mail.acme.test with ESMTPSA id 1A2B;\r\n\tWed, 25 Nov 2026 10:00:00"
               b" +0000\r\n" + signed.replace(b"Subject: [RD#1042]", b"Subject:   [RD#1042]  "))

    assert verify_all(relayed, offline_dns(keyring)) == [True, True]


def test_signing_off_for_the_domain_means_no_signer_and_no_secret_read(secrets):
    reads = secrets.reads

    assert outbound_dkim.signer_for(address(enabled=False), secrets) is None
    assert secrets.reads == reads


def test_signing_on_without_keys_is_a_typed_error_that_says_how_to_set_them_up():
    with pytest.raises(DkimNotSetUpError) as raised:
        outbound_dkim.signer_for(address(domain="nokeys.test"), MemorySecrets())

    assert "relaydesk dkim setup" in raised.value.action


def test_the_keyring_is_read_once_per_container_and_keys_parsed_once(secrets):
    first = outbound_dkim.signer_for(address(), secrets, now=lambda: EPOCH)
    reads = secrets.reads
    for _ in range(5):
        again = outbound_dkim.signer_for(address(), secrets, now=lambda: EPOCH)

    assert secrets.reads == reads
    assert again is first


def test_after_a_rotation_the_new_selector_signs_once_the_overlap_has_passed(secrets, keyring):
    rotated_at = EPOCH + timedelta(days=30)
    old_selectors = keyring.generations[0].selectors
    new = keyring.add_generation(rotated_at, overlap=timedelta(hours=48))
    save_keyring(secrets, secret_name("acme.test"), keyring)

    during = sign(secrets, at=rotated_at + timedelta(hours=47))
    after = sign(secrets, at=rotated_at + timedelta(hours=49))

    assert [t[b"s"].decode() for t in signature_tags(during)] == old_selectors
    assert [t[b"s"].decode() for t in signature_tags(after)] == new.selectors
    dns = offline_dns(keyring, at=rotated_at + timedelta(hours=49))  # old records still published: in flight
    assert verify_all(during, dns) == [True, True]
    assert verify_all(after, dns) == [True, True]


@pytest.mark.parametrize("message", [b"To: bob@example.net\r\nSubject: no sender\r\n\r\nbody\r\n",
                                     b" folded first\r\nFrom: a@acme.test\r\n\r\nbody\r\n",
                                     b"From: a@acme.test\r\nnot a header\r\n\r\nbody\r\n"])
def test_a_message_without_from_or_with_a_broken_header_block_cannot_be_signed(secrets, message):
    with pytest.raises(DkimSigningError):
        sign(secrets, message)


def test_lf_only_messages_are_signed_with_lf_and_still_verify(secrets, keyring):
    signed = sign(secrets, notification().replace(b"\r\n", b"\n"))

    assert b"\r\n" not in signed
    assert verify_all(signed, offline_dns(keyring)) == [True, True]


def test_no_private_key_appears_in_reprs_errors_or_the_signer(secrets, keyring, caplog):
    signer = outbound_dkim.signer_for(address(), secrets, now=lambda: EPOCH)
    private_parts = [k.private_text() for g in keyring.generations for k in g.keys]
    shown = " ".join([repr(signer), repr(getattr(signer, "keys", "")), repr(keyring), str(keyring),
                      keyring.model_dump_json(), caplog.text])

    for private in private_parts:
        assert private not in shown
        # The PEM's first lines encode the (public) modulus; its last ones the primes and exponents.
        assert all(line not in shown for line in private.splitlines()[-8:-2])
