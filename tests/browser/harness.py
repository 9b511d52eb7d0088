"""The browser tests' kit: Debian's Chromium (/usr/bin/chromium, never a downloaded browser) driven by Playwright for
Python, trusting the local stack's CA by its public key (nothing else is trusted), a fresh profile per browser, and
each test's last page saved as a screenshot under SCREENSHOTS (the CI artifact, README's "Browser tests")."""

from __future__ import annotations

import base64
import hashlib
import smtplib
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "console"
# What this machine needs: no sandbox as root, and no background connections (the network is closed).
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
WAIT_MS = 60_000  # the longest a page may take to show what it should (a verification's two round trips)


def spki_hash(pem_path: Path) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of the local CA: Chromium trusts the certificates it issued."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(pem_path.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@contextmanager
def chromium(ca_pem: Path, *, viewport: dict = DESKTOP) -> Iterator:
    """A Playwright browser context on the system Chromium with a new, empty profile; closed at the end."""
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is not installed: run `make test` (it installs it), or "
                    "`apt-get install chromium`")
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)

    with tempfile.TemporaryDirectory(prefix="relaydesk-chromium-") as profile, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), viewport=viewport, locale="en-US", timezone_id="UTC",
            args=[*FLAGS, f"--ignore-certificate-errors-spki-list={spki_hash(ca_pem)}"])
        context.set_default_timeout(WAIT_MS)
        try:
            yield context
        finally:
            context.close()


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def no_horizontal_overflow(page) -> int:
    """How many pixels the page is wider than the window (0: nothing is cut off or needs sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


def send_mail(stack, *, sender: str, to: str, subject: str, body: str) -> str:
    """A mail from an outside sender to the customer's MX (acme.test), as the internet delivers it; its Message-ID."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="mail.example.net")
    message.set_content(body)
    mx = stack.customer.mx
    with smtplib.SMTP(mx.host, mx.port, local_hostname="mail.example.net", timeout=30) as client:
        client.starttls(context=stack.client_tls())
        client.send_message(message, from_addr=sender, to_addrs=[to])
    return message["Message-ID"]


def poll(probe, what: str, timeout: float = WAIT_MS / 1000):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
