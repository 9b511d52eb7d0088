"""The help desk loop through the local stack, as people do it: Jane writes; an agent replies with the CLI; the
reply leaves through acme.test's smarthost, DKIM-signed, into Jane's mailbox; Jane (or a CC, or a colleague she
forwarded it to) answers that exact delivered mail from their own mail client; acme.test's server forwards the
answer to Relaydesk; it lands on the same ticket."""

from __future__ import annotations

import io
import secrets
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import pytest

from local import demo, end_user
from local.stack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
JANE, CAROL, DAVE = ("Jane Doe", "jane@example.net"), ("Carol Buyer", "carol@example.org"), ("Dave", "dave@example.net")
AGENT = ("--agent-name", "Bob Agent", "--agent-email", "bob@acme.test")
WAIT = 60


class Loop:
    """One stack with acme.test connected, verified and signing (the demo's own steps), and helpers to act."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        (stack.state_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.desk = demo.Demo(stack, io.StringIO(), password="Pw-" + secrets.token_urlsafe(18))
        for step in (self.desk.create_account, self.desk.configure_customer_server, self.desk.connect_address,
                     self.desk.verify_address, self.desk.sign_with_dkim):
            step()
        self.account = self.desk.account_id

    def new_ticket(self, subject: str) -> str:
        message = EmailMessage()
        message["From"] = f"{JANE[0]} <{JANE[1]}>"
        message["To"] = f"Acme Support <{demo.SUPPORT}>"
        message["Cc"] = f"{CAROL[0]} <{CAROL[1]}>"
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="mail.example.net")
        message.set_content("The printer on floor 3 shows E-52.\nJane\n")
        self.send(message, JANE[1])
        ticket = self.desk.poll(lambda: next((t for t in self.desk.tickets() if t["subject"] == subject), None),
                                f"the ticket '{subject}'")
        return ticket["ticket_id"]

    def send(self, message: EmailMessage, sender: str) -> None:
        """From the sender's own server to acme.test's MX, for support@acme.test; then inbound has run."""
        mark = len(self.stack.journal)
        self.desk.send_to_mx(self.stack.customer.mx, sender, [demo.SUPPORT], message)
        entry = self.stack.journal.wait_for("inbound", after=mark, timeout=WAIT)
        assert entry.data["error"] is None, entry.data["error"]

    def cli(self, *args: str, stdin: str | None = None) -> dict:
        return self.desk.cli(*args, "--json", stdin=stdin, stdin_is="text", show_progress=False).json()

    def reply(self, ticket_id: str, text: str, *attach: str) -> str:
        files = [arg for path in attach for arg in ("--attach", path)]
        posted = self.cli("tickets", "reply", ticket_id, "--account", self.account, *AGENT, *files, stdin=text)
        return posted["notifications"][0]

    def delivered(self, address: str, notification_id: str):
        return self.stack.mailboxes.wait_for(
            address, lambda m: m.get("X-Relaydesk-Email-Id") == notification_id, timeout=WAIT)

    def ticket(self, ticket_id: str) -> dict:
        return self.cli("tickets", "show", ticket_id, "--account", self.account)

    def comment_from(self, ticket_id: str, message_id: str) -> dict:
        return self.desk.poll(lambda: next((c for c in self.ticket(ticket_id)["comments"]
                                            if c["source_message_id"] == message_id), None),
                              f"the comment of {message_id}")


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    with LocalStack(tmp_path_factory.mktemp("loop")) as stack:
        yield Loop(stack)


@pytest.fixture(scope="module")
def replied(loop, tmp_path_factory):
    """Jane's ticket, answered once by Bob with a PDF attached (uploaded by the CLI through S3's presigned POST):
    (ticket id, the reply as Jane's mailbox has it, as Carol's has it)."""
    ticket_id = loop.new_ticket("Printer on floor 3 is jammed")
    guide = tmp_path_factory.mktemp("files") / "reset-guide.pdf"
    guide.write_bytes(b"%PDF-1.4 reset guide")
    notification_id = loop.reply(ticket_id, "Hi Jane,\n\nplease switch it off and on again.\n\nBob", str(guide))
    return ticket_id, loop.delivered(JANE[1], notification_id), loop.delivered(CAROL[1], notification_id)


def test_the_agents_reply_reaches_jane_threaded_signed_and_named_after_the_agent(loop, replied):
    ticket_id, at_jane, _ = replied
    raw = at_jane.path.read_bytes()
    message = at_jane.message()

    assert message["From"].addresses[0].display_name == "Bob Agent (Acme Support)"
    assert message["From"].addresses[0].addr_spec == demo.SUPPORT
    assert f"[RD#{ticket_id}]" in message["Subject"]
    assert message["In-Reply-To"].endswith("@mail.example.net>") and message["In-Reply-To"] in message["References"]
    assert [p.get_content_type() for p in message.walk()] == \
        ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "application/pdf"]
    [guide] = message.iter_attachments()
    assert guide.get_filename() == "reset-guide.pdf" and guide.get_content() == b"%PDF-1.4 reset guide"
    assert f"[relaydesk-thread:{ticket_id}]" in message.get_body(("plain",)).get_content()
    assert "switch it off and on again" in message.get_body(("html",)).get_content()
    assert [c.addr_spec for c in message["Cc"].addresses] == [CAROL[1]]
    assert demo.dkim_verdicts(raw, loop.desk.published)  # raises unless every signature verifies (d=acme.test)


def test_janes_plain_reply_lands_on_the_same_ticket_as_a_public_comment(loop, replied):
    ticket_id, at_jane, _ = replied
    answer = end_user.reply_to(at_jane.path.read_bytes(), sender=JANE, text="Did that, still E-52.")

    loop.send(answer, JANE[1])

    comment = loop.comment_from(ticket_id, answer["Message-ID"])
    assert comment["author"] == JANE[1] and comment["public"] is True
    assert comment["body"].startswith("Did that, still E-52.")


def test_a_reply_whose_subject_was_edited_still_threads(loop, replied):
    ticket_id, at_jane, _ = replied
    answer = end_user.reply_to(at_jane.path.read_bytes(), sender=JANE, text="New detail.",
                               subject="Printer: now also jams on A3")
    loop.send(answer, JANE[1])
    assert loop.comment_from(ticket_id, answer["Message-ID"])["public"] is True


def test_an_outlook_reply_without_references_still_threads(loop, replied):
    ticket_id, at_jane, _ = replied
    answer = end_user.reply_to(at_jane.path.read_bytes(), sender=JANE, text="Sent from Outlook.", client="outlook")
    assert answer["References"] is None and answer["Subject"].startswith("RE: ")

    loop.send(answer, JANE[1])
    assert loop.comment_from(ticket_id, answer["Message-ID"])["author"] == JANE[1]


def test_a_cc_answering_the_copy_she_got_adds_a_public_comment_and_jane_hears_of_it(loop, replied):
    ticket_id, _, at_carol = replied
    answer = end_user.reply_to(at_carol.path.read_bytes(), sender=CAROL, text="Same on floor 4.", reply_all=True)
    mark = len(loop.stack.journal)

    loop.send(answer, CAROL[1])

    comment = loop.comment_from(ticket_id, answer["Message-ID"])
    assert comment["author"] == CAROL[1] and comment["public"] is True
    loop.stack.journal.wait_for("relay", after=mark, timeout=WAIT)
    news = loop.stack.mailboxes.wait_for(JANE[1], lambda m: "Same on floor 4." in m.get_body(("plain",)).get_content()
                                         and m["X-Relaydesk-Email-Id"] is not None, timeout=WAIT)
    assert news.message()["In-Reply-To"] == answer["Message-ID"]


def test_a_colleague_writing_in_on_a_forward_is_kept_private_until_an_agent_copies_him(loop, replied):
    # The product article's rule: the requester is the first address of Reply-To or From of the mail that opened
    # the ticket. Dave does not become a new requester, and is not copied on the ticket by writing in: his mail
    # threads onto Jane's ticket as an internal comment; once an agent adds him as a CC, his answers are public.
    ticket_id, at_jane, _ = replied
    forwarded = end_user.forward(at_jane.path.read_bytes(), sender=JANE, to=DAVE[1], text="Dave, can you look?")
    at_dave = loop.stack.mailboxes.deliver(DAVE[1], forwarded.as_bytes(), mail_from=JANE[1])

    first = end_user.reply_to(at_dave.path.read_bytes(), sender=DAVE, text="It's the fuser, I think.")
    first.replace_header("To", demo.SUPPORT)  # he writes to the help desk, answering Jane's forward
    loop.send(first, DAVE[1])

    comment = loop.comment_from(ticket_id, first["Message-ID"])
    ticket = loop.ticket(ticket_id)
    assert comment["public"] is False and "reply_from_non_participant" in ticket["flags"]
    assert ticket["requester"] == JANE[1] and DAVE[1] not in ticket["ccs"]

    loop.cli("tickets", "cc", ticket_id, "add", DAVE[1], "--account", loop.account)
    second = end_user.reply_to(at_dave.path.read_bytes(), sender=DAVE, text="Replaced the fuser.")
    second.replace_header("To", demo.SUPPORT)
    loop.send(second, DAVE[1])
    assert loop.comment_from(ticket_id, second["Message-ID"])["public"] is True
