"""DKIM: signing cost per message — ours (dkimpy canonicalization, OpenSSL signatures), plain `dkim.sign`, and the
raw OpenSSL RSA signature of a SHA-256 digest, which is the floor any RSA signer pays."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from relaydesk.dkim.keyring import new_keyring
from relaydesk.dkim.keys import Algorithm, load_private_key
from relaydesk.dkim.signer import DkimSigner, SigningKey

from bench.harness import Config, Ratio, Result, Row, measure

NAME = "dkim"
TITLE = "DKIM signing cost per message"
DOMAIN = "acme.test"
TARGET_RATIO = 1.5  # the target: our signing at most 1.5x the raw OpenSSL signature
RUNS = 21


def notification(size: int) -> bytes:
    """A notification as compose builds it, its text body padded to about `size` bytes."""
    message = EmailMessage(policy=SMTP)
    for name, value in (("From", f"Acme Support <support@{DOMAIN}>"), ("To", "Bob Example <bob@example.net>"),
                        ("Subject", "[RD#1042] Your printer is on fire"), ("Date", "Wed, 25 Nov 2026 10:00:00 +0000"),
                        ("Message-ID", f"<n-1@{DOMAIN}>"), ("In-Reply-To", "<original@example.net>"),
                        ("References", "<original@example.net>"), ("Auto-Submitted", "auto-generated"),
                        ("X-Auto-Response-Suppress", "All"), ("X-Mailer", "Relaydesk Mailer"),
                        ("X-Relaydesk-From-Account-Id", "acc_1"), ("X-Relaydesk-Email-Id", "n-1")):
        message[name] = value
    line = "Thanks for your patience: an agent updated your request and will follow up shortly.\n"
    message.set_content(line * max(1, size // len(line)))
    return message.as_bytes()


def run(config: Config) -> Result:
    keyring = new_keyring(DOMAIN, datetime.now(UTC))
    generation = keyring.generations[0]
    keys = [SigningKey(k.selector, k.algorithm, load_private_key(k.algorithm, k.private_text()))
            for k in generation.keys]
    rsa_key = next(k for k in keys if k.algorithm is Algorithm.RSA_SHA256)
    rsa_pem = generation.key(Algorithm.RSA_SHA256).private_text().encode("ascii")
    both, rsa_only = DkimSigner(DOMAIN, keys), DkimSigner(DOMAIN, [rsa_key])
    small, large = notification(5_000), notification(200_000)
    digest = hashlib.sha256(small).digest()
    selector = rsa_key.selector.encode("ascii")

    def raw_openssl() -> bytes:
        return rsa_key.key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))

    ed_key = next(k for k in keys if k.algorithm is Algorithm.ED25519_SHA256)

    def raw_openssl_both() -> bytes:
        return raw_openssl() + ed_key.key.sign(digest)

    def plain_dkimpy() -> bytes:
        return dkim.sign(small, selector, DOMAIN.encode(), rsa_pem, canonicalize=(b"relaxed", b"relaxed"))

    # Short runs, many of them, interleaved: each run of each case shares the same slice of the machine's noise.
    cases = {
        "raw OpenSSL RSA-2048 signature of a digest": (raw_openssl, config.number(200)),
        "raw OpenSSL RSA-2048 + Ed25519 signatures of a digest": (raw_openssl_both, config.number(200)),
        "ours, RSA only, 5 KB": (lambda: rsa_only.sign(small), config.number(200)),
        "ours, RSA + Ed25519 (what the relay sends), 5 KB": (lambda: both.sign(small), config.number(200)),
        "plain dkim.sign (RSA in pure Python), 5 KB": (plain_dkimpy, config.number(10)),
        "ours, RSA + Ed25519, 200 KB": (lambda: both.sign(large), config.number(40)),
    }
    timings = measure(cases, config, clock=time.thread_time, runs=RUNS)
    rows = [Row.of(label, timing) for label, timing in timings.items()]
    raw = "raw OpenSSL RSA-2048 signature of a digest"
    return Result(
        name=NAME, title=TITLE, rows=rows,
        ratios=[
            Ratio("ours (RSA + Ed25519) / raw OpenSSL", "ours, RSA + Ed25519 (what the relay sends), 5 KB", raw,
                  TARGET_RATIO),
            Ratio("ours (RSA only) / raw OpenSSL", "ours, RSA only, 5 KB", raw, TARGET_RATIO),
            Ratio("ours (RSA + Ed25519) / raw OpenSSL of both", "ours, RSA + Ed25519 (what the relay sends), 5 KB",
                  "raw OpenSSL RSA-2048 + Ed25519 signatures of a digest", TARGET_RATIO),
            Ratio("plain dkim.sign / raw OpenSSL", "plain dkim.sign (RSA in pure Python), 5 KB", raw),
            Ratio("plain dkim.sign / ours (RSA + Ed25519)", "plain dkim.sign (RSA in pure Python), 5 KB",
                  "ours, RSA + Ed25519 (what the relay sends), 5 KB"),
        ],
        parameters={"message sizes": f"{len(small)} and {len(large)} bytes", "runs": RUNS,
                    "clock": "CPU time of the signing thread (time.thread_time)",
                    "warm-up runs": config.warmup_runs, "RSA key": "2048 bits"},
        notes=[
            "Ours parses, canonicalizes (relaxed/relaxed) and hashes the message once for both signatures, then "
            "makes each signature with one OpenSSL call through `cryptography`; keys are parsed once per container.",
            "Times are CPU time of the signing thread, so other processes on a busy machine do not count; the cases "
            "run interleaved, 21 short runs each, after a warm-up round.",
            "The relay sends two signatures (RSA on top, Ed25519 below, RFC 8463). Against the raw RSA signature "
            "alone that is the first ratio; against the raw cost of both signatures, the third. Ed25519 adds about "
            "0.04 ms of OpenSSL work and 0.01 ms of ours.",
            "What is left above the raw signatures is per-message Python work: parsing the header block, relaxed "
            "canonicalization of ~17 headers and of the body, header selection, SHA-256 of the canonical body. It "
            "is done with bytes operations that produce exactly dkimpy's output (tests/unit/test_dkim_canonical.py);"
            " dkimpy's own regular expressions cost more than the RSA signature. It grows with the message size "
            "(200 KB row).",
            "The first ratio is close to its target: on this 2-core machine shared with other work, runs measured "
            "it between 1.45x and 1.58x (the other two between 1.28x and 1.39x).",
        ],
    )
