"""Attachment links: a token the stack signed opens its one attachment until it expires; nothing else does."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from relaydesk.attachments.keys import SigningKeys
from relaydesk.attachments.links import sign_link, verify_link
from relaydesk.errors import ConfigurationError, LinkExpiredError, LinkInvalidError
from relaydesk.store.memory import MemorySecrets

SIGNING_KEY = b"k" * 20 + b"-link-signing-key-never-in-logs"
KEY = "attachments/T-1/C-1/01-invoice.pdf"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(days=30)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_a_signed_link_opens_its_attachment_of_its_account_until_it_expires():
    token = sign_link(KEY, "acc-1", LATER, SIGNING_KEY)

    assert verify_link(token, SIGNING_KEY, NOW) == (KEY, "acc-1")
    assert verify_link(token, SIGNING_KEY, LATER - timedelta(seconds=1)) == (KEY, "acc-1")
    assert all(c.isalnum() or c in "-_." for c in token)  # fits a URL path as it is


def test_a_link_past_its_expiry_is_expired_not_invalid():
    token = sign_link(KEY, "acc-1", NOW + timedelta(days=1), SIGNING_KEY)

    with pytest.raises(LinkExpiredError):
        verify_link(token, SIGNING_KEY, NOW + timedelta(days=1))


@pytest.mark.parametrize("field, value", [("k", "attachments/T-2/C-1/01-other.pdf"), ("a", "acc-2"),
                                          ("e", int(LATER.timestamp()) + 86400 * 365)])
def test_changing_the_key_account_or_expiry_makes_the_link_invalid(field, value):
    payload, signature = sign_link(KEY, "acc-1", LATER, SIGNING_KEY).split(".")
    claims = json.loads(_unb64(payload))
    claims[field] = value

    with pytest.raises(LinkInvalidError):
        verify_link(f"{_b64(json.dumps(claims).encode())}.{signature}", SIGNING_KEY, NOW)


def test_a_changed_signature_or_another_stacks_key_makes_the_link_invalid():
    token = sign_link(KEY, "acc-1", LATER, SIGNING_KEY)
    payload, signature = token.split(".")
    flipped = bytearray(_unb64(signature))
    flipped[0] ^= 1

    for forged in (f"{payload}.{_b64(bytes(flipped))}", f"{payload}.", f"{payload}.{signature}x", payload,
                   f"{payload}.{signature}.{signature}", "", "not a token", "é.é"):
        with pytest.raises(LinkInvalidError):
            verify_link(forged, SIGNING_KEY, NOW)
    with pytest.raises(LinkInvalidError):
        verify_link(token, b"another stack's signing key, 32+ bytes long", NOW)


def test_an_expired_and_tampered_link_is_invalid_because_the_signature_is_judged_first():
    payload, signature = sign_link(KEY, "acc-1", NOW - timedelta(days=1), SIGNING_KEY).split(".")
    claims = json.loads(_unb64(payload))
    claims["e"] = int(LATER.timestamp())

    with pytest.raises(LinkInvalidError):
        verify_link(f"{_b64(json.dumps(claims).encode())}.{signature}", SIGNING_KEY, NOW)


@pytest.mark.parametrize("key", ["inbound/ses-message-id", "attachments/", "attachments/../inbound/x",
                                 "attachments/T/./x", "attachments//x", "Attachments/x", "/attachments/x",
                                 "attachments/T/C/01-a\r\nb"])
def test_only_objects_under_attachments_can_be_linked(key):
    with pytest.raises(LinkInvalidError):
        sign_link(key, "acc-1", LATER, SIGNING_KEY)


def test_a_validly_signed_token_for_raw_mail_is_still_refused():
    """Even a token with a good signature opens nothing outside attachments/ (defence in depth)."""
    import hashlib
    import hmac

    payload = _b64(json.dumps({"v": 1, "k": "inbound/raw", "a": "acc-1", "e": int(LATER.timestamp())}).encode())
    signature = _b64(hmac.new(SIGNING_KEY, payload.encode(), hashlib.sha256).digest())

    with pytest.raises(LinkInvalidError):
        verify_link(f"{payload}.{signature}", SIGNING_KEY, NOW)


def test_a_short_signing_key_is_refused_as_a_configuration_error():
    with pytest.raises(ConfigurationError):
        sign_link(KEY, "acc-1", LATER, b"short")


def test_the_signing_key_never_appears_in_a_token_an_error_or_the_logs(caplog):
    caplog.set_level(logging.DEBUG)
    token = sign_link(KEY, "acc-1", NOW + timedelta(seconds=1), SIGNING_KEY)
    texts = [token, _unb64(token.split(".")[0]).decode()]
    for attempt in (token + "x", token):
        with pytest.raises((LinkInvalidError, LinkExpiredError)) as error:
            verify_link(attempt, SIGNING_KEY, LATER)
        texts += [str(error.value), repr(error.value), json.dumps(error.value.to_dict())]

    secret = SIGNING_KEY.decode()
    assert not any(secret in text or "never-in-logs" in text for text in [*texts, caplog.text])


def test_the_signing_key_is_read_once_and_again_after_its_cache_age():
    secrets = MemorySecrets()
    secrets.create("relaydesk/links/stack", SIGNING_KEY.decode(), {})
    clock = [0.0]
    keys = SigningKeys(secrets, "relaydesk/links/stack", max_age=300, clock=lambda: clock[0])
    reads = secrets.reads

    assert keys.current() == keys.current() == SIGNING_KEY
    assert secrets.reads == reads + 1
    secrets.put_version("relaydesk/links/stack", "r" * 64, ["AWSCURRENT"])  # rotated: every old link is revoked
    clock[0] = 301
    assert keys.current() == b"r" * 64


def test_a_missing_signing_secret_says_what_to_do_without_naming_a_value():
    with pytest.raises(ConfigurationError) as error:
        SigningKeys(MemorySecrets(), "relaydesk/links/none").current()

    assert error.value.action


def test_links_point_at_the_attachments_function_when_it_is_deployed(memory_stores):
    from dataclasses import replace

    from relaydesk.attachments.linker import link_builder
    from relaydesk.notification import AttachmentRef

    memory_stores.secrets.create("relaydesk/links/stack", SIGNING_KEY.decode(), {})
    settings = memory_stores.settings.model_copy(update={
        "attachments_base_url": "https://abc.lambda-url.us-east-1.on.aws/",
        "link_signing_secret_id": "relaydesk/links/stack", "attachment_link_days": 30})
    ref = AttachmentRef(filename="invoice.pdf", s3_key=KEY)

    url = link_builder(replace(memory_stores, settings=settings), "acc-1")(ref)

    base, token = url.rsplit("/", 1)
    assert base == "https://abc.lambda-url.us-east-1.on.aws"
    assert verify_link(token, SIGNING_KEY, datetime.now(UTC) + timedelta(days=29)) == (KEY, "acc-1")
    with pytest.raises(LinkExpiredError):
        verify_link(token, SIGNING_KEY, datetime.now(UTC) + timedelta(days=30, seconds=1))


def test_without_the_attachments_function_links_stay_s3_urls(memory_stores):
    from relaydesk.attachments.linker import link_builder
    from relaydesk.notification import AttachmentRef

    assert memory_stores.settings.attachments_base_url == ""
    url = link_builder(memory_stores, "acc-1")(AttachmentRef(filename="a.pdf", s3_key=KEY))

    assert url == memory_stores.blobs.url_for(KEY)
