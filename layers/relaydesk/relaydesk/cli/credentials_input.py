"""How `relaydesk addresses connect|rotate` take credentials: passwords and OAuth client secrets from standard input
or a hidden prompt (never an argument: `RefuseSecretArgument`), the OAuth flags, and their checks into
`SmtpCredentials`."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import ConfigurationError

PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


MICROSOFT_SMARTHOST = "office365.com"


BASIC_AUTH_NOTE = (
    "note: Microsoft has announced that Exchange Online turns basic authentication for SMTP AUTH off by default for "
    "existing tenants at the end of December 2026 (the server then answers 550 5.7.30); connect with --auth oauth2 "
    "--tenant-id T --client-id C --client-secret-stdin to sign in with an Entra ID app instead "
    "(docs/providers/microsoft365.md)")


class RefuseSecretArgument(argparse.Action):
    """`--password VALUE` / `--client-secret VALUE`: refused without echoing the value (argparse would otherwise
    take it for an abbreviation of the -stdin flag and print VALUE as an unrecognised argument)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs="?", help=argparse.SUPPRESS, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.error(f"{option_string} is never accepted as an argument (it would stay in the shell history and "
                     f"the process list): pipe it with {option_string}-stdin, or leave it out to be prompted")


def read_password(args: argparse.Namespace, prompt: str = "SMTP password: ") -> str:
    """From stdin with --password-stdin (one line, newline stripped), else a hidden prompt on a terminal."""
    return _read_secret(args.password_stdin, prompt, "password", "--password-stdin", "the mailbox's SMTP password")


def read_client_secret(args: argparse.Namespace, prompt: str = "Entra ID client secret (its Value): ") -> str:
    """The OAuth client secret, read like the password: --client-secret-stdin or a hidden prompt."""
    return _read_secret(args.client_secret_stdin, prompt, "client secret", "--client-secret-stdin",
                        "the client secret's Value (Entra ID > App registrations > the app > Certificates & secrets)")


def _read_secret(from_stdin: bool, prompt: str, what: str, flag: str, description: str) -> str:
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        secret = getpass.getpass(prompt)
    else:
        raise ConfigurationError(f"no {what} given",
                                 action=f"Pipe it with {flag}, or run the command in a terminal to be "
                                        f"prompted. A {what} is never accepted as an argument.")
    if not secret:
        raise ConfigurationError(f"the {what} is empty", action=f"Give {description}.")
    return secret


def auth_kind_of(args: argparse.Namespace) -> AuthKind:
    return AuthKind(args.auth or AuthKind.PASSWORD)


def oauth_fields(args: argparse.Namespace, current: SmtpCredentials | None = None) -> dict[str, Any]:
    """--tenant-id, --client-id, --token-url and the client secret (stdin or prompt) as SmtpCredentials fields;
    a field not given keeps `current`'s value (rotation)."""
    if args.password_stdin:
        raise ConfigurationError("--password-stdin does not apply to --auth oauth2",
                                 action="Give the app's client secret with --client-secret-stdin (or at the prompt).")
    tenant = args.tenant_id or (current.oauth_tenant_id if current else None)
    client = args.client_id or (current.oauth_client_id if current else None)
    missing = [flag for flag, value in (("--tenant-id", tenant), ("--client-id", client)) if not value]
    if missing:
        raise ConfigurationError(f"--auth oauth2 needs {' and '.join(missing)}",
                                 action="Give the Directory (tenant) ID and the Application (client) ID from the "
                                        "app registration's Overview page in Entra ID.")
    fields: dict[str, Any] = {"auth_kind": AuthKind.OAUTH2, "oauth_tenant_id": tenant.strip(),
                              "oauth_client_id": client.strip(), "oauth_client_secret": read_client_secret(args),
                              "password": ""}
    if args.token_url:
        fields["oauth_token_url"] = args.token_url
    return fields


def build_credentials(fields: dict[str, Any]) -> SmtpCredentials:
    try:
        return SmtpCredentials.model_validate(fields)
    except ValidationError as error:
        # Never str(error): it could quote the input, which may be a secret. A field's name and pydantic's
        # message (SmtpCredentials' own messages name fields, never values) are enough.
        problems = "; ".join(": ".join(part for part in (".".join(str(p) for p in e["loc"]), e["msg"]) if part)
                             for e in error.errors(include_input=False))
        raise ConfigurationError(f"invalid connector settings: {problems}") from None


def read_ca_bundle(path: str | None) -> str | None:
    if not path:
        return None
    text = Path(path).read_text(encoding="ascii")
    if PEM_CERTIFICATE not in text:
        raise ConfigurationError(f"{path} holds no PEM certificate", action="Pass the CA certificate(s) as PEM.")
    return text


def refuse_oauth_for_preset(preset: str | None) -> None:
    """--auth oauth2 is Entra ID's client-credentials grant: these providers' SMTP services do not take it."""
    if preset == "google":
        raise ConfigurationError(
            "--auth oauth2 is not available for Google Workspace: Google's XOAUTH2 for a server needs a service "
            "account with domain-wide delegation, which Relaydesk does not implement",
            action="Connect with an app password (--password-stdin), or through Google's SMTP relay service "
                   "(--preset generic --host smtp-relay.gmail.com); see docs/providers/google.md.")
    if preset == "amazon-ses":
        raise ConfigurationError("--auth oauth2 is not available for Amazon SES",
                                 action="Use the SES SMTP credentials with --password-stdin.")


def refuse_oauth_flags(args: argparse.Namespace) -> None:
    given = [flag for flag, value in (("--tenant-id", args.tenant_id), ("--client-id", args.client_id),
                                      ("--client-secret-stdin", args.client_secret_stdin),
                                      ("--token-url", args.token_url)) if value]
    if given:
        raise ConfigurationError(f"{', '.join(given)} only apply to --auth oauth2",
                                 action="Add --auth oauth2 to sign in with an Entra ID app.")


def add_oauth_arguments(sub: argparse.ArgumentParser, *, rotating: bool = False) -> None:
    keep = " (default: keep the current one)" if rotating else ""
    sub.add_argument("--auth", choices=[k.value for k in AuthKind],
                     help=("password or oauth2 (default: the address's current kind; oauth2 switches a password "
                           "address, tested before it goes live)" if rotating else
                           "password (default: AUTH PLAIN/LOGIN) or oauth2 (XOAUTH2 with an Entra ID app, "
                           "client-credentials grant)"))
    sub.add_argument("--tenant-id", help=f"oauth2: the Directory (tenant) ID{keep}")
    sub.add_argument("--client-id", help=f"oauth2: the Application (client) ID{keep}")
    sub.add_argument("--client-secret-stdin", action="store_true",
                     help="oauth2: read the client secret's Value from standard input (else a hidden prompt)")
    sub.add_argument("--token-url", help="oauth2: the token endpoint (default: Microsoft's for the tenant)")
    sub.add_argument("--client-secret", action=RefuseSecretArgument)
    sub.add_argument("--password", action=RefuseSecretArgument)
