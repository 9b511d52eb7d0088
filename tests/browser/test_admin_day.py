"""An admin's whole day in the admin console, in Debian's Chromium against the local stack (HTTPS APIs behind the real
JWT authorizer, Cognito's SRP sign-in with a real password check, acme.test's own smarthost with STARTTLS and AUTH):

1. sign in, connect support@acme.test to the local smarthost through the wizard (a wrong password first: the
   failed step is explained), verify it;
2. a mail comes in: the ticket's notification is delivered, as the delivery log shows;
3. the smarthost's password changes: the next notification is held, the address says why;
4. new credentials in the rotate form: the held notification is released and delivered;
5. DKIM is turned on: the records shown are the domain's keys;
6. the connector is disabled: notifications fall back to Relaydesk's own outbound;
7. another tenant's admin signs in and sees none of it.

Between them: suspended tickets (recover), settings and users (invite), held, deferred and dead letters, and every
page at a phone's width. Each test saves its last page under test-artifacts/console/ (tests/browser/harness.py)."""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import smtplib
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import quote

import boto3
import pytest
from playwright.sync_api import Page, expect
from relaydesk.accounts import system_address
from relaydesk.wiring import aws_stores

from local.dns_server import write_zone, zone_records
from local.stack import LocalStack
from local.tenants import User, add_tenant
from tests.browser.harness import (
    DESKTOP,
    PHONE,
    chromium,
    no_horizontal_overflow,
    screenshot,
    send_mail,
)

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SUPPORT = "support@acme.test"
JANE = "jane@example.net"


@dataclass
class Day:
    stack: LocalStack
    page: Page
    admin: User
    other: User
    account_id: str
    system_address: str
    smtp_password: str
    api_bodies: list[str] = field(default_factory=list)  # every tenant API response the console received

    @property
    def url(self) -> str:
        return self.stack.console.url

    def go(self, route: str) -> None:
        self.page.goto(f"{self.url}#/{route}")

    def secrets_seen(self, *values: str) -> list[str]:
        text = self.page.content() + "\n".join(self.api_bodies)
        return [value for value in values if value and value in text]


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("console")) as stack:
        stores = aws_stores()
        cognito = boto3.client("cognito-idp")
        pool = stack.env["RELAYDESK_USER_POOL_ID"]
        account, admin = add_tenant(stores, cognito, pool, "acme", "Acme", domain="acme.test")
        _, other = add_tenant(stores, cognito, pool, "globex", "Globex", domain="globex.test")
        target = system_address(account.subdomain, stack.mail_domain)
        password = secrets.token_urlsafe(18)
        stack.customer.set_password(SUPPORT, password)
        stack.customer.forward(SUPPORT, target)
        with chromium(stack.ca.pem_path) as browser:
            page = browser.new_page()
            today = Day(stack, page, admin, other, account.account_id, target, password)
            api_origin = stack.tenant_api.url.rstrip("/")

            def keep(response) -> None:
                if response.url.startswith(api_origin):
                    with contextlib.suppress(Exception):  # a response without a body (a preflight)
                        today.api_bodies.append(response.text())
            page.on("response", keep)
            yield today


def sign_in(day: Day, user: User) -> None:
    day.page.goto(day.url)
    day.page.get_by_label("Email address", exact=True).fill(user.username)
    day.page.get_by_label("Password", exact=True).fill(user.password)
    day.page.get_by_role("button", name="Sign in").click()
    expect(day.page.get_by_role("heading", name="Support addresses")).to_be_visible()


def fill_connection(day: Day, password: str) -> None:
    page = day.page
    submission = day.stack.customer.submission
    page.get_by_label("Support address", exact=True).fill(SUPPORT)
    page.get_by_label("Display name (optional)", exact=True).fill("Acme Support")
    page.get_by_label("Host", exact=True).fill(submission.host)
    page.get_by_label("Port", exact=True).fill(str(submission.port))
    page.get_by_label("Password", exact=True).fill(password)


def upload_ca(day: Day) -> None:
    field = day.page.get_by_label("CA certificate of a private mail server (optional)", exact=True)
    field.set_input_files(str(day.stack.ca.pem_path))


def step_row(page: Page, name: str):
    """The live check's row of one step, by the start of its name ("AUTH: ...")."""
    return page.locator(".step", has=page.locator(".step-name", has_text=re.compile(f"^{re.escape(name)}:")))


def test_1_sign_in_connect_through_the_wizard_and_verify(day):
    page = day.page
    page.goto(day.url)
    page.get_by_label("Email address", exact=True).fill(day.admin.username)
    page.get_by_label("Password", exact=True).fill("not-the-password-1A")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("The email address or the password is wrong.")
    sign_in(day, day.admin)

    page.get_by_role("link", name="Connect", exact=True).click()
    page.get_by_role("radio", name=re.compile("Postfix or another server")).check()
    page.get_by_role("button", name="Next").click()
    wrong = "wrong-" + day.smtp_password
    fill_connection(day, day.smtp_password)  # without the private CA's certificate first
    page.get_by_role("button", name="Check and connect").click()
    expect(step_row(page, "Certificate")).to_contain_text("failed")
    outcome = page.locator(".error-box")
    expect(outcome).to_contain_text("authority Relaydesk does not trust")
    expect(outcome).to_contain_text("the CA certificate field")  # the console's words, not the CLI's flag
    assert "--ca-bundle" not in outcome.inner_text()
    expect(step_row(page, "AUTH")).to_contain_text("not run")  # no password over an unverified connection
    page.get_by_role("button", name="Back to the form").click()
    upload_ca(day)
    page.get_by_label("Password", exact=True).fill(wrong)
    page.get_by_role("button", name="Check and connect").click()
    expect(step_row(page, "AUTH")).to_contain_text("failed")
    expect(step_row(page, "STARTTLS")).to_contain_text("passed")
    expect(step_row(page, "Certificate")).to_contain_text("passed")
    expect(page.locator(".error-box")).to_contain_text("What to do")
    screenshot(page, "1a-wizard-live-check-refused")

    page.get_by_role("button", name="Back to the form").click()
    page.get_by_label("Password", exact=True).fill(day.smtp_password)
    page.get_by_role("button", name="Check and connect").click()
    expect(page.get_by_role("button", name="Next: forward and verify")).to_be_visible()
    for name in ("DNS", "TCP", "Greeting", "STARTTLS", "Certificate", "AUTH", "Sender"):
        expect(step_row(page, name)).to_contain_text("passed")
    screenshot(page, "1b-wizard-live-check-passed")

    page.get_by_role("button", name="Next: forward and verify").click()
    expect(page.get_by_text(day.system_address).first).to_be_visible()
    page.get_by_role("button", name="Verify now").click()
    expect(page.get_by_text("forwarding and outbound verified")).to_be_visible()
    facts = page.locator("#forward-title ~ dl, .facts").first
    expect(facts).to_contain_text("Forwarding")
    expect(page.locator(".facts .badge-ok")).to_have_count(2)
    screenshot(page, "1c-wizard-verified")
    assert day.secrets_seen(day.smtp_password, wrong) == []  # written once, never shown again

    page.get_by_role("link", name="Open the address").click()
    expect(page.locator(".page-head .badges")).to_contain_text("verified")


def test_2_a_mail_in_and_its_notification_delivered_in_the_log(day):
    page = day.page
    send_mail(day.stack, sender=f"Jane Doe <{JANE}>", to=SUPPORT, subject="Printer on floor 3 is jammed",
              body="Hi, the printer shows E-52. Jane")
    day.go("log")
    row = page.locator("table.log tbody tr", has_text="Printer on floor 3 is jammed")
    expect(row).to_contain_text("delivered")
    expect(row).to_contain_text(f"your server ({day.stack.customer.submission.host}")
    expect(row.locator(".reply")).to_contain_text(re.compile(r"\b250\b"))
    expect(row).to_contain_text(JANE)
    screenshot(page, "2-delivery-log-delivered")


def test_3_a_new_smarthost_password_holds_the_address_with_the_explanation(day):
    page = day.page
    day.stack.customer.set_password(SUPPORT, "changed-on-the-server-" + secrets.token_urlsafe(8), end_sessions=True)
    send_mail(day.stack, sender=f"Jane Doe <{JANE}>", to=SUPPORT, subject="Still jammed",
              body="It is still jammed. Jane")
    day.go("addresses")
    listed = page.locator("table.list tbody tr", has_text=SUPPORT)
    expect(listed).to_contain_text("held: credentials refused")
    expect(listed).to_contain_text("refused the credentials")
    day.go(f"addresses/{quote(SUPPORT, safe='')}")
    expect(page.locator(".page-head .badges")).to_contain_text("held: credentials refused")
    explanation = page.locator("#last-error-title + .explanation, .explanation")
    expect(explanation).to_contain_text("refused the credentials")
    expect(explanation).to_contain_text("What to do")
    expect(page.locator("#held-title + p, section:has(#held-title) p").first).to_contain_text("1 notification")
    screenshot(page, "3-address-held-with-explanation")


def test_4_rotating_in_the_form_releases_the_held_notification(day):
    page = day.page
    new_password = "rotated-" + secrets.token_urlsafe(12)
    day.stack.customer.set_password(SUPPORT, new_password, end_sessions=True)
    page.get_by_role("button", name="Rotate credentials").click()
    page.get_by_label("New password", exact=True).fill(new_password)
    page.get_by_role("button", name="Test and save").click()
    expect(page.get_by_text("the smarthost accepted the new settings")).to_be_visible()
    expect(page.get_by_text("No notification is waiting.")).to_be_visible()
    expect(page.locator(".page-head .badges")).to_contain_text("verified")
    screenshot(page, "4a-address-rotated")
    day.go("log")
    row = page.locator("table.log tbody tr", has_text="Still jammed")
    expect(row).to_contain_text("delivered")
    expect(row).to_contain_text("attempts")  # the refused attempt, then the delivery
    screenshot(page, "4b-delivery-log-released")
    assert day.secrets_seen(new_password, day.smtp_password) == []


def test_5_dkim_turned_on_shows_the_domains_records(day):
    from relaydesk.dkim import domains
    from relaydesk.dkim.records import key_record

    page = day.page
    day.go("dkim")
    page.get_by_role("link", name="acme.test").click()
    page.get_by_role("button", name="Turn on DKIM").click()
    records = page.locator(".record")
    expect(records).to_have_count(2)
    keyring = domains.load(aws_stores(), "acme.test")
    expected = [key_record(key, "acme.test") for generation in keyring.generations for key in generation.keys]
    shown = [(records.nth(i).locator("code").nth(0).inner_text(), records.nth(i).locator("code").nth(2).inner_text())
             for i in range(2)]
    assert sorted(shown) == sorted((record.name, record.value) for record in expected)
    assert all(value.startswith("v=DKIM1; k=") for _, value in shown)
    expect(page.get_by_role("button", name=re.compile("Copy name"))).to_have_count(2)
    page.get_by_role("button", name="Start signing").click()  # not published yet: refused, with what to do
    expect(page.get_by_role("alert").first).to_contain_text("Publish")
    expect(page.get_by_role("button", name="Sign anyway (I have just published them)")).to_be_visible()

    # acme.test's DNS admin publishes the records shown (the local stack's DNS serves acme.test)
    zone = day.stack.state_dir / "dns" / "zone.json"
    write_zone(zone, [*zone_records(zone), *({"name": name, "type": "TXT", "value": value} for name, value in shown)])
    page.get_by_role("button", name="Check DNS").click()
    check = page.locator("section:has(#dns-check-title)")
    expect(check.locator(".finding", has_text="rsa._domainkey")).to_contain_text("DKIM ok")
    expect(check.locator(".finding", has_text="ed._domainkey")).to_contain_text("DKIM ok")
    page.get_by_role("button", name="Start signing").click()
    expect(page.get_by_text("Notifications from acme.test are signed from now on.")).to_be_visible()
    expect(page.locator("#records-title ~ p .badge").first).to_have_text("on")
    screenshot(page, "5-dkim-records-checked-and-signing")


def test_suspended_tickets_are_recovered_from_the_log(day):
    page = day.page
    bob_password = secrets.token_urlsafe(12)
    day.stack.customer.set_password("bob@acme.test", bob_password)
    message = EmailMessage()
    message["From"] = "Bob Agent <bob@acme.test>"
    message["To"] = day.system_address
    message["Subject"] = "FW: Invoice question"
    message.set_content("---------- Forwarded message ---------\nFrom: Carol <carol@example.org>\n"
                        "Subject: Invoice question\n\nWhy was I charged twice?\n")
    submission = day.stack.customer.submission
    with smtplib.SMTP(submission.host, submission.port, local_hostname="bob-laptop.acme.test", timeout=30) as c:
        c.starttls(context=day.stack.client_tls())
        c.login("bob@acme.test", bob_password)
        c.send_message(message, from_addr="bob@acme.test", to_addrs=[day.system_address])
    day.go("log?tab=suspended")
    item = page.locator("li.suspended", has_text="FW: Invoice question")
    expect(item).to_contain_text("forwarded by hand")
    screenshot(page, "log-suspended-tickets")
    item.get_by_role("button", name="Recover").click()
    expect(page.get_by_text("is a normal ticket now")).to_be_visible()


def test_settings_and_an_invitation(day):
    page = day.page
    day.go("settings")
    ccs = page.get_by_label("CCs and followers", exact=True)
    ccs.uncheck()
    expect(page.get_by_role("alert")).to_contain_text("CCs and followers cannot be turned off")
    page.get_by_label("Include attachments in email", exact=True).uncheck()
    expect(page.get_by_text("Saved.")).to_be_visible()
    page.get_by_label("Email address", exact=True).fill("ann@acme.test")
    page.get_by_label("Role", exact=True).select_option("agent")
    page.get_by_role("button", name="Invite").click()
    expect(page.get_by_text("ann@acme.test is invited")).to_be_visible()
    expect(page.locator("table.list tbody tr", has_text="ann@acme.test")).to_contain_text("invited")
    screenshot(page, "settings-and-users")


def test_held_deferred_and_dead_letters_tabs(day):
    page = day.page
    day.go("log?tab=held")
    expect(page.get_by_text("Nothing is held.")).to_be_visible()
    screenshot(page, "log-held-and-deferred")
    page.get_by_role("tab", name="Dead letters").click()
    expect(page.get_by_text("The dead-letter queue is empty.")).to_be_visible()
    screenshot(page, "log-dead-letters")


def test_held_notifications_past_the_first_page_are_shown_on_demand(day):
    from relaydesk.notification import Notification
    from relaydesk.outbound import hold

    page = day.page
    stores = aws_stores()
    ids = [f"N01PAGED{n:011d}" for n in range(51)]  # one more than the API's page
    for n, notification_id in enumerate(ids, start=1):
        hold.park(stores, Notification(notification_id=notification_id, account_id=day.account_id, ticket_id="T1",
                                       support_address=SUPPORT, recipients=[JANE], subject=f"Held {n:02d}",
                                       text_body="Hi"))
    try:
        day.go("log?tab=held")
        held = page.locator("section:has(#held-list-title)")
        expect(held.locator("li")).to_have_count(50)
        expect(held.locator("li").first).to_contain_text("Held 01")  # oldest first
        held.get_by_role("button", name="More held notifications").scroll_into_view_if_needed()
        screenshot(page, "log-held-first-page")
        held.get_by_role("button", name="More held notifications").click()
        expect(held.locator("li")).to_have_count(51)
        expect(held.locator("li").last).to_contain_text("Held 51")
        expect(held.get_by_role("button", name="More held notifications")).to_have_count(0)
        held.locator("li").last.scroll_into_view_if_needed()
        screenshot(page, "log-held-next-page")
    finally:
        for notification_id in ids:
            stores.held.remove(SUPPORT, notification_id)


def test_6_disabling_the_connector_falls_back_to_relaydesk(day):
    page = day.page
    day.go(f"addresses/{quote(SUPPORT, safe='')}")
    page.get_by_role("button", name="Disable connector").click()
    expect(page.locator(".page-head .badges")).to_contain_text("disabled: sent by Relaydesk")
    send_mail(day.stack, sender=f"Jane Doe <{JANE}>", to=SUPPORT, subject="Thanks, it works",
              body="All good now. Jane")
    day.go(f"log?address={quote(SUPPORT, safe='')}")
    row = page.locator("table.log tbody tr", has_text="Thanks, it works")
    expect(row).to_contain_text("delivered")
    expect(row).to_contain_text("Relaydesk (SES)")
    screenshot(page, "6-disabled-fallback-in-the-log")
    day.go(f"addresses/{quote(SUPPORT, safe='')}")
    expect(page.get_by_text("notifications go out through Relaydesk")).to_be_visible()
    screenshot(page, "6-address-disabled")


def test_the_wizard_can_be_reached_and_driven_from_the_keyboard(day):
    page = day.page
    day.go("addresses")
    expect(page.locator("main h1")).to_be_focused()  # the page's heading takes the focus: screen readers say where
    page.keyboard.press("Shift+Tab")
    for _ in range(20):  # Tab to the page's own "Connect an address" link
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Connect an address":
            break
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Connect an address")).to_be_focused()
    expect(page.get_by_role("radio").first).to_be_visible()  # the providers are loaded
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "radio":
            break
    focused = page.evaluate("document.activeElement.value")
    page.keyboard.press("Space")  # the focused provider is chosen
    expect(page.locator(f"input[type=radio][value={focused}]")).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Next")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Support address", exact=True)).to_be_visible()
    screenshot(page, "keyboard-wizard-connection-step")


def body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and "-----" not in line]


def test_the_wizard_signs_in_with_a_google_service_account_key_file(day, tmp_path):
    from local.app_credentials import ServiceAccountKey

    page = day.page
    # Its token endpoint is a closed loopback port: the live check gets as far as asking for a token.
    key = ServiceAccountKey.create("relaydesk-smtp", project="acme-mail", token_uri="https://127.0.0.1:9/token")
    key_file = tmp_path / "acme-mail-relaydesk-smtp.json"
    key_file.write_text(key.json)
    day.go("connect")
    page.reload()  # a fresh wizard
    page.get_by_role("radio", name=re.compile("Google Workspace \\(service account\\)")).check()
    expect(page.get_by_text("Domain-wide delegation")).to_be_visible()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Support address", exact=True).fill("sales@acme.test")
    submission = day.stack.customer.submission
    page.get_by_label("Host", exact=True).fill(submission.host)
    page.get_by_label("Port", exact=True).fill(str(submission.port))
    page.get_by_label("Service account key file (JSON)").set_input_files(str(key_file))
    expect(page.get_by_text("Using acme-mail-relaydesk-smtp.json")).to_be_visible()
    upload_ca(day)
    page.get_by_role("button", name="Check and connect").click()

    expect(step_row(page, "Token")).to_contain_text("failed")
    for name in ("DNS", "TCP", "STARTTLS", "Certificate"):
        expect(step_row(page, name)).to_contain_text("passed")
    expect(step_row(page, "AUTH")).to_contain_text("not run")
    expect(page.locator(".error-box")).to_contain_text("What to do")
    screenshot(page, "wizard-google-service-account-token-step")
    assert day.secrets_seen(*body_lines(key.private_key_pem)) == []  # the key went once, and never came back


def test_the_wizard_sends_an_entra_app_certificate_with_its_key(day, tmp_path):
    from local.app_credentials import AppCertificate

    page = day.page
    cert = AppCertificate.create("Relaydesk SMTP")
    pem, public_only = tmp_path / "relaydesk.pem", tmp_path / "relaydesk.crt"
    pem.write_text(cert.bundle_pem)
    public_only.write_text(cert.certificate_pem)
    sent = []

    def refuse(route):  # Entra ID's token endpoint is on the internet: the test stops at what the page sends
        sent.append(json.loads(route.request.post_data))
        route.fulfill(status=422, content_type="application/json", body=json.dumps(
            {"code": "configuration_error", "message": "the tenant refused the app (stopped by the test)"}))

    day.go("connect")
    page.reload()
    page.get_by_role("radio", name=re.compile("Microsoft 365 \\(OAuth 2.0 app\\)")).check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Support address", exact=True).fill("billing@acme.test")
    page.get_by_role("radio", name="Certificate (recommended by Microsoft)").check()
    page.get_by_label("Directory (tenant) ID").fill("acme.onmicrosoft.com")
    page.get_by_label("Application (client) ID").fill("9a8b7c6d-1111-4222-8333-444455556666")
    certificate = page.get_by_label("Certificate and private key (PEM)")
    certificate.set_input_files(str(public_only))
    expect(page.get_by_role("alert")).to_contain_text("needs both the certificate and its unencrypted private key")
    certificate.set_input_files(str(pem))
    expect(page.get_by_text("Using relaydesk.pem")).to_be_visible()
    page.route("**/connections", refuse)
    try:
        page.get_by_role("button", name="Check and connect").click()
        expect(page.get_by_role("alert")).to_contain_text("The tenant refused the app")
    finally:
        page.unroute("**/connections")
    screenshot(page, "wizard-microsoft-365-certificate")
    [body] = sent
    assert body["auth_kind"] == "oauth2" and body["oauth_grant"] == "client_certificate"
    assert body["oauth_certificate_pem"] == cert.bundle_pem and "oauth_client_secret" not in body
    assert cert.private_key_pem.splitlines()[1] not in page.content()


@pytest.fixture(scope="module")
def identity_providers(day):
    """The local token endpoint acting as Google and as Entra ID, an XOAUTH2 smarthost acting as Gmail and one acting
    as Exchange Online (only the app's mailbox may send); all on loopback, certificates from the stack's CA."""
    from local.oauth_server import TokenServer
    from local.smarthost import SmtpServer

    tokens = TokenServer(day.stack.ca, clients={ENTRA_APP: secrets.token_urlsafe(24)}).start()
    gmail = SmtpServer(day.stack.ca, oauth=tokens, xoauth2_replies="gmail").start()
    exchange = SmtpServer(day.stack.ca, oauth=tokens, oauth_mailboxes={ENTRA_APP: {EXCHANGE_MAILBOX}}).start()
    try:
        yield Providers(tokens, gmail, exchange)
    finally:
        for server in (exchange, gmail, tokens):
            server.stop()


@dataclass
class Providers:
    tokens: object  # local.oauth_server.TokenServer
    gmail: object  # local.smarthost.SmtpServer
    exchange: object
    google_keys: list = field(default_factory=list)  # the service account's keys, the one in use last

    def __iter__(self):
        return iter((self.tokens, self.gmail, self.exchange))


ENTRA_APP = "6a0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3"
WORKSPACE_MAILBOX = "workspace@acme.test"
EXCHANGE_MAILBOX = "exchange@acme.test"


def connector_facts(page: Page):
    return page.locator("section:has(#connector-title) dl.facts")


def rotate_with_file(page: Page, label: str, path, shot: str | None = None) -> None:
    page.get_by_role("button", name="Rotate credentials").click()
    page.get_by_label(label).set_input_files(str(path))
    expect(page.get_by_text(f"Using {path.name}")).to_be_visible()
    if shot:
        screenshot(page, shot)
    page.get_by_role("button", name="Test and save").click()


def test_a_google_service_account_connects_through_the_wizard_and_rotates_its_key(day, identity_providers,
                                                                                  tmp_path):
    from local.app_credentials import ServiceAccountKey

    tokens, gmail, _ = identity_providers
    page = day.page
    key = ServiceAccountKey.create("relaydesk-smtp", project="acme-mail", token_uri=tokens.google_token_url)
    tokens.google.add_service_account(key)
    tokens.google.delegate(key.client_id)  # the Workspace admin's domain-wide delegation
    tokens.google.add_user(WORKSPACE_MAILBOX)
    key_file = tmp_path / "acme-mail-key.json"
    key_file.write_text(key.json)
    day.go("connect")
    page.reload()
    page.get_by_role("radio", name=re.compile("Google Workspace \\(service account\\)")).check()
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Support address", exact=True).fill(WORKSPACE_MAILBOX)
    page.get_by_label("Host", exact=True).fill(gmail.host)
    page.get_by_label("Port", exact=True).fill(str(gmail.port))
    page.get_by_label("Service account key file (JSON)").set_input_files(str(key_file))
    upload_ca(day)
    page.get_by_role("button", name="Check and connect").click()
    expect(page.get_by_role("button", name="Next: forward and verify")).to_be_visible()
    for name in ("Token", "AUTH", "Sender"):
        expect(step_row(page, name)).to_contain_text("passed")

    day.go(f"addresses/{quote(WORKSPACE_MAILBOX, safe='')}")
    facts = connector_facts(page)
    expect(facts).to_contain_text("Google service account with domain-wide delegation")
    expect(facts).to_contain_text(key.client_email)
    expect(facts).to_contain_text(key.client_id)
    new_key = key.new_key()
    tokens.google.add_key(new_key)  # Keys > Add key > JSON, in the Google Cloud console
    new_file = tmp_path / "acme-mail-new-key.json"
    new_file.write_text(new_key.json)
    issued = tokens.tokens_issued
    rotate_with_file(page, "New service account key file (JSON)", new_file)
    expect(page.get_by_text("the smarthost accepted the new settings")).to_be_visible()
    identity_providers.google_keys.append(new_key)
    assert tokens.tokens_issued > issued  # the rotation's test asked Google for a token with the new key
    current = boto3.client("secretsmanager").get_secret_value(  # the stage the relay reads
        SecretId=f"relaydesk/connector/{day.account_id}/{WORKSPACE_MAILBOX}", VersionStage="AWSCURRENT")
    assert json.loads(current["SecretString"])["oauth_key_id"] == new_key.private_key_id
    screenshot(page, "address-google-service-account-rotated")
    leaked = [*body_lines(key.private_key_pem), *body_lines(new_key.private_key_pem), *tokens.issued_tokens()]
    assert day.secrets_seen(*leaked) == []


def test_a_service_account_hold_is_released_by_a_new_key_in_the_form(day, identity_providers, tmp_path):
    from relaydesk.addresses import state

    tokens = identity_providers.tokens
    page = day.page
    stores = aws_stores()
    # Verified as test 1 verifies support@acme.test (the XOAUTH2 smarthost here delivers nowhere, so no test mail
    # can come back through it): forwarding and outbound passed, the connector active.
    for direction in (state.Direction.FORWARDING, state.Direction.OUTBOUND):
        for step in (state.StartVerification(direction, secrets.token_hex(8)), state.VerificationPassed(direction)):
            state.change(stores, day.account_id, WORKSPACE_MAILBOX, step)
    day.stack.customer.forward(WORKSPACE_MAILBOX, day.system_address)
    send_mail(day.stack, sender=f"Jane Doe <{JANE}>", to=WORKSPACE_MAILBOX, subject="Workspace printer",
              body="The printer is out of toner. Jane")
    day.go(f"log?address={quote(WORKSPACE_MAILBOX, safe='')}")
    expect(page.locator("table.log tbody tr", has_text="Workspace printer")).to_contain_text("delivered")

    # The key in use is deleted in the Google Cloud console, and the tokens issued with it stop working.
    in_use = identity_providers.google_keys[-1]  # the one the previous test rotated to
    tokens.google.delete_key(in_use)
    tokens.expire_all()
    identity_providers.gmail.end_sessions(WORKSPACE_MAILBOX)  # the relay's signed-in connection ends with them
    send_mail(day.stack, sender=f"Jane Doe <{JANE}>", to=WORKSPACE_MAILBOX, subject="Workspace printer again",
              body="Still no toner. Jane")
    day.go(f"addresses/{quote(WORKSPACE_MAILBOX, safe='')}")
    expect(page.locator(".page-head .badges")).to_contain_text("held: credentials refused")
    expect(page.locator("section:has(#held-title) p").first).to_contain_text("1 notification")
    expect(page.locator("section:has(#last-error-title)")).to_contain_text("What to do")
    screenshot(page, "address-google-service-account-held")

    fresh = in_use.new_key()
    tokens.google.add_key(fresh)
    key_file = tmp_path / "acme-mail-fresh-key.json"
    key_file.write_text(fresh.json)
    rotate_with_file(page, "New service account key file (JSON)", key_file)
    expect(page.get_by_text("the smarthost accepted the new settings")).to_be_visible()
    expect(page.get_by_text("No notification is waiting.")).to_be_visible()
    day.go(f"log?address={quote(WORKSPACE_MAILBOX, safe='')}")
    expect(page.locator("table.log tbody tr", has_text="Workspace printer again")).to_contain_text("delivered")
    screenshot(page, "log-google-service-account-released")
    assert day.secrets_seen(*body_lines(fresh.private_key_pem), *tokens.issued_tokens()) == []


def test_a_certificate_address_rotates_to_a_new_certificate_once_entra_id_knows_it(day, identity_providers,
                                                                                 tmp_path):
    from relaydesk.addresses import lifecycle
    from relaydesk.addresses.sign_in import certificate_fields
    from relaydesk.credentials import checked_credentials

    from local.app_credentials import AppCertificate

    tokens, _, exchange = identity_providers
    page = day.page
    first, second = AppCertificate.create("Relaydesk SMTP"), AppCertificate.create("Relaydesk SMTP 2026")
    tokens.add_certificate(ENTRA_APP, first.certificate_pem)
    # Connected as `relaydesk addresses connect --certificate-file` does (the wizard's Entra ID is the internet's).
    credentials = checked_credentials({
        "host": exchange.host, "port": exchange.port, "username": EXCHANGE_MAILBOX, "auth_kind": "oauth2",
        "oauth_tenant_id": tokens.tenant, "oauth_client_id": ENTRA_APP, "oauth_token_url": tokens.token_url,
        "ca_bundle_pem": day.stack.ca.pem_path.read_text(), **certificate_fields(first.bundle_pem)})
    lifecycle.connect_address(aws_stores(), day.account_id, EXCHANGE_MAILBOX, credentials, "Acme Exchange")
    pem = tmp_path / "relaydesk-2026.pem"
    pem.write_text(second.bundle_pem)

    day.go(f"addresses/{quote(EXCHANGE_MAILBOX, safe='')}")
    facts = connector_facts(page)
    expect(facts).to_contain_text("Entra ID app with a certificate")
    expect(facts).to_contain_text(ENTRA_APP)
    expect(facts).to_contain_text(credentials.oauth_certificate_thumbprint)
    rotate_with_file(page, "New certificate and private key (PEM)", pem)  # not uploaded to the app yet
    expect(page.locator("section:has(#connector-title) .error-box")).to_contain_text(
        "credential rotation failed")
    last_error = page.locator("section:has(#last-error-title)")
    expect(last_error).to_contain_text("AADSTS700027")
    expect(last_error).to_contain_text("What to do: Upload the certificate's public part")
    expect(facts).to_contain_text(credentials.oauth_certificate_thumbprint)  # the current one stays
    screenshot(page, "address-certificate-rotation-refused")

    tokens.add_certificate(ENTRA_APP, second.certificate_pem)  # Certificates & secrets > Upload certificate
    rotate_with_file(page, "New certificate and private key (PEM)", pem, shot="address-certificate-rotate-form")
    expect(page.get_by_text("the smarthost accepted the new settings")).to_be_visible()
    new_thumbprint = certificate_fields(second.bundle_pem)["oauth_certificate_thumbprint"]
    expect(facts).to_contain_text(new_thumbprint)
    screenshot(page, "address-certificate-rotated")
    leaked = [*body_lines(first.private_key_pem), *body_lines(second.private_key_pem), *tokens.issued_tokens()]
    assert day.secrets_seen(*leaked) == []


MICROSOFT_MAILBOX = "m365@acme.test"


def limit_row(page: Page, name: str):
    return page.locator(f"section:has(#limits-title) tr[data-limit={name}]")


def test_an_admin_lowers_a_microsoft_365_mailboxs_limit_cannot_raise_it_and_resets_it(day):
    from relaydesk.addresses import lifecycle
    from relaydesk.addresses.limits import limits_of, set_limits
    from relaydesk.credentials import SmtpCredentials
    from relaydesk.tickets.model import DeliveryStatus, NotificationRecord, Ticket

    page = day.page
    stores = aws_stores()
    password = secrets.token_urlsafe(18)
    day.stack.customer.set_password(MICROSOFT_MAILBOX, password)
    submission = day.stack.customer.submission
    # Connected as `relaydesk addresses connect --preset microsoft365 --host ...` does: the live check against the
    # local smarthost, then Microsoft 365's published limits for the mailbox (the host is not Microsoft's here).
    lifecycle.connect_address(stores, day.account_id, MICROSOFT_MAILBOX, SmtpCredentials(
        host=submission.host, port=submission.port, username=MICROSOFT_MAILBOX, password=password,
        ca_bundle_pem=day.stack.ca.pem_path.read_text()), "Acme (Microsoft 365)")
    set_limits(stores.directory, day.account_id, MICROSOFT_MAILBOX, provider="microsoft365")
    stores.tickets.create_ticket(Ticket(  # one notification waiting for the mailbox's turn, as the relay records it
        ticket_id="T01LIMITS0000000000001", account_id=day.account_id, support_address=MICROSOFT_MAILBOX,
        subject="Mass update", requester="dana@example.org", notifications=[NotificationRecord(
            notification_id="N01LIMITS0000000000001", message_id="<limits-1@acme.test>",
            recipients=["dana@example.org"], status=DeliveryStatus.WAITING)]))

    def in_force() -> int:
        return limits_of(stores.directory.get_account_address(day.account_id, MICROSOFT_MAILBOX)).messages_per_minute

    day.go(f"addresses/{quote(MICROSOFT_MAILBOX, safe='')}")
    panel = page.locator("section:has(#limits-title)")
    expect(panel).to_contain_text("Microsoft 365's published sending limits")
    for name, value in (("messages_per_minute", "30"), ("recipients_per_day", "10,000"),
                        ("recipients_per_message", "500"), ("connections", "3")):
        expect(limit_row(page, name).locator("td.value")).to_have_text(value)
        expect(limit_row(page, name).locator("td.provider")).to_have_text(value)
    expect(panel.locator(".waiting")).to_contain_text("1 notification of this address is waiting for its turn")
    expect(panel).to_contain_text("applies to its next batch")
    # Its forwarding guide is Microsoft 365's (its profile), not the Postfix one its host would suggest.
    guide = page.locator("section:has(#forwarding-title)")
    expect(guide).to_contain_text(f"apply to messages sent to {MICROSOFT_MAILBOX}")
    expect(guide).to_contain_text("Exchange admin center")
    expect(guide).not_to_contain_text("virtual alias map")
    guide.scroll_into_view_if_needed()
    screenshot(page, "address-guide-by-provider")

    panel.get_by_role("button", name="Lower limits").click()
    panel.get_by_label("Messages per minute", exact=True).fill("12")
    panel.get_by_role("button", name="Save limits").click()
    expect(panel.get_by_role("status").filter(has_text="Saved.")).to_contain_text("next batch")
    expect(limit_row(page, "messages_per_minute").locator("td.value")).to_have_text("12 lowered")
    page.reload()
    expect(limit_row(page, "messages_per_minute").locator("td.value")).to_have_text("12 lowered")
    expect(limit_row(page, "messages_per_minute").locator("td.provider")).to_have_text("30")
    expect(limit_row(page, "connections").locator("td.value")).to_have_text("3")
    assert in_force() == 12  # what the relay's shaper reads for the mailbox
    expect(panel.locator(".waiting")).to_contain_text("waiting for its turn")
    screenshot(page, "address-limits-lowered")

    panel.get_by_role("button", name="Lower limits").click()
    panel.get_by_label("Messages per minute", exact=True).fill("31")
    panel.get_by_role("button", name="Save limits").click()
    refusal = panel.locator(".error-box")
    expect(refusal).to_contain_text("Microsoft 365 allows at most 30 for messages per minute; 31 is above it.")
    expect(refusal).to_contain_text("(30 or less)")
    assert "--messages-per-minute" not in refusal.inner_text()  # the console's words, not the CLI's flag
    screenshot(page, "address-limits-raise-refused")
    assert in_force() == 12
    panel.get_by_role("button", name="Cancel").click()

    panel.get_by_role("button", name="Reset to the provider's limits").click()
    expect(limit_row(page, "messages_per_minute").locator("td.value")).to_have_text("30")
    expect(panel).to_contain_text("Microsoft 365's limits apply again")
    expect(panel.get_by_role("button", name="Reset to the provider's limits")).to_have_count(0)
    assert in_force() == 30
    assert stores.directory.get_account_address(day.account_id, MICROSOFT_MAILBOX).connector.limits is None
    screenshot(page, "address-limits-reset")
    assert day.secrets_seen(password) == []


@pytest.mark.parametrize("route", ["addresses", f"addresses/{quote(SUPPORT, safe='')}",
                                   f"addresses/{quote(EXCHANGE_MAILBOX, safe='')}",
                                   f"addresses/{quote(MICROSOFT_MAILBOX, safe='')}", "connect", "dkim/acme.test",
                                   "log", "log?tab=held", "log?tab=suspended", "settings"])
def test_every_page_fits_a_phone(day, route):
    page = day.page
    page.set_viewport_size(PHONE)
    try:
        day.go(route)
        expect(page.locator("main h1")).to_be_visible()
        expect(page.locator("main .spinner")).to_have_count(0)  # loaded
        assert no_horizontal_overflow(page) <= 0, route
        screenshot(page, "phone-" + re.sub(r"[^a-z0-9]+", "-", route.split("%40")[0].lower()).strip("-"))
    finally:
        page.set_viewport_size(DESKTOP)
    assert no_horizontal_overflow(page) <= 0, route  # and at 1280 x 800


def test_deferred_notifications_are_found_beyond_the_first_page_of_the_log(day):
    from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket

    page = day.page
    tickets = aws_stores().tickets

    def ticket(index: int, status: DeliveryStatus, reply: str, subject: str) -> Ticket:
        attempt = DeliveryAttempt(status=status, route="connector:smtp.acme.test", smtp_code=int(reply[:3]),
                                  reply=reply)
        return Ticket(ticket_id=f"T01M9Y{index:013d}", account_id=day.account_id, support_address=SUPPORT,
                      subject=subject, requester=f"customer{index}@example.org", notifications=[NotificationRecord(
                          notification_id=f"N01M9Y{index:013d}", message_id=f"<{index}@acme.test>",
                          recipients=[f"customer{index}@example.org"], status=status, attempts=[attempt])])

    # The deferred one first, then 110 newer tickets: more than one request of the log reads (100 tickets).
    tickets.create_ticket(ticket(0, DeliveryStatus.DEFERRED, "451 4.3.2 Try again later", "Deferred long ago"))
    for index in range(1, 111):
        tickets.create_ticket(ticket(index, DeliveryStatus.DELIVERED, "250 2.0.0 Ok", f"Delivered {index}"))
    looked = []
    page.on("request", lambda request: looked.append(request.url) if "status=deferred" in request.url else None)

    day.go("log?tab=held")

    deferred = page.locator("section:has(#deferred-list-title)")
    expect(deferred.locator("li", has_text="Deferred long ago")).to_contain_text("451 4.3.2 Try again later")
    expect(deferred.get_by_role("button", name="Search older tickets")).to_have_count(0)  # the log's end was reached
    assert len(looked) == 2 and "cursor=" in looked[1]  # the newest 100 tickets, then the rest
    screenshot(page, "log-deferred-beyond-the-first-page")

    # A log without end (an account with years of tickets): one look stops after 10 requests and says so.
    def endless(route):
        route.fulfill(status=200, content_type="application/json", body=json.dumps(
            {"deliveries": [], "next_cursor": f"C{len(looked)}", "truncated": True}))

    page.route("**/deliveries?status=deferred*", endless)
    try:
        looked.clear()
        page.reload()
        expect(deferred).to_contain_text("Nothing is deferred on the most recently updated tickets.")
        expect(deferred).to_contain_text("Older tickets were not searched yet.")
        assert len(looked) == 10
        deferred.get_by_role("button", name="Search older tickets").click()
        for _ in range(600):  # Playwright's own wait: its route handler runs meanwhile (time.sleep would stall it)
            if len(looked) >= 20:
                break
            page.wait_for_timeout(100)
        expect(deferred.get_by_role("button", name="Search older tickets")).to_be_enabled()
        assert len(looked) == 20 and "cursor=C10" in looked[10]  # the next stretch starts where the last ended
        screenshot(page, "log-deferred-older-tickets-not-searched")
    finally:
        page.unroute("**/deliveries?status=deferred*")


def test_7_another_tenant_sees_none_of_it(day):
    page = day.page
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    sign_in(day, day.other)
    expect(page.locator("table.list tbody tr")).to_have_count(1)  # its own system address only
    assert "acme" not in page.locator("main").inner_text().lower()
    day.go(f"addresses/{quote(SUPPORT, safe='')}")
    expect(page.get_by_role("alert")).to_contain_text("not a support address")
    day.go("log")
    expect(page.get_by_text("No notification matches.")).to_be_visible()
    day.go("log?tab=suspended")
    expect(page.get_by_text("No suspended ticket.")).to_be_visible()
    day.go("dkim")
    expect(page.get_by_text("No domain yet")).to_be_visible()
    day.go("dkim/acme.test")
    expect(page.get_by_role("alert").first).to_be_visible()
    text = page.locator("main").inner_text()
    assert "_domainkey" not in text and day.account_id not in json.dumps(day.api_bodies[-5:])
    screenshot(page, "7-other-tenant-sees-nothing")
