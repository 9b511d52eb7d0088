"""The `relaydesk` admin CLI: every command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from relaydesk.cli import identity
from relaydesk.cli.output import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE, fail, progress
from relaydesk.errors import RelaydeskError

# Each module defines `register(subparsers)`; its commands set `func(args) -> int` as their default.
COMMAND_MODULES = (
    "relaydesk.cli.accounts",
    "relaydesk.cli.addresses",
    "relaydesk.cli.dlq",
    "relaydesk.cli.inbound",
    "relaydesk.cli.dns",
    "relaydesk.cli.dkim",
    "relaydesk.cli.tickets",
    "relaydesk.cli.suppressions",
    "relaydesk.cli.login",
    "relaydesk.cli.users",
)


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line (what is wrong) and where to read more, not the whole synopsis
    of a command with a dozen options above the one line that matters. Exit code 2, as argparse's."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n  (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="relaydesk", description="Relaydesk admin center")
    parser.add_argument("--stack", help="CloudFormation stack name (default: from samconfig.toml)")
    parser.add_argument("--env", default=None, help="samconfig.toml environment (sandbox or production)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--operator", action="store_true",
                        help="act as the operator with AWS credentials even when signed in as a user (`login`)")
    groups = parser.add_subparsers(dest="group", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name != name:
                raise
            continue  # a command group not written yet
        module.register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # a bad command line exits 2 here, with argparse's usage line
    if os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
        os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]  # boto3 reads only the second
    try:
        identity.check_allowed(args)
        if identity.command_of(args) not in identity.READ_ONLY:
            progress(f"relaydesk: {identity.describe(args)}")
        return int(args.func(args) or 0)
    except RelaydeskError as error:
        return fail(error, as_json=args.json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # an AWS failure the admin can fix is one line, not a traceback
        from relaydesk.store.aws_errors import explain

        problem = explain(error)
        if problem is not None:
            return fail(problem, as_json=args.json)
        if isinstance(error, (OSError, ValueError)):
            print(f"error: {error}", file=sys.stderr)
            return EXIT_ERROR
        raise


if __name__ == "__main__":
    sys.exit(main())
