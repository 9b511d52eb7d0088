"""`make demo`: the whole connector on one machine, step by step, as an admin and an end user see it.

Starts the local stack, creates the account and connects support@acme.test through acme.test's own mail server with
the `relaydesk` CLI (the password is given once, on stdin, and kept in Secrets Manager), verifies forwarding and
outbound, then follows one end user's mail: forwarded -> ticket -> notification submitted through the smarthost ->
delivered with the header contract; an agent answers with `relaydesk tickets reply`, the reply reaches Jane through the
smarthost, and Jane's answer to it comes back through the forward onto the same ticket. Then a manual forward from
Outlook, suspended beside the normal ticket.
Exits 1 at the first step that fails, saying which and why. Never prints the password.

    python -m local.demo [--state-dir DIR] [--result-json FILE]     (default folder: local/.state/demo)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import secrets
import smtplib
import sys
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, TextIO

from local.cli_runner import CliResult, run_cli
from local.stack import DEMO_STATE_DIR, LocalStack

SUPPORT = "support@acme.test"
CUSTOMER_DOMAIN = "acme.test"
END_USER = ("Jane Doe", "jane@example.net")
AGENT = ("Bob Agent", "bob@acme.test")
CUSTOMER = ("Carol Customer", "carol@example.org")
WAIT_SECONDS = 60
PASSWORD_ENV = "RELAYDESK_DEMO_SMTP_PASSWORD"  # lets the e2e test know the password it must not find anywhere

CONTRACT = ("Auto-Submitted", "X-Auto-Response-Suppress", "X-Mailer", "X-Relaydesk-From-Account-Id",
            "X-Relaydesk-Email-Id", "From", "Message-ID", "In-Reply-To", "References")


class DemoFailure(Exception):
    """A step did not do what it should; the message says what the user would have seen."""


class Demo:
    """Each step prints what happens as it happens; `result` collects what the e2e test checks."""

    def __init__(self, stack: LocalStack, out: TextIO, *, password: str) -> None:
        self.stack = stack
        self.out = out
        self._password = password
        self.logs = stack.state_dir / "logs"
        self.result: dict[str, Any] = {}
        self._step = 0
        self.current = "start"
        self.published: dict[str, str] = {}  # DKIM TXT records acme.test publishes: name -> value

    # -- output --------------------------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str) -> None:
        self._step += 1
        self.current = f"[{self._step}] {title}"
        self.say(f"\n{self.current}")

    def detail(self, text: str) -> None:
        self.say(f"    {text}")

    def cli(self, *args: str, stdin: str | None = None, show_progress: bool = True,
            stdin_is: str = "password") -> CliResult:
        self.detail(f"$ relaydesk {' '.join(args)}" + (f"   ({stdin_is} on stdin)" if stdin else ""))
        result = run_cli(list(args), env=self.stack.env, stdin=stdin, log_path=self.logs / "cli.log",
                         on_progress=(lambda line: self.detail(f"  | {line}")) if show_progress else None)
        if result.code != 0:
            raise DemoFailure(f"`relaydesk {' '.join(args[:2])}` exited {result.code}: {cli_error(result)}")
        return result

    # -- steps ---------------------------------------------------------------------------------------------------
    def show_stack(self) -> None:
        self.step("Local stack started (all on 127.0.0.1)")
        e = self.stack.endpoints
        self.detail(f"AWS (moto, resources from template.yaml) {e['moto']}")
        self.detail(f"SES receiving (inbound MX)              {e['inbound_mx']}")
        self.detail(f"acme.test mail server: MX {e['customer_mx']}, submission {e['customer_submission']} "
                    "(STARTTLS + AUTH)")
        self.detail(f"local CA {e['ca_bundle']}; env for the CLI {e['env_file']}")

    def create_account(self) -> None:
        self.step("Create the Acme account")
        view = self.cli("accounts", "create", "--subdomain", "acme", "--name", "Acme", "--json").json()
        self.account_id = view["account_id"]
        self.system_address = view["system_address"]
        self.detail(f"account {self.account_id}, system address {self.system_address}")
        self.result.update(account_id=self.account_id, system_address=self.system_address)

    def configure_customer_server(self) -> None:
        self.step("acme.test's admin: a mailbox password for support@acme.test, and a server-level forward")
        self.stack.customer.set_password(SUPPORT, self._password)
        self.stack.customer.forward(SUPPORT, self.system_address)
        self.detail(f"mail.acme.test forwards {SUPPORT} -> {self.system_address} (mailbox forwarding, "
                    "Exchange Online style headers)")

    def connect_address(self) -> None:
        self.step(f"Connect {SUPPORT} through acme.test's smarthost")
        host, port = self.stack.customer.submission.host, self.stack.customer.submission.port
        self.cli("addresses", "connect", SUPPORT, "--account", self.account_id, "--host", host, "--port", str(port),
                 "--tls", "starttls", "--username", SUPPORT, "--password-stdin",
                 "--ca-bundle", str(self.stack.ca.pem_path), "--name", "Acme Support",
                 stdin=self._password + "\n")
        view = self.cli("addresses", "show", SUPPORT, "--json", show_progress=False).json()
        secret = view.get("secret_arn") or (view.get("connector") or {}).get("secret_arn") or "-"
        self.detail(f"credentials kept in Secrets Manager: {secret}")

    def verify_address(self) -> None:
        self.step(f"Verify forwarding and outbound of {SUPPORT}")
        self.cli("addresses", "verify", SUPPORT, "--timeout", str(WAIT_SECONDS))
        view = self.cli("addresses", "show", SUPPORT, "--json", show_progress=False).json()
        self.detail(f"forwarding {view['forwarding']['status']}, outbound {view['outbound']['status']}, "
                    f"connector {(view.get('connector') or {}).get('state', '-')}")

    def sign_with_dkim(self) -> None:
        self.step("Sign acme.test's notifications with its own DKIM keys")
        setup = self.cli("dkim", "setup", CUSTOMER_DOMAIN, "--json", show_progress=False).json()
        self.published = {record["name"]: record["value"] for generation in setup["generations"]
                          for record in generation["records"]}
        for name, value in self.published.items():
            self.detail(f"publish TXT {name}: {value[:60]}...")
        # There is no public DNS on one machine: the records above stand for what acme.test's admin publishes, and
        # the demo's verifier (step 9) looks them up there.
        self.cli("dkim", "enable", CUSTOMER_DOMAIN, "--skip-dns-check")
        self.detail(f"signing on for {CUSTOMER_DOMAIN}: RSA 2048 and Ed25519, d={CUSTOMER_DOMAIN}")
        self.result.update(dkim_records=self.published)

    def end_user_writes(self) -> None:
        self.step(f"{END_USER[0]} writes to {SUPPORT} from her own mail server")
        message = EmailMessage()
        message["From"] = f"{END_USER[0]} <{END_USER[1]}>"
        message["To"] = f"Acme Support <{SUPPORT}>"
        message["Subject"] = "Printer on floor 3 is jammed"
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain="mail.example.net")
        message.set_content("Hi, the printer on floor 3 shows error E-52 and will not print. Can you help?\nJane\n")
        self.original_message_id = message["Message-ID"]
        self.mark = len(self.stack.journal)
        self.send_to_mx(self.stack.customer.mx, END_USER[1], [SUPPORT], message)
        self.detail(f"accepted by mail.acme.test MX for {SUPPORT}, Message-ID {self.original_message_id}")
        forwarded = self.wait(lambda: self.stack.journal.wait_for(
            "forwarded", after=self.mark, timeout=WAIT_SECONDS), "the forward to Relaydesk")
        self.detail(f"forwarded at server level to {forwarded.data['target']}")
        inbound = self.wait(lambda: self.stack.journal.wait_for(
            "inbound", after=self.mark, timeout=WAIT_SECONDS), "the inbound function")
        if inbound.data["error"]:
            raise DemoFailure(f"the inbound function failed: {inbound.data['error']}")
        bucket = self.stack.env["RELAYDESK_RAW_MAIL_BUCKET"]
        self.detail(f"SES receiving stored it at s3://{bucket}/inbound/{inbound.data['message_id']} and invoked "
                    "the inbound function")

    def ticket_created(self) -> None:
        self.step("Ticket created")
        ticket = self.poll(lambda: next((t for t in self.tickets() if END_USER[1] in t["requester"]
                                         and t["status"] != "suspended"), None), "the ticket of Jane's mail")
        self.ticket_id = ticket["ticket_id"]
        self.detail(f"ticket {self.ticket_id}: \"{ticket['subject']}\", requester {ticket['requester']}, "
                    f"status {ticket['status']}")
        self.result.update(ticket_id=self.ticket_id, requester=ticket["requester"], ticket_status=ticket["status"])

    def notification_submitted(self) -> None:
        self.step("Notification submitted through acme.test's smarthost")
        submission = self.stack.customer.submission
        received = self.poll(lambda: next((r for r in submission.received if END_USER[1] in r.rcpt_tos), None),
                             "the notification at the smarthost")
        self.detail(f"smarthost {submission.host}:{submission.port}: TLS {'yes' if received.tls else 'NO'}, "
                    f"AUTH as {received.auth_user}, MAIL FROM {received.mail_from}, RCPT {received.rcpt_tos}")
        self.detail(f"smarthost replied: {received.reply}")
        if not received.tls or received.auth_user != SUPPORT:
            raise DemoFailure("the notification reached the smarthost without TLS or without AUTH as the address")

        def delivered_record():
            ticket = self.cli("tickets", "show", self.ticket_id, "--json", show_progress=False).json()
            return next((r for r in ticket.get("notifications", []) if r["status"] == "delivered"), None)

        record = self.poll(delivered_record, "a delivered record on the ticket")
        attempt = record["attempts"][-1] if record.get("attempts") else {}
        self.notification_id = record["notification_id"]
        self.detail(f"delivery record on the ticket: notification {self.notification_id} {record['status']} via "
                    f"{attempt.get('route', '-')}, the server said: {attempt.get('reply', '-')}")
        self.result.update(notification_id=self.notification_id, delivery=record,
                           smarthost={"tls": received.tls, "auth_user": received.auth_user,
                                      "reply": received.reply, "rcpt_tos": received.rcpt_tos})

    def delivered_to_end_user(self) -> None:
        self.step(f"Delivered to {END_USER[1]}'s mailbox")
        delivered = self.wait(lambda: self.stack.mailboxes.wait_for(
            END_USER[1], lambda m: m.get("X-Relaydesk-Email-Id") == self.notification_id, timeout=WAIT_SECONDS),
            "the notification in Jane's mailbox")
        message = delivered.message()
        self.detail(f"{delivered.path}")
        for name in CONTRACT:
            self.detail(f"{name}: {message.get(name, '(missing)')}")
        self.detail(f"Subject: {message.get('Subject')}")
        for line in dkim_verdicts(delivered.path.read_bytes(), self.published):
            self.detail(line)
        self.detail(f"Received: {' '.join(str(message.get('Received', '')).split())}")
        problems = contract_problems(message, account_id=self.account_id, notification_id=self.notification_id,
                                     support=SUPPORT, original_message_id=self.original_message_id)
        if problems:
            raise DemoFailure("the delivered notification breaks the header contract: " + "; ".join(problems))
        self.result.update(mailbox_file=str(delivered.path))

    def agent_replies(self) -> None:
        self.step(f"{AGENT[0]} answers the ticket with the `relaydesk` CLI")
        text = "Hi Jane,\n\nplease switch the printer off and on again; E-52 is a paper sensor.\n\nBob\n"
        posted = self.cli("tickets", "reply", self.ticket_id, "--account", self.account_id, "--agent-name", AGENT[0],
                          "--agent-email", AGENT[1], "--json", stdin=text, stdin_is="reply text",
                          show_progress=False).json()
        self.reply_id = posted["notifications"][0]
        delivered = self.wait(lambda: self.stack.mailboxes.wait_for(
            END_USER[1], lambda m: m.get("X-Relaydesk-Email-Id") == self.reply_id, timeout=WAIT_SECONDS),
            "the agent's reply in Jane's mailbox")
        message = delivered.message()
        self.detail(f"reply {self.reply_id} submitted through acme.test's smarthost, now in {delivered.path.name}")
        for name in ("From", "Subject", "In-Reply-To", "References"):
            self.detail(f"{name}: {' '.join(str(message.get(name, '(missing)')).split())}")
        self.detail("parts: " + ", ".join(p.get_content_type() for p in message.walk() if not p.is_multipart()))
        for line in dkim_verdicts(delivered.path.read_bytes(), self.published):
            self.detail(line)
        if message["In-Reply-To"] != self.original_message_id:
            raise DemoFailure(f"the reply's In-Reply-To is {message['In-Reply-To']}, not Jane's "
                              f"{self.original_message_id}")
        self.reply_file = delivered.path
        self.result.update(reply_notification_id=self.reply_id, reply_file=str(delivered.path),
                           reply_from=str(message["From"]))

    def end_user_answers(self) -> None:
        from local.end_user import reply_to

        self.step(f"{END_USER[0]} answers that reply from her mail client")
        answer = reply_to(self.reply_file.read_bytes(), sender=END_USER, text="Did that, it prints again. Thanks!")
        self.detail(f"\"{answer['Subject']}\", In-Reply-To {answer['In-Reply-To']}")
        mark = len(self.stack.journal)
        self.send_to_mx(self.stack.customer.mx, END_USER[1], [SUPPORT], answer)
        inbound = self.wait(lambda: self.stack.journal.wait_for("inbound", after=mark, timeout=WAIT_SECONDS),
                            "the inbound function")
        if inbound.data["error"]:
            raise DemoFailure(f"the inbound function failed: {inbound.data['error']}")

        def answer_on_ticket():
            ticket = self.cli("tickets", "show", self.ticket_id, "--json", show_progress=False).json()
            return next((c for c in ticket["comments"] if c["source_message_id"] == answer["Message-ID"]), None)

        comment = self.poll(answer_on_ticket, "Jane's answer on the ticket")
        self.detail(f"forwarded by acme.test's server, threaded onto ticket {self.ticket_id} as comment "
                    f"{comment['comment_id']} by {comment['author']}")
        shown = self.cli("tickets", "show", self.ticket_id, show_progress=False).stdout
        conversation = shown.split("conversation:", 1)[-1].split("notifications:", 1)[0]
        for line in conversation.strip().splitlines():
            self.detail(f"  {line}")
        self.result.update(answer_message_id=answer["Message-ID"], answer_comment=comment)

    def manual_forward(self) -> None:
        self.step(f"{AGENT[0]} forwards a customer's mail by hand from Outlook (not supported)")
        self.stack.customer.set_password(AGENT[1], agent_password := secrets.token_urlsafe(16))
        message = manual_forward_message(self.system_address)
        mark = len(self.stack.journal)
        submission = self.stack.customer.submission
        with smtplib.SMTP(submission.host, submission.port, local_hostname="bob-laptop.acme.test", timeout=30) as c:
            c.starttls(context=self.stack.client_tls())
            c.login(AGENT[1], agent_password)
            c.send_message(message, from_addr=AGENT[1], to_addrs=[self.system_address])
        self.detail(f"\"{message['Subject']}\" sent by {AGENT[1]} straight to {self.system_address}")
        inbound = self.wait(lambda: self.stack.journal.wait_for("inbound", after=mark, timeout=WAIT_SECONDS),
                            "the inbound function")
        if inbound.data["error"]:
            raise DemoFailure(f"the inbound function failed: {inbound.data['error']}")
        suspended = self.poll(lambda: next((t for t in self.tickets() if t["status"] == "suspended"), None),
                              "the suspended ticket")
        self.detail(f"ticket {suspended['ticket_id']} suspended: {suspended.get('suspension_reason')} - "
                    f"{suspended.get('suspension_explanation') or ''}")
        if suspended.get("suspension_reason") != "manual_forward":
            raise DemoFailure(f"expected reason manual_forward, got {suspended.get('suspension_reason')}")
        self.result.update(suspended_ticket_id=suspended["ticket_id"],
                           suspension_reason=suspended["suspension_reason"])

    def side_by_side(self) -> None:
        self.step("The account's tickets")
        result = self.cli("tickets", "list", "--account", self.account_id, show_progress=False)
        for line in result.stdout.rstrip().splitlines():
            self.detail(line)

    # -- helpers -------------------------------------------------------------------------------------------------
    def tickets(self) -> list[dict]:
        return self.cli("tickets", "list", "--account", self.account_id, "--json", show_progress=False).json()

    def send_to_mx(self, server, mail_from: str, rcpts: list[str], message: EmailMessage) -> None:
        with smtplib.SMTP(server.host, server.port, local_hostname="mail.example.net", timeout=30) as client:
            client.starttls(context=self.stack.client_tls())
            client.send_message(message, from_addr=mail_from, to_addrs=rcpts)

    def wait(self, action, what: str):
        try:
            return action()
        except TimeoutError:
            raise DemoFailure(f"timed out after {WAIT_SECONDS} s waiting for {what}") from None

    def poll(self, probe, what: str, timeout: float = WAIT_SECONDS):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = probe()
            if found:
                return found
            time.sleep(0.5)
        raise DemoFailure(f"timed out after {timeout:.0f} s waiting for {what}")

    def run(self) -> dict[str, Any]:
        for step in (self.show_stack, self.create_account, self.configure_customer_server, self.connect_address,
                     self.verify_address, self.sign_with_dkim, self.end_user_writes, self.ticket_created,
                     self.notification_submitted,
                     self.delivered_to_end_user, self.agent_replies, self.end_user_answers, self.manual_forward,
                     self.side_by_side):
            step()
        return self.result


def dkim_verdicts(raw: bytes, published: dict[str, str]) -> list[str]:
    """Each DKIM signature of the delivered mail, checked by dkimpy against the records the admin published, as
    the recipient's server would. A signature that does not verify fails the demo."""
    import dkim

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        value = published.get(name.decode().rstrip("."))
        return value.encode() if value is not None else None

    import email

    signatures = email.message_from_bytes(raw).get_all("DKIM-Signature") or []
    if not signatures:
        raise DemoFailure("the notification left without a DKIM signature although signing is on")
    lines = []
    for index, signature in enumerate(signatures):
        verifier = dkim.DKIM(raw)
        tags = dict(part.strip().split("=", 1) for part in " ".join(str(signature).split()).split(";") if "=" in part)
        if not verifier.verify(idx=index, dnsfunc=lookup):
            raise DemoFailure(f"DKIM signature {tags.get('a')} s={tags.get('s')} does not verify")
        lines.append(f"DKIM-Signature: d={tags.get('d')} s={tags.get('s')} a={tags.get('a')}: verifies against the "
                     "published record")
    return lines


def cli_error(result: CliResult) -> str:
    """The CLI's own error and advice (from its `error:` line on), else the end of what it printed."""
    text = (result.stderr or result.stdout).strip()
    start = text.rfind("error:")
    return text[start:] if start >= 0 else text[-800:]


def manual_forward_message(system_address: str) -> EmailMessage:
    """What Outlook sends when an agent forwards a customer's mail by hand: FW:, quoted block, no forward headers."""
    message = EmailMessage()
    message["From"] = f"{AGENT[0]} <{AGENT[1]}>"
    message["To"] = system_address
    message["Subject"] = "FW: Invoice question"
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain="DB9PR04MB8421.eurprd04.prod.outlook.com")
    message["Thread-Topic"] = "Invoice question"
    message.set_content(
        "Can you take this one?\n\n________________________________\n"
        f"From: {CUSTOMER[0]} <{CUSTOMER[1]}>\nSent: Tuesday, November 24, 2026 2:12 PM\n"
        f"To: Acme Support <{SUPPORT}>\nSubject: Invoice question\n\n"
        "Hi, invoice 2026-118 lists two licences but we only ordered one.\nCarol\n")
    return message


def contract_problems(message, *, account_id: str, notification_id: str, support: str,
                      original_message_id: str) -> list[str]:
    """Every way `message` breaks ARCHITECTURE.md's header contract for a notification (empty: it keeps it)."""
    expected = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All",
                "X-Mailer": "Relaydesk Mailer", "X-Relaydesk-From-Account-Id": account_id,
                "X-Relaydesk-Email-Id": notification_id}
    problems = [f"{name} is {message.get(name)!r}, expected {value!r}"
                for name, value in expected.items() if str(message.get(name, "")).strip() != value]
    if parseaddr(str(message.get("From", "")))[1].lower() != support:
        problems.append(f"From is {message.get('From')!r}, expected the support address {support}")
    if not message.get("Message-ID"):
        problems.append("no Message-ID")
    if str(message.get("In-Reply-To", "")).strip() != original_message_id:
        problems.append(f"In-Reply-To is {message.get('In-Reply-To')!r}, expected {original_message_id}")
    if original_message_id not in str(message.get("References", "")):
        problems.append(f"References {message.get('References')!r} does not name {original_message_id}")
    return problems


@contextlib.contextmanager
def function_output_to(path: Path):
    """The functions' JSON logs and metrics go to a file (stdout is for the story); restored afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as log_file:
        saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = log_file
        handler = logging.FileHandler(path.with_name("stack.log"))
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        logging.getLogger().addHandler(handler)
        logging.getLogger().setLevel(logging.INFO)
        try:
            yield
        finally:
            sys.stdout, sys.stderr = saved
            logging.getLogger().removeHandler(handler)
            handler.close()
            # powertools binds its handler to sys.stdout once per logger name: hand those back to the real stdout
            for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
                for stream_handler in getattr(logger, "handlers", []):
                    if isinstance(stream_handler, logging.StreamHandler) and stream_handler.stream is log_file:
                        stream_handler.setStream(saved[0])


def step_of(scope: dict) -> str:
    demo = scope.get("demo")
    return demo.current if demo is not None else "start-up of the local stack"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=None, help="where env, mailboxes and logs go")
    parser.add_argument("--result-json", type=Path, default=None, help="write what the demo saw here (for tests)")
    args = parser.parse_args(argv)
    state_dir = args.state_dir or DEMO_STATE_DIR  # never `make up`'s folder (RELAYDESK_LOCAL_STATE is up's)
    out = sys.stdout
    password = os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(18)
    logs = state_dir / "logs"
    for stale in ("cli.log", "functions.log", "stack.log"):
        with contextlib.suppress(FileNotFoundError):
            (logs / stale).unlink()
    print("Relaydesk demo: a forwarded mail becomes a ticket; its notification and the agent's reply leave through "
          "the customer's own smarthost; the end user's answer lands on the same ticket.", file=out, flush=True)
    code = 0
    result: dict[str, Any] = {}
    try:
        with function_output_to(logs / "functions.log"), LocalStack(state_dir) as stack:
            demo = Demo(stack, out, password=password)
            try:
                result = demo.run()
            finally:
                result = demo.result
    except DemoFailure as failure:
        print(f"\nDEMO FAILED at {step_of(locals())}: {failure}\n(logs: {logs})", file=out, flush=True)
        code = 1
    except Exception as error:  # noqa: BLE001  # any other error is a failed step too, said plainly
        print(f"\nDEMO FAILED at {step_of(locals())}: {type(error).__name__}: {error}\n(logs: {logs})",
              file=out, flush=True)
        code = 1
    else:
        print(f"\nDemo complete. Mail and logs: {state_dir}", file=out, flush=True)
    result["ok"] = code == 0
    if args.result_json:
        args.result_json.write_text(json.dumps(result, indent=2, default=str) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
