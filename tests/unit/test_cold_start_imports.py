"""What each Lambda handler imports at cold start: the heavy libraries of rare paths stay out until the path runs,
and the path still works once it does (issue 7's cold-start target; figures in bench/bench_coldstart.py)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.bench_coldstart import ROOT, lambda_env

# Imported by no handler at cold start: the modules here cost milliseconds each and serve a rare path only.
NEVER_AT_IMPORT = {"pydantic_settings", "dotenv", "argparse", "dkim", "dns", "nacl", "nh3"}
ALSO_NOT = {
    # Imported by the first address that signs (relaydesk.outbound.dkim), cryptography with its first key.
    "relay": {"cryptography", "relaydesk.dkim"},
    # asyncio: nothing these need imports it (wrapt 1.17, pinned, does not: layers/relaydesk/requirements.txt).
    "inbound": {"cryptography", "aiosmtplib", "asyncio"},
    "attachments": {"cryptography", "aiosmtplib", "asyncio"},
    "rotation": {"cryptography", "aiosmtplib", "asyncio"},  # the SMTP probe is imported by the testSecret step only
    "addresses_api": {"cryptography", "aiosmtplib"},  # ... and by the live-check operations only
    # Alerts and SES feedback go through SES's API only: no SMTP, no signing. (powertools' batch utility, which
    # checkpoints the change stream, imports asyncio.)
    "hold_alerts": {"cryptography", "aiosmtplib"},
    "ses_feedback": {"cryptography", "aiosmtplib", "asyncio"},
}

_PROBE = """
import json, sys
sys.path.insert(0, {path!r})
import app
{after}
print(json.dumps(sorted(sys.modules)))
"""


def imported_by(function: str, after: str = "") -> set[str]:
    """The modules in sys.modules after importing the handler as Lambda does (then running `after`)."""
    code = _PROBE.format(path=str(ROOT / "functions" / function), after=after)
    completed = subprocess.run([sys.executable, "-c", code], env=lambda_env(function), cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("function", sorted(ALSO_NOT))
def test_handler_cold_start_leaves_rare_path_libraries_unimported(function):
    modules = imported_by(function)

    assert "app" in modules
    assert modules & (NEVER_AT_IMPORT | ALSO_NOT[function]) == set()


def test_relay_signs_with_dkim_after_a_cold_start_that_did_not_import_cryptography():
    # The relay's own path to a signer (relaydesk.outbound.dkim), in the process that imported the handler.
    sign = """
from relaydesk.dkim.keys import Algorithm, generate_private_key, load_private_key
from relaydesk.dkim.signer import DkimSigner, SigningKey
assert 'cryptography' not in sys.modules
keys = [SigningKey(f"s{i}", algorithm, load_private_key(algorithm, generate_private_key(algorithm)))
        for i, algorithm in enumerate(Algorithm)]
signed = DkimSigner("acme.test", keys).sign(b"From: a@acme.test\\r\\nSubject: hi\\r\\n\\r\\nbody\\r\\n")
assert signed.count(b"DKIM-Signature:") == 2, signed
"""
    modules = imported_by("relay", after=sign)

    assert "cryptography" in modules


def test_relay_signs_a_token_request_after_a_cold_start_that_did_not_import_cryptography(service_account_keys):
    # The relay's token path for a Google service account (relaydesk.oauth -> relaydesk.oauth_jwt), from the secret's
    # JSON as the relay reads it: cryptography comes with the first signature, not with the handler.
    secret = json.dumps({"host": "smtp.gmail.com", "username": "support@acme.test", "auth_kind": "oauth2",
                         "oauth_grant": "service_account",
                         "oauth_service_account": service_account_keys[0].client_email,
                         "oauth_private_key": service_account_keys[0].private_key_pem})
    sign = f"""
from relaydesk.outbound.credentials import parse_secret
creds = parse_secret({secret!r})
assert 'cryptography' not in sys.modules
from relaydesk.oauth import AccessTokens, Response
sent = []
granted = Response(200, b'{{"access_token": "t", "expires_in": 3599}}')
fetch = lambda url, body, creds, timeout: sent.append(body) or granted
assert AccessTokens(fetch=fetch).token(creds) == "t" and sent[0].startswith(b'grant_type=urn')
"""
    modules = imported_by("relay", after=sign)

    assert "cryptography" in modules and "relaydesk.oauth_jwt" in modules
