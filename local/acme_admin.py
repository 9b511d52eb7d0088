"""`acme-admin`: what acme.test's own IT admin does on their side, for the local stack that `make up` runs.

    acme-admin password support@acme.test            # a new mailbox password (stdin or a hidden prompt)
    acme-admin password support@acme.test --random   # a random one, written to the password file, never printed
    acme-admin dns list
    acme-admin dns publish-dkim acme.test             # publish the TXT records `relaydesk dkim setup` asked for
    acme-admin dns add NAME TXT|MX|A|CNAME VALUE
    acme-admin dns remove NAME [TYPE]

The running `make up` picks a password change up within a second and ends that mailbox's open sessions, so the
relay's next delivery signs in again (and, with the old password, puts the address on hold). The local DNS server
reads its zone again at the next query. `$RELAYDESK_LOCAL_STATE` (set by the env file) names the stack's folder.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

from local.dns_server import SUPPORTED_TYPES, normalize, write_zone, zone_records

ROOT = Path(__file__).resolve().parents[1]
UP_STATE_DIR = ROOT / "local" / ".state" / "up"


class AdminError(Exception):
    """One line for the admin: what is wrong and what to do."""


def state_dir() -> Path:
    return Path(os.environ.get("RELAYDESK_LOCAL_STATE") or UP_STATE_DIR)


def running_stack(state: Path) -> Path:
    """The folder of a running `make up`, or AdminError saying how to start one."""
    pid_file = state / "up.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        raise AdminError(f"the local stack is not running (no live `make up` for {state}): start it with "
                         "`make up`, then `source` the env file it prints") from None
    return state


def password_file(state: Path, user: str) -> Path:
    return state / "passwords" / user.lower()


def set_password(state: Path, user: str, password: str) -> Path:
    if not password or "\n" in password or "\r" in password:
        raise AdminError("a password is one non-empty line")
    path = password_file(state, user)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.tmp"  # renamed into place: the stack never reads half a password
    temporary.touch(mode=0o600)
    temporary.write_text(password + "\n")
    temporary.replace(path)
    return path


def cmd_password(args: argparse.Namespace) -> int:
    state = running_stack(state_dir())
    if "@" not in args.user:
        raise AdminError(f"{args.user!r} is not a mailbox: give its address, e.g. support@acme.test")
    if args.random:
        password = secrets.token_urlsafe(18)
    elif sys.stdin.isatty():
        password = getpass.getpass(f"new password for {args.user}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    path = set_password(state, args.user, password)
    print(f"mail.acme.test: {args.user} has a new password (in {path}, never printed); its open sessions end now.")
    print(f"Relaydesk still has the old one: the next notification puts the address on hold. Give it the new one "
          f"with:\n  relaydesk addresses rotate {args.user} --password-stdin < {path}")
    return 0


def _zone(state: Path) -> Path:
    path = state / "dns" / "zone.json"
    if not path.exists():
        raise AdminError(f"no local DNS zone in {state}: start the local stack with `make up`")
    return path


def cmd_dns_list(args: argparse.Namespace) -> int:
    for record in zone_records(_zone(running_stack(state_dir()))):
        print(f"{record['name']}  {record['type']}  {record['value']}")
    return 0


def cmd_dns_add(args: argparse.Namespace) -> int:
    zone = _zone(running_stack(state_dir()))
    record = {"name": normalize(args.name), "type": args.type.upper(), "value": args.value}
    records = [r for r in zone_records(zone) if r != record]
    write_zone(zone, [*records, record])
    print(f"published {record['name']} {record['type']} {record['value']}")
    return 0


def cmd_dns_remove(args: argparse.Namespace) -> int:
    zone = _zone(running_stack(state_dir()))
    records = zone_records(zone)
    kept = [r for r in records if not (normalize(r["name"]) == normalize(args.name)
                                       and (args.type is None or r["type"] == args.type.upper()))]
    if len(kept) == len(records):
        of_type = f" of type {args.type.upper()}" if args.type else ""
        raise AdminError(f"no record at {normalize(args.name)}{of_type}")
    write_zone(zone, kept)
    print(f"removed {len(records) - len(kept)} record(s) at {normalize(args.name)}")
    return 0


def cmd_dns_publish_dkim(args: argparse.Namespace) -> int:
    """The domain's DKIM records as `relaydesk dkim show --json` lists them, published (replacing older values)."""
    zone = _zone(running_stack(state_dir()))
    shown = subprocess.run([str(ROOT / "local" / "bin" / "relaydesk"), "dkim", "show", args.domain, "--json"],
                           capture_output=True, text=True, check=False)
    if shown.returncode != 0:
        raise AdminError(f"`relaydesk dkim show {args.domain}` failed: {shown.stderr.strip().splitlines()[-1:]}; "
                         f"run `relaydesk dkim setup {args.domain}` first")
    wanted = [{"name": normalize(r["name"]), "type": r["type"], "value": r["value"]}
              for g in json.loads(shown.stdout)["generations"] if g["state"] != "retired" for r in g["records"]]
    names = {r["name"] for r in wanted}
    records = [r for r in zone_records(zone) if not (normalize(r["name"]) in names and r["type"] == "TXT")]
    write_zone(zone, [*records, *wanted])
    for record in wanted:
        print(f"published {record['name']} TXT ({len(record['value'])} characters)")
    print(f"Now: relaydesk dns check {args.domain}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acme-admin", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    password = commands.add_parser("password", help="change a mailbox's password on mail.acme.test")
    password.add_argument("user", help="the mailbox, e.g. support@acme.test")
    password.add_argument("--random", action="store_true", help="a random password, written to its file")
    password.set_defaults(func=cmd_password)

    dns = commands.add_parser("dns", help="acme.test's DNS records (the local DNS server's zone)")
    records = dns.add_subparsers(dest="dns_command", required=True)
    records.add_parser("list", help="every record").set_defaults(func=cmd_dns_list)
    add = records.add_parser("add", help="publish one record")
    add.add_argument("name")
    add.add_argument("type", choices=[*SUPPORTED_TYPES, *(t.lower() for t in SUPPORTED_TYPES)], metavar="TYPE")
    add.add_argument("value")
    add.set_defaults(func=cmd_dns_add)
    remove = records.add_parser("remove", help="remove the records at a name (of one type)")
    remove.add_argument("name")
    remove.add_argument("type", nargs="?", default=None)
    remove.set_defaults(func=cmd_dns_remove)
    publish = records.add_parser("publish-dkim", help="publish the DKIM records of a domain's keys")
    publish.add_argument("domain")
    publish.set_defaults(func=cmd_dns_publish_dkim)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except AdminError as error:
        print(f"acme-admin: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
