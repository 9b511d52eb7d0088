"""`relaydesk accounts ...`: create, list and show accounts, change the settings the connector depends on, and
manage the admin contacts who hear about an address's hold."""

from __future__ import annotations

import argparse
from typing import Any

from relaydesk.accounts import SUBDOMAIN_PATTERN, Account, AccountKind, contact_address, system_address
from relaydesk.addresses import lifecycle
from relaydesk.alerts.contacts import change_admin_contacts
from relaydesk.cli import context, identity, tenant_addresses
from relaydesk.cli.addresses import add_json_flag, on_off
from relaydesk.cli.output import EXIT_OK, emit, print_table
from relaydesk.errors import ConfigurationError


def account_view(account: Account, mail_domain: str, address_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "account_id": account.account_id,
        "subdomain": account.subdomain,
        "name": account.name,
        "kind": account.kind.value,
        "system_address": system_address(account.subdomain, mail_domain),
        "ccs_and_followers": "on" if account.settings.ccs_and_followers_enabled else "off",
        "include_attachments": "on" if account.settings.include_attachments_in_email else "off",
        "admin_contacts": ", ".join(account.admin_emails) or "- (nobody hears of a hold: relaydesk accounts admins)",
        "notify_solved": "on" if account.settings.notify_requester_on_solved else "off",
        "agent_from_name": account.settings.agent_from_name,
        "created_at": account.created_at.isoformat(),
    }
    if address_count is not None:
        view["support_addresses"] = address_count
    return view


def _json_view(account: Account, mail_domain: str, address_count: int | None = None) -> dict[str, Any]:
    data = account.model_dump(mode="json")
    data["system_address"] = system_address(account.subdomain, mail_domain)
    if address_count is not None:
        data["support_addresses"] = address_count
    return data


def _emit(args: argparse.Namespace, account: Account, mail_domain: str, address_count: int | None = None) -> None:
    if args.json:
        emit(_json_view(account, mail_domain, address_count), as_json=True)
    else:
        emit(account_view(account, mail_domain, address_count), as_json=False)


def cmd_create(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    account, _ = lifecycle.create_account(stores, args.subdomain, args.name or "", args.kind)
    if args.admin_email:
        account = change_admin_contacts(stores, account.account_id, add=args.admin_email)
    _emit(args, account, stores.settings.mail_domain)
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    accounts = sorted(stores.directory.list_accounts(), key=lambda a: a.subdomain)
    if args.json:
        emit([_json_view(a, stores.settings.mail_domain) for a in accounts], as_json=True)
    else:
        print_table([{"account_id": a.account_id, "subdomain": a.subdomain, "name": a.name, "kind": a.kind.value,
                      "system_address": system_address(a.subdomain, stores.settings.mail_domain),
                      "admin_contacts": len(a.admin_emails)} for a in accounts],
                    ["account_id", "subdomain", "name", "kind", "system_address", "admin_contacts"])
    return EXIT_OK


def cmd_admins(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    account = change_admin_contacts(stores, args.account_id, add=args.add or (), remove=args.remove or ())
    if args.json:
        emit({"account_id": account.account_id, "admin_emails": account.admin_emails}, as_json=True)
    elif account.admin_emails:
        for contact in account.admin_emails:
            print(contact)
    else:
        print("(none: nobody is told when an address goes on hold)")
    return EXIT_OK


def subdomain_argument(value: str) -> str:
    if not SUBDOMAIN_PATTERN.match(value.lower()):
        raise argparse.ArgumentTypeError(f"{value!r} is not a valid subdomain: one DNS label (letters, digits and "
                                         "hyphens, at most 63, not starting or ending with a hyphen)")
    return value.lower()


def contact_argument(value: str) -> str:
    try:
        return contact_address(value)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{value!r}: {error}") from None


def cmd_show(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.show_account(args, session)
    if not args.account_id:
        raise ConfigurationError("the account id is required", action="`relaydesk accounts show ACCOUNT_ID`")
    stores = context.load_stores(args)
    account = stores.directory.get_account(args.account_id)
    _emit(args, account, stores.settings.mail_domain, len(stores.directory.list_addresses(account.account_id)))
    return EXIT_OK


def cmd_settings(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    account = lifecycle.update_account_settings(stores, args.account_id,
                                                ccs_and_followers_enabled=args.ccs_and_followers,
                                                include_attachments_in_email=args.include_attachments,
                                                notify_requester_on_solved=args.notify_solved,
                                                agent_from_name=args.agent_from_name)
    _emit(args, account, stores.settings.mail_domain)
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("accounts", help="help desk accounts and their settings")
    commands = parser.add_subparsers(dest="command", required=True)

    sub = commands.add_parser("create", help="create an account and its system address")
    sub.add_argument("--subdomain", required=True, type=subdomain_argument,
                     help="one DNS label: the system address is support@<it>.<domain>")
    sub.add_argument("--name", help="display name")
    sub.add_argument("--kind", choices=[k.value for k in AccountKind], default=AccountKind.SANDBOX.value,
                     help="test the connector in a sandbox account first (default %(default)s)")
    sub.add_argument("--admin-email", action="append", type=contact_argument, metavar="EMAIL",
                     help="an admin contact, told when an address goes on hold (repeat for more)")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_create)

    sub = commands.add_parser("list", help="every account of this stack (an operator's view)")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_list)

    sub = commands.add_parser("show", help="one account: kind, system address, settings")
    sub.add_argument("account_id", nargs="?", help="the account (a signed-in user: its own, the default)")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_show)

    sub = commands.add_parser("admins", help="show or change the admin contacts told about an address's hold")
    sub.add_argument("account_id")
    sub.add_argument("--add", action="append", type=contact_argument, metavar="EMAIL", help="add a contact")
    sub.add_argument("--remove", action="append", type=contact_argument, metavar="EMAIL", help="remove a contact")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_admins)

    sub = commands.add_parser("settings", help="show or change the settings the connector depends on")
    sub.add_argument("account_id")
    sub.add_argument("--ccs-and-followers", type=on_off, metavar="on|off",
                     help="CCs and followers (required on for the SMTP connector)")
    sub.add_argument("--include-attachments", type=on_off, metavar="on|off",
                     help="attach files to notifications (off is advised with Microsoft 365)")
    sub.add_argument("--notify-solved", type=on_off, metavar="on|off",
                     help="mail the requester and CCs when an agent solves their ticket")
    sub.add_argument("--agent-from-name", metavar="PATTERN",
                     help="From name of an agent's reply: {agent} and {support}, e.g. '{agent} ({support})'")
    add_json_flag(sub)
    sub.set_defaults(func=cmd_settings)
