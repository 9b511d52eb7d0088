"""Tables for people, JSON for scripts, and exit codes that mean something."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from relaydesk.errors import (
    AuthenticationFailedError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    RelaydeskError,
    RuleViolation,
    SmtpDeliveryError,
)

EXIT_OK = 0
EXIT_ERROR = 1  # something failed; the message says what
EXIT_USAGE = 2  # argparse's own code for a bad command line
EXIT_NOT_FOUND = 3
EXIT_RULE = 4  # a connector rule refused the change
EXIT_CONFLICT = 5
EXIT_SMTP = 6  # the smarthost refused: connection, TLS or delivery
EXIT_AUTH = 7  # the smarthost refused the credentials
EXIT_VERIFY_TIMEOUT = 8
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report a SIGINT (128 + 2)


class UsageError(RelaydeskError, ValueError):
    """The command line itself is wrong (a value out of range, options that do not go together): exit 2, like
    argparse's own errors. Nothing was sent or changed."""

    code = "usage"


@contextlib.contextmanager
def command_line_checks() -> Iterator[None]:
    """Inside: a ConfigurationError is about what the command line gave (a flag, a value), so it is a UsageError."""
    try:
        yield
    except ConfigurationError as error:
        raise UsageError(error.message, action=error.action or None) from None


def exit_code_for(error: RelaydeskError) -> int:
    for kind, code in ((UsageError, EXIT_USAGE), (NotFoundError, EXIT_NOT_FOUND), (RuleViolation, EXIT_RULE),
                       (ConflictError, EXIT_CONFLICT),
                       (AuthenticationFailedError, EXIT_AUTH), (SmtpDeliveryError, EXIT_SMTP)):
        if isinstance(error, kind):
            return code
    return EXIT_ERROR


def fail(error: RelaydeskError, *, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": error.to_dict()}), file=sys.stderr)
    else:
        print(f"error: {error.message}", file=sys.stderr)
        if error.action:
            print(f"  what to do: {error.action}", file=sys.stderr)
    return exit_code_for(error)


def emit(data: Any, *, as_json: bool, columns: Sequence[str] | None = None) -> None:
    """Print a record or a list of records: JSON for scripts, an aligned table (or key: value lines) for people."""
    if as_json:
        print(json.dumps(data, indent=2, default=str))
        return
    if isinstance(data, dict):
        width = max((len(k) for k in data), default=0)
        for key, value in data.items():
            print(f"{key.ljust(width)}  {value}")
        return
    print_table(list(data), columns or (list(data[0].keys()) if data else []))


def print_table(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> None:
    rows = list(rows)
    if not rows:
        print("(none)")
        return
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def progress(message: str) -> None:
    """Progress goes to stderr so that --json output on stdout stays parseable."""
    print(message, file=sys.stderr, flush=True)
