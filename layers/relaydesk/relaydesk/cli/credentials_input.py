"""How `relaydesk addresses connect|rotate` take credentials: passwords and OAuth client secrets from standard input
or a hidden prompt, a Google service account's key file and an app certificate's PEM from standard input or a file
(never an argument: `RefuseSecretArgument`), the OAuth flags, and their checks into `SmtpCredentials`."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from relaydesk.addresses.sign_in import (
    CLEARED_FOR_CLIENT_SECRET,
    MAX_KEY_FILE_BYTES,
    certificate_fields,
    service_account_fields,
)
from relaydesk.credentials import AuthKind, OAuthGrant, SmtpCredentials, checked_credentials
from relaydesk.errors import ConfigurationError

PEM_CERTIFICATE = "-----BEGIN CERTIFICATE-----"


MICROSOFT_SMARTHOST = "office365.com"


BASIC_AUTH_NOTE = (
    "note: Microsoft has announced that Exchange Online turns basic authentication for SMTP AUTH off by default for "
    "existing tenants at the end of December 2026 (the server then answers 550 5.7.30); connect with --auth oauth2 "
    "--tenant-id T --client-id C --client-secret-stdin to sign in with an Entra ID app instead "
    "(docs/providers/microsoft365.md)")


class RefuseSecretArgument(argparse.Action):
    """`--password VALUE` / `--client-secret VALUE` / `--certificate PEM` / `--service-account JSON`: refused without
    echoing the value (argparse would otherwise take it for an abbreviation of the -stdin flag and print VALUE as an
    unrecognised argument)."""

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


def grant_of(args: argparse.Namespace, current: SmtpCredentials | None = None) -> OAuthGrant:
    """Which OAuth grant the flags ask for: the sign-in material given decides (a key file, a certificate, a client
    secret); with none given, the current grant (rotation) or a client secret."""
    given = [grant for grant, flags in (
        (OAuthGrant.SERVICE_ACCOUNT, (args.service_account_file, args.service_account_stdin)),
        (OAuthGrant.CLIENT_CERTIFICATE, (args.certificate_file, args.certificate_stdin)),
        (OAuthGrant.CLIENT_SECRET, (args.client_secret_stdin,)),
    ) if any(flags)]
    if len(given) > 1:
        raise ConfigurationError("give one kind of sign-in material: a service account key file, a certificate or "
                                 "a client secret")
    if given:
        return given[0]
    if current is not None and current.auth_kind is AuthKind.OAUTH2:
        return current.oauth_grant
    return OAuthGrant.CLIENT_SECRET


def oauth_fields(args: argparse.Namespace, current: SmtpCredentials | None = None) -> dict[str, Any]:
    """The OAuth flags and sign-in material (a client secret from stdin or a prompt; a service account's JSON key
    file or a certificate's PEM from a file or stdin) as SmtpCredentials fields; a field not given keeps `current`'s
    value (rotation)."""
    if args.password_stdin:
        raise ConfigurationError("--password-stdin does not apply to --auth oauth2",
                                 action="Give the app's client secret with --client-secret-stdin (or at the prompt), "
                                        "its certificate with --certificate-file, or a Google service account's key "
                                        "file with --service-account-file.")
    grant = grant_of(args, current)
    if grant is OAuthGrant.SERVICE_ACCOUNT:
        given = [flag for flag, value in (("--tenant-id", args.tenant_id), ("--client-id", args.client_id)) if value]
        if given:
            raise ConfigurationError(f"{' and '.join(given)} do not apply to a Google service account",
                                     action="The key file names the service account and its client ID.")
        material = _read_material(args.service_account_file, args.service_account_stdin, "service account key file",
                                  "--service-account-file KEY.json (or --service-account-stdin)")
        fields = service_account_fields(material)
    else:
        fields = _entra_app_fields(args, current, grant)
    if args.token_url:
        fields["oauth_token_url"] = args.token_url
    return fields


def _entra_app_fields(args: argparse.Namespace, current: SmtpCredentials | None, grant: OAuthGrant) -> dict[str, Any]:
    same_kind = current is not None and current.oauth_grant is not OAuthGrant.SERVICE_ACCOUNT
    tenant = args.tenant_id or (current.oauth_tenant_id if same_kind and current else None)
    client = args.client_id or (current.oauth_client_id if same_kind and current else None)
    missing = [flag for flag, value in (("--tenant-id", tenant), ("--client-id", client)) if not value]
    if missing:
        raise ConfigurationError(f"--auth oauth2 needs {' and '.join(missing)}",
                                 action="Give the Directory (tenant) ID and the Application (client) ID from the "
                                        "app registration's Overview page in Entra ID.")
    assert tenant is not None and client is not None
    fields: dict[str, Any] = {"auth_kind": AuthKind.OAUTH2, "oauth_tenant_id": tenant.strip(),
                              "oauth_client_id": client.strip()}
    if grant is OAuthGrant.CLIENT_CERTIFICATE:
        fields.update(certificate_fields(_read_material(
            args.certificate_file, args.certificate_stdin, "certificate file",
            "--certificate-file PEM (or --certificate-stdin): the app's certificate and its private key")))
    else:
        fields.update(CLEARED_FOR_CLIENT_SECRET, oauth_client_secret=read_client_secret(args))
    if not args.token_url and current is not None and current.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        fields["oauth_token_url"] = None  # Google's endpoint is not Entra ID's
    return fields


def _read_material(path: str | None, from_stdin: bool, what: str, how: str) -> bytes:
    """A key file or PEM, whole, from a file or standard input; bounded (it is parsed right after)."""
    if path and from_stdin:
        raise ConfigurationError(f"give the {what} either as a file or on standard input, not both")
    if path:
        try:
            with Path(path).open("rb") as handle:
                data = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigurationError(f"cannot read the {what} {path}: {error.strerror or type(error).__name__}",
                                     action=f"Give {how}.") from None
    elif from_stdin:
        data = sys.stdin.buffer.read(MAX_KEY_FILE_BYTES + 1) if hasattr(sys.stdin, "buffer") else \
            sys.stdin.read(MAX_KEY_FILE_BYTES + 1).encode("utf-8")
    else:
        raise ConfigurationError(f"no {what} given", action=f"Give {how}. It is never accepted as an argument.")
    return data


def describe_sign_in(credentials: SmtpCredentials) -> str:
    """How the address signs in, for progress lines (no secret)."""
    if credentials.auth_kind is not AuthKind.OAUTH2:
        return "password"
    if credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        return f"Google service account {credentials.oauth_service_account}"
    if credentials.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE:
        return (f"OAuth 2.0 app {credentials.oauth_client_id}, certificate {credentials.oauth_certificate_thumbprint}")
    return f"OAuth 2.0 app {credentials.oauth_client_id}"


def build_credentials(fields: dict[str, Any]) -> SmtpCredentials:
    return checked_credentials(fields)


def read_ca_bundle(path: str | None) -> str | None:
    if not path:
        return None
    text = Path(path).read_text(encoding="ascii")
    if PEM_CERTIFICATE not in text:
        raise ConfigurationError(f"{path} holds no PEM certificate", action="Pass the CA certificate(s) as PEM.")
    return text


def secret_fields(credentials: SmtpCredentials) -> dict[str, Any]:
    """The current secret's fields with their real values (model_dump keeps SecretStr masked objects)."""
    return json.loads(credentials.to_secret_string())


def refuse_oauth_for_preset(preset: str | None, grant: OAuthGrant) -> None:
    """What each provider's SMTP service takes: Gmail a service account's token, Exchange Online an Entra ID app's,
    Amazon SES no OAuth at all."""
    if preset == "google" and grant is not OAuthGrant.SERVICE_ACCOUNT:
        raise ConfigurationError(
            "--auth oauth2 for Google Workspace signs in with a service account that has domain-wide delegation",
            action="Give its JSON key file with --service-account-file KEY.json (or --service-account-stdin); see "
                   "docs/providers/google.md. Otherwise connect with an app password (--password-stdin), or through "
                   "Google's SMTP relay service (--preset generic --host smtp-relay.gmail.com).")
    if preset == "microsoft365" and grant is OAuthGrant.SERVICE_ACCOUNT:
        raise ConfigurationError("a Google service account cannot sign in to Microsoft 365",
                                 action="Use an Entra ID app: --tenant-id, --client-id and --client-secret-stdin or "
                                        "--certificate-file.")
    if preset == "amazon-ses":
        raise ConfigurationError("--auth oauth2 is not available for Amazon SES",
                                 action="Use the SES SMTP credentials with --password-stdin.")


def refuse_oauth_flags(args: argparse.Namespace) -> None:
    given = [flag for flag, value in (("--tenant-id", args.tenant_id), ("--client-id", args.client_id),
                                      ("--client-secret-stdin", args.client_secret_stdin),
                                      ("--certificate-file", args.certificate_file),
                                      ("--certificate-stdin", args.certificate_stdin),
                                      ("--service-account-file", args.service_account_file),
                                      ("--service-account-stdin", args.service_account_stdin),
                                      ("--token-url", args.token_url)) if value]
    if given:
        raise ConfigurationError(f"{', '.join(given)} only apply to --auth oauth2",
                                 action="Add --auth oauth2 to sign in with an Entra ID app or a Google service "
                                        "account.")


def add_oauth_arguments(sub: argparse.ArgumentParser, *, rotating: bool = False) -> None:
    keep = " (default: keep the current one)" if rotating else ""
    sub.add_argument("--auth", choices=[k.value for k in AuthKind],
                     help=("password or oauth2 (default: the address's current kind; oauth2 switches a password "
                           "address, tested before it goes live)" if rotating else
                           "password (default: AUTH PLAIN/LOGIN) or oauth2 (XOAUTH2 with an Entra ID app's client "
                           "secret or certificate, or a Google service account)"))
    sub.add_argument("--tenant-id", help=f"oauth2: the Directory (tenant) ID{keep}")
    sub.add_argument("--client-id", help=f"oauth2: the Application (client) ID{keep}")
    sub.add_argument("--client-secret-stdin", action="store_true",
                     help="oauth2: read the client secret's Value from standard input (else a hidden prompt)")
    sub.add_argument("--certificate-file", metavar="PEM",
                     help="oauth2: the Entra ID app's certificate and its private key (PEM) instead of a client secret")
    sub.add_argument("--certificate-stdin", action="store_true", help="oauth2: ... read from standard input")
    sub.add_argument("--service-account-file", metavar="KEY.json",
                     help="oauth2: a Google service account's JSON key file (domain-wide delegation)")
    sub.add_argument("--service-account-stdin", action="store_true", help="oauth2: ... read from standard input")
    sub.add_argument("--token-url", help="oauth2: the token endpoint (default: Microsoft's for the tenant, or the key "
                                         "file's token_uri)")
    sub.add_argument("--client-secret", action=RefuseSecretArgument)
    sub.add_argument("--password", action=RefuseSecretArgument)
    # The key material itself as a value (`--certificate "$(cat app.pem)"`): refused, as a secret would be.
    sub.add_argument("--certificate", action=RefuseSecretArgument)
    sub.add_argument("--service-account", action=RefuseSecretArgument)
