"""`relaydesk addresses ...`: connect, verify, set the default, change the smarthost (`set`), rotate, disable, enable
and delete support addresses.

Passwords and OAuth client secrets are read from standard input (--password-stdin, --client-secret-stdin) or a hidden
prompt, never from the command line, and are never printed. Live-check steps and verification progress go to stderr
as they happen.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from relaydesk.addresses import connector_settings, lifecycle, rotation, state, verification
from relaydesk.addresses.check_report import CheckStep
from relaydesk.addresses.limits import limits_view, set_limits
from relaydesk.addresses.model import Connector, ConnectorState, SupportAddress, VerificationStatus
from relaydesk.addresses.presets import PRESETS, PROFILE_OF_PRESET
from relaydesk.addresses.presets import resolve as resolve_preset
from relaydesk.addresses.providers import PROFILES, LimitOverrides
from relaydesk.cli import context, identity, tenant_addresses
from relaydesk.cli.credentials_input import (
    BASIC_AUTH_NOTE,
    MICROSOFT_SMARTHOST,
    add_oauth_arguments,
    auth_kind_of,
    build_credentials,
    describe_sign_in,
    grant_of,
    oauth_fields,
    read_ca_bundle,
    read_password,
    refuse_oauth_flags,
    refuse_oauth_for_preset,
)
from relaydesk.cli.output import (
    EXIT_AUTH,
    EXIT_OK,
    EXIT_SMTP,
    EXIT_VERIFY_TIMEOUT,
    UsageError,
    command_line_checks,
    emit,
    print_table,
    progress,
)
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials, TlsMode
from relaydesk.errors import ConfigurationError

# --- helpers shared by the command groups ---------------------------------------------------------------------------

def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Accept --json after the subcommand too (`relaydesk accounts create ... --json`), as scripts write it."""
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output")


def on_off(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("on", "true", "yes", "1"):
        return True
    if lowered in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, not {value!r}")


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else "-"


def print_step(step: CheckStep) -> None:
    mark = "ok  " if step.ok else "FAIL"
    progress(f"  [{mark}] {step.name:<11} {step.detail} ({step.elapsed_ms:.0f} ms)")


class StepsUnder:
    """Prints live-check steps under `heading`, the heading only with the first step: a refusal that comes before any
    network step (a rule, a missing account) is not announced as a live check. `done()` prints it if the check ran
    without reporting a step."""

    def __init__(self, heading: str) -> None:
        self.heading = heading
        self.printed = False

    def __call__(self, step: CheckStep) -> None:
        self.done()
        print_step(step)

    def done(self) -> None:
        if not self.printed:
            progress(self.heading)
            self.printed = True


# --- command-line values, checked before anything runs (exit 2) --------------------------------------------------

MAX_PORT = 65535
STARTTLS_PORTS = (25, 587)  # SMTP relay and submission (RFC 6409): plain text first, then STARTTLS
IMPLICIT_TLS_PORTS = (465,)  # submissions (RFC 8314 3.3): TLS from the first byte


def port_number(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (1 to {MAX_PORT})") from None
    if not 1 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{port} is out of range: a port is 1 to {MAX_PORT} "
                                         "(587 for STARTTLS, 465 for implicit TLS)")
    return port


def existing_file(value: str) -> str:
    path = Path(value).expanduser()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file (give the PEM file of the smarthost's CA)")
    return str(path)


def support_address(value: str) -> str:
    try:
        return SupportAddress.model_validate({"email": value, "account_id": "-"}).email
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an email address (give it as name@domain)") from None


def check_tls_and_port(tls_mode: TlsMode, port: int) -> None:
    """The two well-known mistakes, refused before any connection: TLS on a port that starts in plain text, and
    plain text (STARTTLS) on the implicit-TLS port."""
    if tls_mode is TlsMode.IMPLICIT and port in STARTTLS_PORTS:
        raise UsageError(f"port {port} starts in plain text and upgrades with STARTTLS; --tls implicit would never "
                         "get a TLS handshake there",
                         action=f"Use --tls starttls with port {port}, or --tls implicit with port 465.")
    if tls_mode is TlsMode.STARTTLS and port in IMPLICIT_TLS_PORTS:
        raise UsageError(f"port {port} speaks TLS from the first byte (implicit TLS); STARTTLS does not apply there",
                         action=f"Use --tls implicit with port {port}, or --tls starttls with port 587.")


def peer_directories(args: argparse.Namespace, environment: str) -> list[tuple[str, Any]]:
    """The other environment's directory, so an address is never in sandbox and production; a note if unreadable."""
    current = getattr(args, "stack", None) or context.stack_name_from_samconfig(getattr(args, "env", None))
    label, directory, reason = context.peer_directory(current, environment)
    if directory is None:
        if "samconfig" not in reason:
            progress(f"note: the {label} environment could not be checked for this address ({reason}); make sure "
                     "the address is not a support address there")
        return []
    return [(label, directory)]


# --- views -------------------------------------------------------------------------------------------------------

def address_row(address: SupportAddress) -> dict[str, str]:
    connector = address.connector
    return {
        "email": address.email,
        "kind": address.kind.value,
        "connector": f"{connector.state.value} ({connector.host}:{connector.port})" if connector else "-",
        "forwarding": address.forwarding.status.value,
        "outbound": address.outbound.status.value,
        "default": "yes" if address.is_default else "",
        "name": address.name,
    }


def address_view(address: SupportAddress) -> dict[str, Any]:
    """Everything an admin checks about an address; there are no credentials on the model to leak."""
    view: dict[str, Any] = {
        "email": address.email,
        "account_id": address.account_id,
        "name": address.name,
        "kind": address.kind.value,
        "default": address.is_default,
        "forwarding": address.forwarding.status.value,
        "forwarding_verified_at": when(address.forwarding.verified_at),
        "forwarding_started_at": when(address.forwarding.started_at),
        "forwarding_error": address.forwarding.error or "-",
        "outbound": address.outbound.status.value,
        "outbound_verified_at": when(address.outbound.verified_at),
        "outbound_started_at": when(address.outbound.started_at),
        "outbound_error": address.outbound.error or "-",
        "last_error": address.last_error or "-",
        "last_change": (f"{when(address.events[-1].at)} {address.events[-1].transition}" if address.events else "-"),
        "dkim": "on" if address.dkim.enabled else "off",
        "updated_at": when(address.updated_at),
    }
    if address.connector is not None:
        connector = address.connector
        view.update({
            "connector_state": connector.state.value,
            "held_since": when(connector.held_since),
            "smarthost": f"{connector.host}:{connector.port}",
            "tls": connector.tls_mode.value,
            "auth": connector.auth_kind.value,
        })
        if connector.auth_kind is AuthKind.OAUTH2:
            view.update(sign_in_view(connector))
        view["secret"] = connector.secret_arn
        view.update(limits_view(address))
    return view


def sign_in_view(connector: Connector) -> dict[str, str]:
    """Identifiers an admin matches against Entra ID or the Google Admin console; the client secret or private key
    is only in Secrets Manager."""
    if connector.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        return {"sign_in": "Google service account (domain-wide delegation)",
                "service_account": connector.oauth_service_account or "-",
                "client_id": f"{connector.oauth_client_id or '-'} (Admin console > Domain Wide Delegation)"}
    view = {"sign_in": "Entra ID app, certificate" if connector.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE else
            "Entra ID app, client secret",
            "tenant_id": connector.oauth_tenant_id or "-", "client_id": connector.oauth_client_id or "-"}
    if connector.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE:
        view["certificate"] = f"thumbprint {connector.oauth_certificate_thumbprint or '-'}"
        view["certificate_expires"] = when(connector.oauth_certificate_expires_at)
    return view


def emit_address(args: argparse.Namespace, address: SupportAddress) -> None:
    if args.json:
        emit(address.model_dump(mode="json"), as_json=True)
    else:
        emit(address_view(address), as_json=False)


# --- commands ----------------------------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.list_addresses(args, session)
    if not args.account:
        raise ConfigurationError("--account is required", action="Name the account whose addresses to list.")
    stores = context.load_stores(args)
    stores.directory.get_account(args.account)  # NotFoundError for a mistyped id, not an empty table
    addresses = sorted(stores.directory.list_addresses(args.account), key=lambda a: (a.kind.value, a.email))
    if args.json:
        emit([a.model_dump(mode="json") for a in addresses], as_json=True)
    else:
        print_table([address_row(a) for a in addresses],
                    ["email", "kind", "connector", "forwarding", "outbound", "default", "name"])
    return EXIT_OK


def target(stores: Any, args: argparse.Namespace) -> SupportAddress:
    """The address a per-address command acts on: in the account named by --account, or wherever the operator's
    cross-account lookup finds it (its owner, or the one account that claimed it)."""
    if getattr(args, "account", None):
        return lifecycle.get_address(stores, args.account, args.email)
    return lifecycle.locate_address(stores, args.email)


def cmd_show(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.show_address(args, session)
    stores = context.load_stores(args)
    emit_address(args, target(stores, args))
    return EXIT_OK


def cmd_connect(args: argparse.Namespace) -> int:
    with command_line_checks():
        host, port, tls_mode = resolve_preset(args.preset, host=args.host, port=args.port, tls_mode=args.tls,
                                              region=args.region)
        check_tls_and_port(tls_mode, port)
        kind = auth_kind_of(args)
        username = args.username or (args.email if kind is AuthKind.OAUTH2 else None)
        if not username:
            raise ConfigurationError("--username is required", action="Give the mailbox that signs in (usually the "
                                                                      "support address itself).")
        fields: dict[str, Any] = {"host": host, "port": port, "tls_mode": tls_mode, "username": username,
                                  "ca_bundle_pem": read_ca_bundle(args.ca_bundle)}
        if kind is AuthKind.OAUTH2:
            refuse_oauth_for_preset(args.preset, grant_of(args))
            fields.update(oauth_fields(args))
        else:
            refuse_oauth_flags(args)
            fields["password"] = read_password(args)
        credentials = build_credentials(fields)
    local_stack = bool(os.environ.get("RELAYDESK_TICKETS_TABLE"))  # the environment names the stack already
    stores = context.load_stores(args)
    peers = [] if local_stack else peer_directories(args, stores.settings.environment)
    if args.preset == "microsoft365" and args.auth is None:
        progress(BASIC_AUTH_NOTE)
    on_step = StepsUnder(f"live check of {host}:{port} ({tls_mode.value}) as {username} "
                         f"({describe_sign_in(credentials)}):")
    address, _ = lifecycle.connect_address(stores, args.account, args.email, credentials, args.name or "",
                                           on_step=on_step, peers=peers)
    on_step.done()
    if args.preset in PROFILE_OF_PRESET:  # the provider's sending limits follow the preset, not only the host
        address = set_limits(stores.directory, address.account_id, address.email,
                             provider=PROFILE_OF_PRESET[args.preset])
    progress(f"connected {address.email}: connector pending. Next: relaydesk addresses verify {address.email}")
    account = stores.directory.get_account(address.account_id)
    if host.endswith(MICROSOFT_SMARTHOST) and account.settings.include_attachments_in_email:
        progress("note: Microsoft rejects some mails with real attachments; consider `relaydesk accounts settings "
                 f"{account.account_id} --include-attachments off` (recipients then get links)")
    emit_address(args, address)
    return EXIT_OK


def cmd_verify(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    found = target(stores, args)
    was_held = state.is_held(found)
    address = verification.verify(stores, found.account_id, found.email, timeout=args.timeout, poll=args.poll,
                                  on_progress=progress)
    emit_address(args, address)
    if verification.is_verified(address):
        ended = "; the hold has ended and the notifications it held are on their way" if was_held else ""
        progress(f"{address.email}: forwarding and outbound verified{ended}")
        return EXIT_OK
    for direction, check in (("forwarding", address.forwarding), ("outbound", address.outbound)):
        if check.status is VerificationStatus.FAILED:
            progress(f"{direction} verification failed: {check.error}")
    if state.is_held(address):
        assert address.connector is not None
        held = address.connector.state
        progress(f"{address.email}: the hold stays ({held.value}); its notifications keep waiting. Fix the cause "
                 f"(above), then run `relaydesk addresses verify {address.email}` again")
        return EXIT_AUTH if held is ConnectorState.AUTH_FAILED else EXIT_SMTP
    progress(f"fix the cause, then run `relaydesk addresses verify {address.email}` again")
    return EXIT_VERIFY_TIMEOUT


def cmd_set_default(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.set_default(args, session)
    stores = context.load_stores(args)
    found = target(stores, args)
    emit_address(args, lifecycle.set_default(stores, found.account_id, found.email))
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    found = target(stores, args)
    current = rotation.current_credentials(stores, found.account_id, found.email)
    kind = AuthKind(args.auth) if args.auth else current.auth_kind
    changes: dict[str, Any] = {"auth_kind": kind}
    with command_line_checks():
        if kind is AuthKind.OAUTH2:
            # Also the switch of a password address to OAuth 2.0: the new fields go through testSecret like any
            # rotation, so the password stays live until the app's token is accepted by the smarthost.
            changes.update(oauth_fields(args, current if current.auth_kind is AuthKind.OAUTH2 else None))
        else:
            refuse_oauth_flags(args)
            changes["password"] = read_password(args, "new SMTP password: ")
        if args.username:
            changes["username"] = args.username
        if args.ca_bundle:
            changes["ca_bundle_pem"] = read_ca_bundle(args.ca_bundle)
        new_credentials = rotation.replaced(current, changes)
    what = staged_material(new_credentials) if kind is AuthKind.OAUTH2 else "credentials"
    if kind is not current.auth_kind:
        what = f"{kind.value} credentials (switching from {current.auth_kind.value})"
    email = found.email
    progress(f"staging the new {what} for {email} as AWSPENDING and starting the rotation")
    outcome = rotation.rotate(stores, found.account_id, email, new_credentials, timeout=args.timeout,
                              poll=args.poll, on_wait=progress)
    view = {"email": email, "version_id": outcome.version_id, "rotation": outcome.outcome.value}
    if outcome.error:
        view["error"] = outcome.error
    emit(view, as_json=args.json)
    if outcome.outcome is rotation.Outcome.PROMOTED:
        progress("the smarthost accepted the new credentials; they are now AWSCURRENT (the old ones AWSPREVIOUS); "
                 "a hold on the address has ended and what it held is on its way")
        return EXIT_OK
    if outcome.outcome is rotation.Outcome.FAILED:
        progress(f"rotation failed; the current credentials stay live: {outcome.error}")
        return EXIT_AUTH
    progress(f"the rotation is still running: check later with `relaydesk addresses show {email}`")
    return EXIT_OK


def cmd_set(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    address = target(stores, args)
    if address.connector is not None:
        now = address.connector
        where = f"{args.host or now.host}:{args.port or now.port} ({args.tls or now.tls_mode.value})"
        progress(f"live check of {where} with the current credentials of {address.email}:")
    was_held = state.is_held(address)
    with command_line_checks():
        ca_bundle = read_ca_bundle(args.ca_bundle)
    address, _ = connector_settings.change_settings(
        stores, address.account_id, address.email, host=args.host, port=args.port, tls_mode=args.tls,
        ca_bundle_pem=ca_bundle, on_step=print_step)
    connector = address.connector
    assert connector is not None
    ended = "; the hold has ended and the notifications it held are on their way" if was_held else ""
    progress(f"{address.email}: now submits to {connector.host}:{connector.port} ({connector.tls_mode.value}); "
             f"connector {connector.state.value}{ended}")
    emit_address(args, address)
    return EXIT_OK


def staged_material(credentials: SmtpCredentials) -> str:
    if credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        return f"service account key {credentials.oauth_key_id} of {credentials.oauth_service_account}"
    if credentials.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE:
        return f"OAuth 2.0 certificate {credentials.oauth_certificate_thumbprint}"
    return "OAuth 2.0 client secret"


def cmd_disable(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    found = target(stores, args)
    address = lifecycle.disable(stores, found.account_id, found.email)
    progress(f"{address.email}: connector disabled; notifications now leave through Relaydesk's default outbound")
    emit_address(args, address)
    return EXIT_OK


LIMIT_FLAGS = ("messages_per_minute", "messages_per_day", "recipients_per_day", "recipients_per_message",
               "connections")


def cmd_limits(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    given = {name: getattr(args, name) for name in LIMIT_FLAGS if getattr(args, name) is not None}
    address = target(stores, args)
    if args.provider is not None or given or args.reset:  # else only show them
        address = set_limits(stores.directory, address.account_id, address.email, provider=args.provider,
                             overrides=LimitOverrides(**given), reset=args.reset)
        progress(f"{address.email}: sending limits saved; the relay applies them to the next batch")
    view = {"email": address.email, **limits_view(address)}
    emit(view, as_json=args.json)
    return EXIT_OK


def positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, not {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def cmd_enable(args: argparse.Namespace) -> int:
    stores = context.load_stores(args)
    found = target(stores, args)
    address = lifecycle.enable(stores, found.account_id, found.email)
    progress(f"{address.email}: connector pending until outbound is verified again: "
             f"relaydesk addresses verify {address.email}")
    emit_address(args, address)
    return EXIT_OK


def cmd_delete(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.delete_address(args, session)
    stores = context.load_stores(args)
    found = target(stores, args)
    address = lifecycle.delete_address(stores, found.account_id, found.email)
    secret = " and its secret is scheduled for deletion" if address.connector else ""
    progress(f"{address.email} removed{secret}")
    emit({"email": address.email, "deleted": True}, as_json=args.json)
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.add_address(args, session)
    if not args.account:
        raise ConfigurationError("--account is required", action="Name the account the address is added to.")
    stores = context.load_stores(args)
    address = lifecycle.add_forwarding_address(stores, args.account, args.email, args.name or "",
                                               peers=peer_directories(args, stores.settings.environment))
    progress(f"added {address.email} (forwarding unverified). Next: relaydesk addresses verify {address.email}")
    emit_address(args, address)
    return EXIT_OK


def cmd_rename(args: argparse.Namespace) -> int:
    if (session := identity.tenant_session(args)) is not None:
        return tenant_addresses.rename_address(args, session)
    stores = context.load_stores(args)
    found = target(stores, args)
    emit_address(args, lifecycle.update_address(stores, found.account_id, found.email, name=args.name))
    return EXIT_OK


def register(groups: argparse._SubParsersAction) -> None:
    parser = groups.add_parser("addresses", help="support addresses: connect, verify, set, rotate, disable, delete")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, func: Any, help_text: str, *, email: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        if email:
            sub.add_argument("email", help="the support address")
            sub.add_argument("--account", help="the account whose address it is (default: the account that verified "
                                               "it, or the only one that added it)")
        add_json_flag(sub)
        sub.set_defaults(func=func)
        return sub

    sub = command("list", cmd_list, "the account's support addresses", email=False)
    sub.add_argument("--account", help="account id (a signed-in user: always its own)")
    command("show", cmd_show, "one address: kind, connector state, verification, last error")
    sub = command("add", cmd_add, "add a forwarding address (unverified until `verify`)")
    sub.add_argument("--name", help="display name of the address")
    sub = command("rename", cmd_rename, "change an address's display name")
    sub.add_argument("name", help="the new display name")

    sub = command("connect", cmd_connect, "connect an address to its own smarthost (live check, then saved pending)",
                  email=False)
    sub.add_argument("email", type=support_address, help="the support address")
    sub.add_argument("--account", required=True, help="account id")
    sub.add_argument("--preset", choices=sorted(PRESETS), default="generic", help="provider preset")
    sub.add_argument("--host", help="smarthost (overrides the preset)")
    sub.add_argument("--port", type=port_number, help="587 for STARTTLS, 465 for implicit TLS")
    sub.add_argument("--tls", choices=[m.value for m in TlsMode], help="starttls (default) or implicit")
    sub.add_argument("--region", help="AWS region of the amazon-ses preset")
    sub.add_argument("--username", help="the mailbox that signs in (oauth2: default the address itself)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add_oauth_arguments(sub)
    sub.add_argument("--ca-bundle", metavar="FILE", type=existing_file, help="PEM CA bundle of a private smarthost")
    sub.add_argument("--name", help="display name of the address")

    sub = command("verify", cmd_verify, "verify forwarding, then outbound; waits with progress, can be run again")
    sub.add_argument("--timeout", type=float, default=verification.DEFAULT_TIMEOUT_SECONDS,
                     help="seconds to wait for each test mail (default %(default)s)")
    sub.add_argument("--poll", type=float, default=verification.POLL_SECONDS, help=argparse.SUPPRESS)

    command("set-default", cmd_set_default, "make a verified address the account's default")

    sub = command("rotate", cmd_rotate, "stage new credentials as AWSPENDING and start the rotation")
    sub.add_argument("--username", help="a new username (default: keep the current one)")
    sub.add_argument("--password-stdin", action="store_true", help="read the new password from standard input")
    add_oauth_arguments(sub, rotating=True)
    sub.add_argument("--ca-bundle", metavar="FILE", type=existing_file, help="a new PEM CA bundle")
    sub.add_argument("--timeout", type=float, default=120.0,
                     help="seconds to wait for the rotation's outcome (default %(default)s)")
    sub.add_argument("--poll", type=float, default=2.0, help=argparse.SUPPRESS)

    sub = command("set", cmd_set, "change the smarthost's host, port, TLS mode or CA bundle (live-checked first; "
                                  "a hold ends)")
    sub.add_argument("--host", help="the new smarthost")
    sub.add_argument("--port", type=port_number, help="587 for STARTTLS, 465 for implicit TLS")
    sub.add_argument("--tls", choices=[m.value for m in TlsMode], help="starttls or implicit")
    sub.add_argument("--ca-bundle", metavar="FILE", type=existing_file, help="a new PEM CA bundle (private smarthost)")

    sub = command("limits", cmd_limits, "show or lower the address's sending limits (a provider's published "
                                        "limits can only be lowered)")
    sub.add_argument("--provider", choices=sorted(PROFILES), help="the provider whose published limits apply")
    for name in LIMIT_FLAGS:
        sub.add_argument(f"--{name.replace('_', '-')}", dest=name, type=positive, metavar="N")
    sub.add_argument("--reset", action="store_true", help="drop the limits set for this address (the provider's "
                                                          "apply), before any given here")

    command("disable", cmd_disable, "stop the connector; notifications fall back to the default outbound")
    command("enable", cmd_enable, "turn the connector on again (outbound must be verified again)")
    command("delete", cmd_delete, "remove one address and schedule its secret's deletion")
