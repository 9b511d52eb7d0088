"""The local stand-ins' logic behind the console, without sockets: the SRP check of the Cognito front (the client
half written here as amazon-cognito-identity-js computes it), and the console's build being the one of its sources."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from pathlib import Path

import pytest
from relaydesk import console_site

from local.cognito_srp import Challenge, G, K, N, claim_signature, hex_hash, pad_hex, private_x, session_key

ROOT = Path(__file__).resolve().parents[2]
POOL_ID = "us-east-1_a1b2c3d4e5"
USER_ID = "45a9186f-ed2a-4c0b-8222-0a461deeb6eb"
TIMESTAMP = "Sun Dec 6 12:34:56 UTC 2026"


def client_proof(challenge: Challenge, salt: int, password: str, small_a: int) -> str:
    """What the browser sends back (AuthenticationHelper.getPasswordAuthenticationKey and the claim)."""
    big_a = pow(G, small_a, N)
    u = int(hex_hash(pad_hex(big_a) + pad_hex(challenge.big_b)), 16)
    x = private_x(POOL_ID.split("_")[1], USER_ID, password, salt)
    s = pow(challenge.big_b - K * pow(G, x, N), small_a + u * x, N)
    return claim_signature(session_key(s, u), POOL_ID.split("_")[1], USER_ID, challenge.secret_block, TIMESTAMP)


def started(password: str) -> tuple[Challenge, int, int]:
    small_a = secrets.randbits(256)
    challenge, salt = Challenge.start(POOL_ID, USER_ID, password, format(pow(G, small_a, N), "x"))
    return challenge, salt, small_a


def test_the_right_password_proves_itself_and_a_wrong_one_does_not():
    challenge, salt, small_a = started("Correct-Horse-9")

    assert challenge.verify(client_proof(challenge, salt, "Correct-Horse-9", small_a), TIMESTAMP)
    assert not challenge.verify(client_proof(challenge, salt, "correct-horse-9", small_a), TIMESTAMP)
    assert not challenge.verify(client_proof(challenge, salt, "Correct-Horse-9", small_a), TIMESTAMP + "x")
    assert not challenge.verify("", TIMESTAMP)


def test_a_client_value_of_zero_mod_n_is_refused():
    with pytest.raises(ValueError):
        Challenge.start(POOL_ID, USER_ID, "pw", format(N * 2, "x"))


def test_numbers_are_padded_as_cognito_hashes_them():
    assert pad_hex(0x7F) == "7f" and pad_hex(0x80) == "0080" and pad_hex(0xABC) == "0abc"
    assert session_key(5, 7) == hmac.new(hmac.new(b"\x07", b"\x05", hashlib.sha256).digest(),
                                         b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]


def test_the_committed_console_is_built_from_the_committed_sources():
    """console/dist is committed so `make test` needs no npm; `make console` rebuilds it after a change."""
    console = ROOT / "console"
    paths = sorted(p for p in (console / "src").rglob("*") if p.is_file())
    paths += [console / "build.mjs", console / "package.json", console / "package-lock.json"]
    digest = hashlib.sha256()
    for path in sorted(paths[:-3], key=lambda p: p.relative_to(console).as_posix()) + paths[-3:]:
        digest.update(path.relative_to(console).as_posix().encode() + b"\n" + path.read_bytes())
    build = json.loads((console / "dist" / "BUILD.json").read_text())

    assert build["sources_sha256"] == digest.hexdigest(), "console/dist is stale: run `make console`"
    assert all((console / "dist" / name).exists() for name in build["files"])


def test_the_published_index_names_only_this_stacks_api_and_cognito():
    config = {"region": "eu-west-1", "userPoolId": "p", "clientId": "c", "apiUrl": "https://abc.execute-api.test/",
              "cognitoEndpoint": "https://cognito-idp.eu-west-1.amazonaws.com/"}
    files = {key: body for key, body, *_ in console_site.site_files(ROOT / "console" / "dist", config)}

    index = files["index.html"].decode()
    assert "script-src 'self';" in index and "connect-src 'self' https://abc.execute-api.test " in index
    assert console_site.CSP_PLACEHOLDER not in index and "unsafe-inline" not in index
    assert json.loads(files["config.json"]) == config
    with pytest.raises(ValueError):
        console_site.content_security_policy({**config, "apiUrl": "javascript:alert(1)"})


def test_the_console_names_and_filters_every_delivery_status():
    """A status the relay records (waiting for a sending limit, held, ...) has its words in the console and an entry
    in the delivery log's status filter, so an admin can find every notification by what happened to it."""
    import re

    from relaydesk.tickets.model import DeliveryStatus

    words = (ROOT / "console" / "src" / "words.js").read_text()
    filters = re.search(r"const STATUSES = \[([^\]]*)\]", (ROOT / "console/src/pages/log.js").read_text()).group(1)
    for status in DeliveryStatus:
        assert re.search(rf"^\s+{status.value}: '", words, re.M), f"no words for {status.value}"
        assert f"'{status.value}'" in filters, f"the log cannot filter {status.value}"
