"""`make up`: the local stack, kept running until Ctrl-C, with how to send mail to it and where it lands."""

from __future__ import annotations

import secrets
import signal
import sys
import threading

from local.demo import SUPPORT, function_output_to
from local.stack import LocalStack, state_dir_from_env

DEMO_TENANTS = (("acme", "Acme", "acme.test"), ("globex", "Globex", "globex.test"))


def secret_file(path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    path.touch(mode=0o600)
    path.write_text(value + "\n")


def demo_tenants(stack: LocalStack, state_dir) -> list:
    """acme and globex, each with its admin (admin@<domain>) in the stack's user pool; passwords to files."""
    import boto3
    from relaydesk.wiring import aws_stores

    from local.tenants import add_tenant

    cognito = boto3.client("cognito-idp")
    tenants = []
    for subdomain, name, domain in DEMO_TENANTS:
        account, admin = add_tenant(aws_stores(), cognito, stack.env["RELAYDESK_USER_POOL_ID"], subdomain, name,
                                    domain=domain)
        secret_file(state_dir / "users" / admin.username, admin.password)
        tenants.append((account, admin))
    return tenants


def main() -> int:
    state_dir = state_dir_from_env()
    out = sys.stdout
    stopped = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started in the background (SIGINT ignored there)
        signal.signal(signum, lambda *_: stopped.set())
    password = secrets.token_urlsafe(18)
    with function_output_to(state_dir / "logs" / "functions.log"), LocalStack(state_dir) as stack:
        stack.customer.set_password(SUPPORT, password)
        tenants = demo_tenants(stack, state_dir)
        acme_id = tenants[0][0].account_id
        system_address = f"support@acme.{stack.mail_domain}"  # the acme demo tenant's system address
        stack.customer.forward(SUPPORT, system_address)
        secret_file(state_dir / "smtp-password", password)  # for `--password-stdin <file`, never printed
        e = stack.endpoints
        mx_host, mx_port = e["customer_mx"].split(":")
        sub_host, sub_port = e["customer_submission"].split(":")
        inbound_host, inbound_port = e["inbound_mx"].split(":")
        tenant_lines = "\n".join(
            f"  {account.subdomain:<8} account {account.account_id}  {admin.username:<20} password in "
            f"{state_dir / 'users' / admin.username}" for account, admin in tenants)
        print(f"""Relaydesk local stack is up (Ctrl-C stops it).

  AWS (moto, template.yaml's resources)  {e['moto']}
  SES receiving (inbound MX)             {e['inbound_mx']}   mail for *@<sub>.{stack.mail_domain}
  acme.test MX                           {e['customer_mx']}   mail for *@acme.test
  acme.test submission (smarthost)       {e['customer_submission']}   STARTTLS + AUTH, user {SUPPORT}
  local CA (trust it, never skip it)     {e['ca_bundle']}

Admin console                          {e['console']}
  sign in as admin@acme.test with the password in {state_dir / 'users' / 'admin@acme.test'} (acme's admin)
  Connect > "Postfix or another server": support address {SUPPORT}, host {sub_host}, port {sub_port},
  STARTTLS, password in {state_dir / 'smtp-password'}, CA certificate {e['ca_bundle']}
  The browser must trust the local CA (the console calls the API and Cognito on other loopback ports): import
  {e['ca_bundle']} as an authority, or start Chromium with a profile of its own:
    chromium --user-data-dir=$(mktemp -d) --ignore-certificate-errors-spki-list={ca_key_hash(stack)} {e['console']}

Tenant API (Cognito ID tokens, checked as API Gateway's JWT authorizer does)   {e['tenant_api']}
Operator API (AWS SigV4 with the local credentials, across accounts)          {e['operator_api']}
Two demo tenants, an admin each (passwords in files readable by you only, never printed):
{tenant_lines}

Point the CLI at it (the operator, with the local AWS credentials):
  source {e['env_file']}
  relaydesk addresses connect {SUPPORT} --account {acme_id} --host {sub_host} --port {sub_port} --tls starttls \\
      --username {SUPPORT} --ca-bundle {e['ca_bundle']} --password-stdin < {state_dir / 'smtp-password'}
  (mail.acme.test already forwards {SUPPORT} at server level to {system_address}, the acme tenant's
   system address)

Sign in as a tenant's admin and call the tenant API:
  relaydesk login --username admin@acme.test --password-stdin < {state_dir / 'users' / 'admin@acme.test'}
  relaydesk addresses list                     # as admin@acme.test, through the tenant API
  curl --cacert {e['ca_bundle']} -H "Authorization: Bearer $(relaydesk token)" \\
      {e['tenant_api']}accounts/{acme_id}/support_addresses
  (the same token on globex's account, {e['tenant_api']}accounts/{tenants[1][0].account_id}/support_addresses,
   answers 404; `relaydesk logout` to act as the operator again, or `relaydesk --operator ...`)

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


if __name__ == "__main__":
    sys.exit(main())
