"""`relaydesk dkim setup|show|rotate|enable|disable DOMAIN`: the customer domain's DKIM keys and the DNS records to
publish for them. Private keys stay in Secrets Manager: only public keys and selectors are ever printed."""

from __future__ import annotations

import argparse
import os
from datetime import timedelta
from typing import Any

from relaydesk.cli import context
from relaydesk.cli.addresses import add_json_flag, when
from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.clock import utcnow
from relaydesk.dkim import domains
from relaydesk.dkim.keyring import DEFAULT_OVERLAP, Keyring, KeyState
from relaydesk.dkim.records import DnsRecord, key_record
from relaydesk.dkim.resolver import RESOLVER_VARIABLE, Resolver, dns_resolver


def resolver_factory() -> Resolver:
    """The resolver `dkim enable` checks the records with; tests replace this function."""
    return dns_resolver(nameserver=os.environ.get(RESOLVER_VARIABLE) or None)


def register(subparsers: Any) -> None:
    group = subparsers.add_parser("dkim", help="DKIM keys of a customer domain and the DNS records to publish")
    commands = group.add_subparsers(dest="command", required=True)

    setup = commands.add_parser("setup", help="create the domain's keys (RSA 2048 + Ed25519); print the records")
    setup.add_argument("domain")
    setup.set_defaults(func=cmd_setup)

    show = commands.add_parser("show", help="selectors, their state, and the records to publish")
    show.add_argument("domain")
    show.set_defaults(func=cmd_show)

    rotate = commands.add_parser("rotate", help="new keys that sign after the overlap; the old ones retire after it")
    rotate.add_argument("domain")
    rotate.add_argument("--overlap-hours", type=float, default=DEFAULT_OVERLAP.total_seconds() / 3600,
                        help="hours between publishing and signing, and again before retiring (default 48)")
    rotate.set_defaults(func=cmd_rotate)

    enable = commands.add_parser("enable", help="sign every notification of the domain's addresses")
    enable.add_argument("domain")
    enable.add_argument("--skip-dns-check", action="store_true", help="do not check that the records are published")
    enable.set_defaults(func=cmd_enable)

    disable = commands.add_parser("disable", help="stop signing: notifications leave with no signature of ours")
    disable.add_argument("domain")
    disable.set_defaults(func=cmd_disable)
    for parser in (setup, show, rotate, enable, disable):
        add_json_flag(parser)


def record_view(record: DnsRecord) -> dict[str, Any]:
    return {"name": record.name, "type": record.type, "value": record.value, "strings": list(record.strings)}


def keyring_view(keyring: Keyring) -> dict[str, Any]:
    now = utcnow()
    return {"domain": keyring.domain, "generations": [
        {"state": keyring.state(g, now).value, "selectors": g.selectors, "created_at": when(g.created_at),
         "signs_from": when(g.active_from), "retires_at": when(g.retire_at),
         "records": [record_view(key_record(k, keyring.domain)) for k in g.keys]}
        for g in keyring.generations]}


def print_records(records: list[DnsRecord]) -> None:
    """Exactly what to publish: the name, the type, and the value as quoted strings of at most 255 bytes."""
    for record in records:
        print(f"{record.name}  {record.type}")
        print("  " + " ".join(f'"{s}"' for s in record.strings))
    print()
    print("As zone-file lines:")
    for record in records:
        print(record.zone_line())


def publishable(keyring: Keyring) -> list[DnsRecord]:
    return [key_record(k, keyring.domain) for g, _ in keyring.published(utcnow()) for k in g.keys]


def cmd_setup(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    keyring, secret = domains.setup(stores, args.domain)
    if args.json:
        emit({**keyring_view(keyring), "secret": secret}, as_json=True)
        return EXIT_OK
    progress(f"DKIM keys for {keyring.domain} created (private keys in Secrets Manager: {secret}).")
    if not domains.addresses_of(stores, keyring.domain):
        progress(f"No support address at {keyring.domain} yet: `relaydesk dkim enable` once one is connected.")
    print(f"Publish these TXT records in the DNS of {keyring.domain}, then run "
          f"`relaydesk dns check {keyring.domain}` and `relaydesk dkim enable {keyring.domain}`:\n")
    print_records(publishable(keyring))
    return EXIT_OK


def cmd_show(args: argparse.Namespace) -> int:
    keyring = domains.load(context.load_stores(args), args.domain)
    view = keyring_view(keyring)
    if args.json:
        emit(view, as_json=True)
        return EXIT_OK
    print_table([{**g, "selectors": ", ".join(g["selectors"])} for g in view["generations"]],
                ["state", "selectors", "created_at", "signs_from", "retires_at"])
    print(f"\nRecords that must stay published for {keyring.domain}:\n")
    print_records(publishable(keyring))
    retired = [s for g in keyring.generations if keyring.state(g, utcnow()) is KeyState.RETIRED for s in g.selectors]
    if retired:
        print("\nRetired (you may delete their records): " + ", ".join(f"{s}._domainkey.{keyring.domain}"
                                                                     for s in retired))
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    overlap = timedelta(hours=args.overlap_hours)
    keyring, generation = domains.rotate(stores, args.domain, overlap=overlap)
    if args.json:
        emit(keyring_view(keyring), as_json=True)
        return EXIT_OK
    print(f"New keys for {keyring.domain}: {', '.join(generation.selectors)}. They sign from "
          f"{when(generation.active_from)} UTC; publish their records before then:\n")
    print_records([key_record(k, keyring.domain) for k in generation.keys])
    return EXIT_OK


def cmd_enable(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    resolver = None if args.skip_dns_check else resolver_factory()
    changed = domains.set_signing(stores, args.domain, True, resolver=resolver)
    return _report(args, changed, "on")


def cmd_disable(args: argparse.Namespace) -> int:
    changed = domains.set_signing(context.load_stores(args), args.domain, False)
    return _report(args, changed, "off")


def _report(args: argparse.Namespace, changed: list, state: str) -> int:
    rows = [{"email": a.email, "dkim": state, "selectors": ", ".join(a.dkim.selectors)} for a in changed]
    emit(rows, as_json=args.json, columns=["email", "dkim", "selectors"])
    return EXIT_OK
