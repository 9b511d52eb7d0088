"""The help desk loop in the console, as an agent works it, in Debian's Chromium against the local stack (acme.test
connected to its own smarthost, verified and DKIM-signing, as `make demo` sets it up):

1. Jane writes to support@acme.test (Carol in CC): the agent, signed in with the agent role, sees the ticket in the
   list and no admin page (the navigation hides them, their URLs say "Admins only");
2. the agent replies in the console with a PDF attached (uploaded to S3 through the API's presigned POST): the mail
   in Jane's mailbox comes from acme.test's smarthost, named after the agent, DKIM-signed with d=acme.test (dkimpy
   verifies it against the records acme.test published), and the page shows it delivered to Jane and to Carol;
3. Jane answers that exact mail from her mail client: her answer comes back through acme.test's server-level forward
   onto the same ticket, and its copy to Carol shows delivered on the page;
4. an internal note (mailed to nobody), "assign to me", solved; the list's filters find it by status and assignee.

Each step saves its page under test-artifacts/console/ (tests/browser/harness.py)."""

from __future__ import annotations

import io
import re
import secrets
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import boto3
import pytest
from playwright.sync_api import Page, expect

from local import demo, end_user
from local.stack import LocalStack
from local.tenants import User, add_user
from tests.browser.harness import DESKTOP, PHONE, chromium, no_horizontal_overflow, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.timeout(300)]

JANE, CAROL = ("Jane Doe", "jane@example.net"), ("Carol Buyer", "carol@example.org")
AGENT_NAME, AGENT_EMAIL = "Bob Agent", "bob@acme.test"
SUBJECT = "Printer on floor 3 is jammed"
GUIDE = b"%PDF-1.4 reset guide for the floor 3 printer"
WAIT = 60


@dataclass
class Desk:
    stack: LocalStack
    setup: demo.Demo
    page: Page
    agent: User
    ticket_id: str = ""

    def go(self, route: str) -> None:
        self.page.goto(f"{self.stack.console.url}#/{route}")

    def mail_in(self, message: EmailMessage, sender: str) -> None:
        """From the sender's own server to acme.test's MX (which forwards to Relaydesk); then inbound has run."""
        mark = len(self.stack.journal)
        self.setup.send_to_mx(self.stack.customer.mx, sender, [demo.SUPPORT], message)
        entry = self.stack.journal.wait_for("inbound", after=mark, timeout=WAIT)
        assert entry.data["error"] is None, entry.data["error"]

    def delivered(self, address: str, notification_id: str):
        return self.stack.mailboxes.wait_for(
            address, lambda m: m.get("X-Relaydesk-Email-Id") == notification_id, timeout=WAIT)

    def comment(self, text: str):
        return self.page.locator("li.comment", has_text=text)


@pytest.fixture(scope="module")
def desk(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("agent-loop")) as stack:
        (stack.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        setup = demo.Demo(stack, io.StringIO(), password="Pw-" + secrets.token_urlsafe(18))
        for step in (setup.create_account, setup.configure_customer_server, setup.connect_address,
                     setup.verify_address, setup.sign_with_dkim):
            step()
        agent = add_user(boto3.client("cognito-idp"), stack.env["RELAYDESK_USER_POOL_ID"], setup.account_id,
                         AGENT_EMAIL, "agent", name=AGENT_NAME)
        with chromium(stack.ca.pem_path) as browser:
            yield Desk(stack, setup, browser.new_page(), agent)


def test_1_an_agent_sees_the_new_ticket_and_no_admin_page(desk):
    page = desk.page
    message = EmailMessage()
    message["From"] = f"{JANE[0]} <{JANE[1]}>"
    message["To"] = f"Acme Support <{demo.SUPPORT}>"
    message["Cc"] = f"{CAROL[0]} <{CAROL[1]}>"
    message["Subject"] = SUBJECT
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="mail.example.net")
    message.set_content("The printer on floor 3 shows E-52.\nJane\n")
    desk.mail_in(message, JANE[1])

    page.goto(desk.stack.console.url)
    page.get_by_label("Email address", exact=True).fill(desk.agent.username)
    page.get_by_label("Password", exact=True).fill(desk.agent.password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Tickets")).to_be_visible()  # an agent's start page
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link").all_inner_texts() == ["Tickets", "Delivery log"]
    row = page.locator("table.tickets tbody tr", has_text=SUBJECT)
    expect(row).to_contain_text("new")
    expect(row).to_contain_text(JANE[1])
    expect(row).to_contain_text("unassigned")
    desk.ticket_id = row.locator(".sub.mono").inner_text().split(" ")[0]
    screenshot(page, "agent-1-ticket-list")

    for route in ("addresses", "connect", "dkim/acme.test", "settings"):
        desk.go(route)
        expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
        expect(page.get_by_role("alert")).to_contain_text(f"signed in as {AGENT_EMAIL} with the agent role")
        assert "support@acme.test" not in page.locator("main").inner_text()  # nothing of the admin page leaks
    screenshot(page, "agent-2-admins-only")


def test_2_the_agents_reply_leaves_signed_through_acmes_server_and_shows_delivered(desk, tmp_path):
    page = desk.page
    desk.go(f"tickets/{desk.ticket_id}")
    expect(desk.comment("shows E-52")).to_contain_text(JANE[1])
    guide = tmp_path / "reset-guide.pdf"
    guide.write_bytes(GUIDE)
    page.get_by_label("Reply", exact=True).fill("Hi Jane,\n\nplease switch it off and on again.\n\nBob")
    page.get_by_label("Attachments (optional)").set_input_files(str(guide))
    page.get_by_label("Then set the ticket").select_option("pending")
    page.get_by_role("button", name="Send reply").click()
    expect(page.get_by_text("Reply sent to")).to_be_visible()

    reply = desk.comment("switch it off and on again")
    expect(reply).to_contain_text(AGENT_NAME)
    expect(reply).to_contain_text("public reply")
    expect(reply.locator(".attachments")).to_contain_text("reset-guide.pdf")
    for address in (JANE[1], CAROL[1]):  # one row per recipient, refreshed until the relay has delivered it
        expect(reply.locator("ul.recipients li", has_text=address)).to_contain_text("delivered")
    smarthost = desk.stack.customer.submission.host
    expect(reply.locator(".delivery-head")).to_contain_text(f"through your server ({smarthost}")
    expect(page.locator(".page-head .badge")).to_have_text("pending")
    screenshot(page, "agent-3-ticket-replied-and-delivered")

    at_jane = desk.stack.mailboxes.wait_for(
        JANE[1], lambda m: "switch it off and on again" in m.get_body(("plain",)).get_content(), timeout=WAIT)
    message = at_jane.message()
    assert message["From"].addresses[0].display_name == f"{AGENT_NAME} (Acme Support)"
    assert message["From"].addresses[0].addr_spec == demo.SUPPORT
    assert f"[RD#{desk.ticket_id}]" in message["Subject"]
    [attached] = message.iter_attachments()
    assert (attached.get_filename(), attached.get_content()) == ("reset-guide.pdf", GUIDE)
    verdicts = demo.dkim_verdicts(at_jane.path.read_bytes(), desk.setup.published)  # dkimpy; raises if one fails
    assert len(verdicts) == 2 and all("d=acme.test" in line for line in verdicts)


def test_3_janes_answer_lands_on_the_same_ticket_and_its_copy_to_carol_shows_delivered(desk):
    page = desk.page
    at_jane = desk.stack.mailboxes.wait_for(
        JANE[1], lambda m: "switch it off and on again" in m.get_body(("plain",)).get_content(), timeout=WAIT)
    answer = end_user.reply_to(at_jane.path.read_bytes(), sender=JANE, text="Did that, still E-52.")
    desk.mail_in(answer, JANE[1])

    comment = desk.comment("Did that, still E-52.")  # the open page refreshes by itself
    expect(comment).to_contain_text(JANE[1])
    expect(comment).to_contain_text("by mail")
    expect(comment.locator("details.quoted")).not_to_have_attribute("open", "")  # the quoted reply is folded
    expect(comment.locator("details.quoted summary")).to_contain_text("Quoted text")
    expect(comment.locator("ul.recipients li", has_text=CAROL[1])).to_contain_text("delivered")
    expect(page.locator(".page-head .badge")).to_have_text("open")  # the requester's answer reopens it
    assert page.locator("li.comment").count() == 3  # Jane's mail, the reply, her answer: one ticket
    screenshot(page, "agent-4-ticket-answered-by-mail")


def test_4_a_note_mails_nobody_and_the_filters_find_the_ticket_by_assignee_and_status(desk):
    page = desk.page
    page.get_by_label("Internal note").check()
    page.get_by_label("Note", exact=True).fill("Fuser is worn: order part FX-52.")
    page.get_by_role("button", name="Add note").click()
    note = desk.comment("order part FX-52")
    expect(note).to_contain_text("internal note")
    expect(note).to_contain_text("mailed to nobody")
    expect(note.locator(".delivery")).to_have_count(0)
    page.get_by_role("button", name="Assign to me").click()
    expect(page.locator("#properties-title ~ dl")).to_contain_text(f"{AGENT_NAME} ({AGENT_EMAIL})")
    page.get_by_label("Status", exact=True).select_option("solved")
    expect(page.locator(".page-head .badge")).to_have_text("solved")
    screenshot(page, "agent-5-note-assigned-solved")
    mailed = [d for who in (JANE[1], CAROL[1]) for d in desk.stack.mailboxes.messages(who)]
    assert mailed and all(b"FX-52" not in d.path.read_bytes() for d in mailed)

    desk.go("tickets?assignee=me")
    expect(page.locator("table.tickets tbody tr", has_text=SUBJECT)).to_contain_text(AGENT_NAME)
    page.get_by_label("Status").select_option("solved")
    expect(page).to_have_url(re.compile(r"status=solved"))
    expect(page.locator("table.tickets tbody tr")).to_have_count(1)
    screenshot(page, "agent-6-tickets-mine-solved")
    page.get_by_label("Assignee").select_option("none")
    expect(page.get_by_text("No ticket matches.")).to_be_visible()


def test_5_the_delivery_log_pages_back_to_the_oldest_notification(desk):
    from relaydesk.tickets.model import DeliveryAttempt, DeliveryStatus, NotificationRecord, Ticket
    from relaydesk.wiring import aws_stores

    page = desk.page
    tickets = aws_stores().tickets
    for index in range(30):  # newer than Jane's: two notifications each, 60 in all, more than a page
        ticket_id = f"T01M9Z{index:013d}"
        records = [NotificationRecord(
            notification_id=f"N01M9Z{index:012d}{half}", message_id=f"<{index}{half}@acme.test>",
            recipients=[f"customer{index}@example.org"], status=DeliveryStatus.DELIVERED,
            attempts=[DeliveryAttempt(status=DeliveryStatus.DELIVERED, route="ses", smtp_code=250, reply="250 Ok")])
            for half in "AB"]
        tickets.create_ticket(Ticket(ticket_id=ticket_id, account_id=desk.setup.account_id,
                                     support_address=demo.SUPPORT, subject=f"Order {index} arrived broken",
                                     requester=f"customer{index}@example.org", notifications=records))
    desk.go("log")
    rows = page.locator("table.log tbody tr")
    expect(rows.first).to_be_visible()
    expect(page.locator("table.log tbody tr", has_text=SUBJECT)).to_have_count(0)  # Jane's are older
    assert 50 <= rows.count() < 60  # the newest page: whole tickets until 50 rows
    page.get_by_role("button", name="Older notifications").click()
    jane = page.locator("table.log tbody tr", has_text=SUBJECT)
    expect(jane.first).to_be_visible()
    expect(rows).to_have_count(60 + jane.count())  # every notification once, Jane's ticket's last
    expect(page.get_by_role("button", name="Older notifications")).to_have_count(0)  # nothing older
    screenshot(page, "agent-7-delivery-log-older-page")


@pytest.mark.parametrize("route", ["tickets", "ticket"])
def test_the_ticket_pages_fit_a_phone(desk, route):
    page = desk.page
    page.set_viewport_size(PHONE)
    try:
        desk.go("tickets" if route == "tickets" else f"tickets/{desk.ticket_id}")
        expect(page.locator("main h1")).to_be_visible()
        loaded = page.locator("table.tickets tbody tr") if route == "tickets" else page.get_by_text(SUBJECT)
        expect(loaded.first).to_be_visible()
        expect(page.locator("main .spinner")).to_have_count(0)
        assert no_horizontal_overflow(page) <= 0, route
        screenshot(page, f"phone-agent-{route}")
    finally:
        page.set_viewport_size(DESKTOP)
