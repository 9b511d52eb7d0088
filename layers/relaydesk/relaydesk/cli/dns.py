"""`relaydesk dns check DOMAIN`: is the customer's DNS ready for mail signed by Relaydesk and sent by their server?"""

from __future__ import annotations

import argparse
import os
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.addresses import add_json_flag
from relaydesk.cli.output import EXIT_ERROR, EXIT_OK, emit
from relaydesk.clock import utcnow
from relaydesk.dkim import domains
from relaydesk.dkim.dnscheck import Status, check_domain, worst
from relaydesk.dkim.resolver import RESOLVER_VARIABLE, Resolver, dns_resolver
from relaydesk.errors import DkimNotSetUpError

MARKS = {Status.OK: "ok  ", Status.INFO: "info", Status.WARN: "warn", Status.FAIL: "FAIL"}


def resolver_factory() -> Resolver:
    """The resolver the check uses; tests replace this function with an offline one."""
    return dns_resolver(nameserver=os.environ.get(RESOLVER_VARIABLE) or None)


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("dns", help="check a customer domain's DNS (SPF, DKIM, DMARC)")
    commands = group.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="SPF, the DKIM records against our keys, DMARC; each problem's fix")
    check.add_argument("domain")
    add_json_flag(check)
    check.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    domain = domains.normalize(args.domain)
    try:
        keyring = domains.load(stores, domain)
    except DkimNotSetUpError:
        keyring = None
    findings = check_domain(domain, resolver=resolver_factory(), keyring=keyring, now=utcnow(),
                            smarthosts=domains.smarthosts_of(stores, domain))
    verdict = worst(findings)
    if args.json:
        emit({"domain": domain, "result": verdict.value, "findings": [f.to_dict() for f in findings]}, as_json=True)
    else:
        for finding in findings:
            print(f"[{MARKS[finding.status]}] {finding.check.upper():<5} {finding.message}")
            if finding.fix:
                print(f"         fix: {finding.fix}")
        problems = sum(f.status is Status.FAIL for f in findings)
        print(f"\n{domain}: {problems} problem(s)" if problems else f"\n{domain}: ready")
    return EXIT_ERROR if verdict is Status.FAIL else EXIT_OK
