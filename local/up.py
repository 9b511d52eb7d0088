"""`make up`: the local stack, kept running until Ctrl-C, with how to use it, send mail to it and where it lands.

Its folder is `local/.state/up` (or $RELAYDESK_LOCAL_STATE): `make demo` uses another one, so the two never share a
CA, mailboxes or env file. A second `make up` on the same folder is refused while the first runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import signal
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relaydesk.alerts.contacts import change_admin_contacts
from relaydesk.wiring import aws_stores

from local.acme_admin import password_file, set_password
from local.demo import SUPPORT, function_output_to
from local.stack import LocalStack, state_dir_from_env

if TYPE_CHECKING:
    from local.tenants import User

POLL_SECONDS = 0.5


@contextlib.contextmanager
def only_one_stack(state_dir: Path):
    """Hold `<state>/up.lock` for the stack's life and write `up.pid`; a second `make up` gets a clear refusal."""
    state_dir.mkdir(parents=True, exist_ok=True)
    with (state_dir / "up.lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"make up: a local stack is already running in {state_dir} (Ctrl-C it first, or set "
                             "RELAYDESK_LOCAL_STATE to another folder)") from None
        (state_dir / "up.pid").write_text(f"{os.getpid()}\n")
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                (state_dir / "up.pid").unlink()


class PasswordWatch:
    """Applies `acme-admin password` changes (files under `<state>/passwords/`) to the running mail server."""

    def __init__(self, state_dir: Path, stack: LocalStack) -> None:
        self.folder = state_dir / "passwords"
        self.stack = stack
        self._seen = self._stamps()  # what the stack was started with is not a change

    def _stamps(self) -> dict[str, int]:
        return {path.name: path.stat().st_mtime_ns for path in self.folder.glob("*@*")
                if not path.name.startswith(".")}

    def check(self) -> None:
        for user, stamp in self._stamps().items():
            if self._seen.get(user) != stamp:
                self._seen[user] = stamp
                self.stack.customer.set_password(user, (self.folder / user).read_text().strip(), end_sessions=True)


def banner(stack: LocalStack, state_dir: Path, system_address: str, acme) -> str:
    e = stack.endpoints
    mx_host, mx_port = e["customer_mx"].split(":")
    sub_host, sub_port = e["customer_submission"].split(":")
    inbound_host, inbound_port = e["inbound_mx"].split(":")
    password = password_file(state_dir, SUPPORT)
    return f"""Relaydesk local stack is up (Ctrl-C stops it).

  AWS (moto, template.yaml's resources)  {e['moto']}
  SES receiving (inbound MX)             {e['inbound_mx']}   mail for *@<sub>.{stack.mail_domain}
  acme.test MX                           {e['customer_mx']}   mail for *@acme.test
  acme.test submission (smarthost)       {e['customer_submission']}   STARTTLS + AUTH, user {SUPPORT}
  acme.test DNS                          {e['dns']}   `acme-admin dns list`
  local CA (trust it, never skip it)     {e['ca_bundle']}

The Acme account (subdomain acme, {acme.account_id}) is made, with its admin {ACME_ADMIN} and its agent
agent@acme.test; it@acme.test hears of a hold (`relaydesk accounts admins {acme.account_id}`).

In the browser: the admin console {e['console']}
  sign in as {ACME_ADMIN}, password in {state_dir / 'users' / ACME_ADMIN}
  Connect > "Postfix or another server": support address {SUPPORT}, host {sub_host}, port {sub_port}, STARTTLS,
  password in {password}, CA certificate {e['ca_bundle']} (docs/CONSOLE.md goes on from there)
  The browser must trust the local CA (the console calls the API and Cognito on other loopback ports): import
  {e['ca_bundle']} as an authority, or start Chromium with a profile of its own:
    chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list={ca_key_hash(stack)} {e['console']}

Or in another terminal, with the CLI (this also puts `relaydesk` and `acme-admin` on your PATH):
  source {e['env_file']}
  relaydesk accounts show {acme.account_id}
  relaydesk addresses connect {SUPPORT} --account {acme.account_id} --host {sub_host} --port {sub_port} \\
      --tls starttls --username {SUPPORT} --ca-bundle {e['ca_bundle']} --password-stdin < {password}
  relaydesk addresses verify {SUPPORT}
  (mail.acme.test already forwards {SUPPORT} at server level to {system_address}, Acme's system address;
   docs/ADMIN.md goes on from there)

acme.test's own admin (the other side of the connector):
  acme-admin password {SUPPORT} --random     # the mail server's password changes: practise a hold and its release
  acme-admin dns publish-dkim acme.test      # publish what `relaydesk dkim setup acme.test` printed

Send mail to it:
  swaks --server {mx_host}:{mx_port} --tls --tls-ca-path {e['ca_bundle']} \\
      --from jane@example.net --to {SUPPORT} --header 'Subject: Printer jammed'
  python3 -c "import smtplib; s=smtplib.SMTP('{mx_host}', {mx_port}); \\
s.sendmail('jane@example.net', ['{SUPPORT}'], \\
b'From: jane@example.net\\r\\nTo: {SUPPORT}\\r\\nSubject: Hello\\r\\n\\r\\nHi\\r\\n'); s.quit()"
  (or straight to SES receiving, as a forward would: swaks --server {inbound_host}:{inbound_port} --to {system_address})

Delivered mail lands in {e['mailboxes']}/<address>/*.eml (it@acme.test gets the hold alerts)
Function logs: {state_dir / 'logs' / 'functions.log'}"""


# Acme, whose mail server the stack runs (acme.test), with an admin for the admin console; and two tenants besides.
# Each has an admin and an agent (and a sample ticket for the agent), to try the tenant API and its boundary.
ACME = ("acme", "Acme", "acme.test")
ACME_ADMIN = "admin@acme.test"
DEMO_TENANTS = (("northwind", "Northwind", "northwind.test"), ("globex", "Globex", "globex.test"))
SAMPLE_REQUESTER = "jane@example.net"


@dataclass(frozen=True)
class DemoTenant:
    account: Any
    admin: User
    agent: User
    ticket_id: str  # a sample ticket, for the agent to work


def _password_file(state_dir: Path, user: User) -> Path:
    path = state_dir / "users" / user.username
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(user.password + "\n")
    return path


def sample_ticket(stores: Any, account: Any) -> str:
    """A ticket as a forwarded mail would have made it: Jane's question on the account's system address."""
    from relaydesk.accounts import system_address
    from relaydesk.ids import new_id
    from relaydesk.tickets.model import Comment, Ticket

    ticket = Ticket(ticket_id=new_id("T"), account_id=account.account_id, requester=SAMPLE_REQUESTER,
                    support_address=system_address(account.subdomain, stores.settings.mail_domain),
                    subject="The printer on floor 3 is jammed",
                    comments=[Comment(comment_id=new_id("C"), author=SAMPLE_REQUESTER,
                                      body="Hello, the printer on floor 3 shows E-52 again. Jane")])
    stores.tickets.create_ticket(ticket)
    return ticket.ticket_id


def demo_tenants(stack: LocalStack, state_dir: Path, tenants_of=DEMO_TENANTS) -> list[DemoTenant]:
    """Each demo tenant with its admin (admin@<domain>) and agent (agent@<domain>) in the stack's user pool,
    passwords in 0600 files, and a sample ticket."""
    import boto3
    from relaydesk.wiring import aws_stores

    from local.tenants import add_tenant, add_user

    cognito = boto3.client("cognito-idp")
    pool = stack.env["RELAYDESK_USER_POOL_ID"]
    tenants = []
    for subdomain, name, domain in tenants_of:
        account, admin = add_tenant(aws_stores(), cognito, pool, subdomain, name, domain=domain)
        agent = add_user(cognito, pool, account.account_id, f"agent@{domain}", "agent", name=f"{name} Agent")
        for user in (admin, agent):
            _password_file(state_dir, user)
        tenants.append(DemoTenant(account, admin, agent, sample_ticket(aws_stores(), account)))
    return tenants


def tenant_banner(stack: LocalStack, state_dir: Path, tenants: list[DemoTenant]) -> str:
    e = stack.endpoints
    first, second = tenants
    admin, agent, ticket = first.admin, first.agent, first.ticket_id
    lines = "\n".join(f"  {t.account.subdomain:<10} account {t.account.account_id}  {user.username:<22} ({role}) "
                      f"password in {state_dir / 'users' / user.username}"
                      for t in tenants for user, role in ((t.admin, "admin"), (t.agent, "agent")))
    tickets = f"{e['tenant_api']}accounts/{first.account.account_id}/tickets"
    bearer = f'--cacert {e["ca_bundle"]} -H "Authorization: Bearer $(relaydesk token)"'
    return f"""
Tenant API (Cognito ID tokens, checked as API Gateway's JWT authorizer does)  {e['tenant_api']}
Operator API (AWS SigV4 with the local credentials, across accounts)         {e['operator_api']}
Two demo tenants, an admin and an agent each (passwords in files readable by you only, never printed):
{lines}
Sign in as one and call the tenant API (after `source {e['env_file']}`):
  relaydesk login --username {admin.username} --password-stdin < {state_dir / 'users' / admin.username}
  relaydesk addresses list                 # as {admin.username}, through the tenant API
  curl {bearer} \\
      {e['tenant_api']}accounts/{first.account.account_id}/support_addresses
  (the same token on {second.account.subdomain}'s account, .../accounts/{second.account.account_id}/support_addresses,
   answers 404; `relaydesk logout` to act as the operator again, or `relaydesk --operator ...`)
An agent works the tickets (each tenant has a sample one from {SAMPLE_REQUESTER}); what it writes is signed as the
signed-in user, from its ID token:
  relaydesk login --username {agent.username} --password-stdin < {state_dir / 'users' / agent.username}
  relaydesk tickets list
  relaydesk tickets assign {ticket} --me
  echo "A technician comes at 2 pm." | relaydesk tickets reply {ticket} --status pending
  echo "Toner ordered." | relaydesk tickets note {ticket}
  relaydesk tickets show {ticket}          # the reply's delivery to {SAMPLE_REQUESTER}, per recipient
  curl {bearer} \\
      "{tickets}?status=pending"
  curl {bearer} \\
      -H "Content-Type: application/json" -H "Idempotency-Key: reply-$RANDOM$RANDOM" \\
      -d '{{"body": "It works again."}}' {tickets}/{ticket}/replies
  (the mail lands in {e['mailboxes']}/{SAMPLE_REQUESTER}/; the same request with the same Idempotency-Key
   writes and sends nothing twice; docs/API.md lists every ticket route)"""


def main() -> int:
    state_dir = state_dir_from_env()
    out = sys.stdout
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        signal.signal(signum, lambda *_: stopped.set())
    with only_one_stack(state_dir), function_output_to(state_dir / "logs" / "functions.log"), \
            LocalStack(state_dir) as stack:
        password = secrets.token_urlsafe(18)
        stack.customer.set_password(SUPPORT, password)
        set_password(state_dir, SUPPORT, password)  # for `--password-stdin <file`, never printed
        system_address = f"support@acme.{stack.mail_domain}"  # Acme's system address
        stack.customer.forward(SUPPORT, system_address)
        watch = PasswordWatch(state_dir, stack)
        acme = demo_tenants(stack, state_dir, (ACME,))[0].account
        change_admin_contacts(aws_stores(), acme.account_id, add=["it@acme.test"])
        tenants = demo_tenants(stack, state_dir)
        print(banner(stack, state_dir, system_address, acme) + tenant_banner(stack, state_dir, tenants), file=out,
              flush=True)
        while not stopped.wait(POLL_SECONDS):
            watch.check()
        print("\nstopping...", file=out, flush=True)
    print("stopped.", file=out, flush=True)
    return 0


def ca_key_hash(stack: LocalStack) -> str:
    """What Chromium's --ignore-certificate-errors-spki-list takes: base64(SHA-256) of the CA's public key."""
    import base64
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key = x509.load_pem_x509_certificate(stack.ca.pem_path.read_bytes()).public_key()
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


if __name__ == "__main__":
    sys.exit(main())
