"""The `relaydesk` admin CLI: every command group lives in its own module and registers itself here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from relaydesk.cli.output import EXIT_ERROR, EXIT_USAGE, fail
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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relaydesk", description="Relaydesk admin center")
    parser.add_argument("--stack", help="CloudFormation stack name (default: from samconfig.toml)")
    parser.add_argument("--env", default=None, help="samconfig.toml environment (sandbox or production)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    groups = parser.add_subparsers(dest="group", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except RelaydeskError as error:
        return fail(error, as_json=args.json)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_USAGE
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
