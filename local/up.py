"""`make up`: the local stack, kept running until Ctrl-C, with how to send mail to it and where it lands."""

from __future__ import annotations

import secrets
import signal
import sys
import threading

from local.demo import SUPPORT, function_output_to
from local.stack import LocalStack, state_dir_from_env
from local.tenants import add_tenant


def main() -> int:
    state_dir = state_dir_from_env()
    out = sys.stdout
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        signal.signal(signum, lambda *_: stopped.set())
    password = secrets.token_urlsafe(18)
    with function_output_to(state_dir / "logs" / "functions.log"), LocalStack(state_dir) as stack:
        stack.customer.set_password(SUPPORT, password)
        account, admin = console_tenant(stack)
        system_address = f"support@acme.{stack.mail_domain}"  # Acme's system address
        stack.customer.forward(SUPPORT, system_address)
        (state_dir / "smtp-password").touch(mode=0o600)
        (state_dir / "smtp-password").write_text(password + "\n")  # for `--password-stdin <file`, never printed
        e = stack.endpoints
        mx_host, mx_port = e["customer_mx"].split(":")
        sub_host, sub_port = e["customer_submission"].split(":")
        inbound_host, inbound_port = e["inbound_mx"].split(":")
        print(f"""Relaydesk local stack is up (Ctrl-C stops it).

  AWS (moto, template.yaml's resources)  {e['moto']}
  SES receiving (inbound MX)             {e['inbound_mx']}   mail for *@<sub>.{stack.mail_domain}
  acme.test MX                           {e['customer_mx']}   mail for *@acme.test
  acme.test submission (smarthost)       {e['customer_submission']}   STARTTLS + AUTH, user {SUPPORT}
  local CA (trust it, never skip it)     {e['ca_bundle']}

Admin console                          {e['console']}
  sign in as {admin.username} with the password {admin.password}
  (Acme's admin; the account {account.account_id} has no support address of its own yet)
  Connect > "Postfix or another server": support address {SUPPORT}, host {sub_host}, port {sub_port},
  STARTTLS, password in {state_dir / 'smtp-password'}, CA certificate {e['ca_bundle']}
  The browser must trust the local CA (the console calls the API and Cognito on other loopback ports): import
  {e['ca_bundle']} as an authority, or start Chromium with a profile of its own:
    chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list={ca_key_hash(stack)} {e['console']}

Or point the CLI at it:
  source {e['env_file']}
  relaydesk addresses connect {SUPPORT} --account {account.account_id} --host {sub_host} --port {sub_port} \\
      --tls starttls --username {SUPPORT} --ca-bundle {e['ca_bundle']} --password-stdin < {state_dir / 'smtp-password'}
  (mail.acme.test already forwards {SUPPORT} at server level to {system_address}, Acme's system address)

Send mail to it:
  swaks --server {mx_host}:{mx_port} --tls --tls-ca-path {e['ca_bundle']} \\
      --from jane@example.net --to {SUPPORT} --header 'Subject: Printer jammed'
  python -c "import smtplib; s=smtplib.SMTP('{mx_host}', {mx_port}); \\
s.sendmail('jane@example.net', ['{SUPPORT}'], \\
b'From: jane@example.net\\r\\nTo: {SUPPORT}\\r\\nSubject: Hello\\r\\n\\r\\nHi\\r\\n'); s.quit()"
  (or straight to SES receiving, as a forward would: swaks --server {inbound_host}:{inbound_port} --to {system_address})

Delivered mail lands in {e['mailboxes']}/<address>/*.eml
Function logs: {state_dir / 'logs' / 'functions.log'}""", file=out, flush=True)
        while not stopped.wait(0.5):
            pass
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


def console_tenant(stack: LocalStack):
    """The Acme account and its first admin, a user of the stack's pool (moto) who signs in to the console."""
    import boto3
    from relaydesk.wiring import aws_stores

    return add_tenant(aws_stores(), boto3.client("cognito-idp"), stack.env["RELAYDESK_USER_POOL_ID"], "acme", "Acme",
                      domain="acme.test")


if __name__ == "__main__":
    sys.exit(main())
