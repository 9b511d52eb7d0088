"""The `addresses` and `accounts show` commands of a signed-in tenant user: the same output as the operator's, through
the tenant API, for the user's own account only."""

from __future__ import annotations

import argparse
from typing import Any

from relaydesk.cli.output import EXIT_OK, emit, print_table, progress
from relaydesk.cli.session import Session
from relaydesk.cli.tenant_client import TenantClient
from relaydesk.errors import ConfigurationError


def _row(address: dict[str, Any]) -> dict[str, str]:
    connector = address.get("connector")
    return {"email": address["email"], "kind": address["kind"],
            "connector": f"{connector['state']} ({connector['host']}:{connector['port']})" if connector else "-",
            "forwarding": address["forwarding"]["status"], "outbound": address["outbound"]["status"],
            "default": "yes" if address["is_default"] else "", "name": address["name"]}


def _view(address: dict[str, Any]) -> dict[str, Any]:
    """The key: value view people read (JSON keeps the API's shape)."""
    view = {"email": address["email"], "account_id": address["account_id"], "name": address["name"],
            "kind": address["kind"], "default": address["is_default"],
            "forwarding": address["forwarding"]["status"], "outbound": address["outbound"]["status"],
            "last_error": address.get("last_error") or "-", "dkim": "on" if address["dkim"]["enabled"] else "off"}
    connector = address.get("connector")
    if connector:
        view.update({"connector_state": connector["state"], "smarthost": f"{connector['host']}:{connector['port']}",
                     "tls": connector["tls_mode"], "auth": connector["auth_kind"]})
    return view


def _emit_address(args: argparse.Namespace, address: dict[str, Any]) -> None:
    emit(address if args.json else _view(address), as_json=args.json)


def _own_account(args: argparse.Namespace, session: Session) -> None:
    named = getattr(args, "account", None) or getattr(args, "account_id", None)
    if named and named != session.account_id:
        # Said here, without asking the API: the user can only ever act for its own account.
        raise ConfigurationError(f"you are a user of account {session.account_id}, not {named}",
                                 action="Leave --account out, or sign in as a user of that account.")


def list_addresses(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    addresses = client.call("GET", f"{client.account_path}/support_addresses")["support_addresses"]
    if args.json:
        emit(addresses, as_json=True)
    else:
        print_table([_row(a) for a in sorted(addresses, key=lambda a: (a["kind"], a["email"]))],
                    ["email", "kind", "connector", "forwarding", "outbound", "default", "name"])
    return EXIT_OK


def show_address(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    _emit_address(args, client.call("GET", client.address_path(args.email)))
    return EXIT_OK


def add_address(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    address = client.call("POST", f"{client.account_path}/support_addresses",
                          {"email": args.email, **({"name": args.name} if args.name else {})})
    progress(f"added {address['email']} (forwarding unverified); an operator verifies it with "
             f"`relaydesk addresses verify {address['email']}`")
    _emit_address(args, address)
    return EXIT_OK


def rename_address(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    _emit_address(args, client.call("PUT", client.address_path(args.email), {"name": args.name}))
    return EXIT_OK


def set_default(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    _emit_address(args, client.call("PUT", client.address_path(args.email), {"default": True}))
    return EXIT_OK


def delete_address(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    deleted = client.call("DELETE", client.address_path(args.email))
    secret = " and its secret is scheduled for deletion" if deleted.get("secret_deletion_scheduled") else ""
    progress(f"{deleted['email']} removed{secret}")
    emit({"email": deleted["email"], "deleted": True}, as_json=args.json)
    return EXIT_OK


def show_account(args: argparse.Namespace, session: Session) -> int:
    _own_account(args, session)
    client = TenantClient(session)
    emit(client.call("GET", client.account_path), as_json=args.json)
    return EXIT_OK
