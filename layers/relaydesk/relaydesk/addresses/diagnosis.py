"""An address's last error as the console shows it: what went wrong and what to do, in the words the CLI uses.

The texts written to `last_error` (a hold, a failed rotation or verification, a refused verification mail) carry
their fix already, or a server reply that `explain` knows; this splits or completes them, it never rewrites them."""

from __future__ import annotations

import re

from relaydesk.addresses.explain import Explanation, explain_reply

WHAT_TO_DO = "What to do:"
HOLD_PREFIX = "auth_failed:"  # the hold's code, for programs; the page says it in words
_REPLY_CODE = re.compile(r"\b([245]\d\d)\b")


def split_explanation(text: str) -> tuple[str, str | None]:
    """(what happened, what to do): a hold's text is split at its "What to do:"; a text quoting a reply that
    `explain_reply` knows (Exchange, Microsoft 365, Google codes) gets its fix; anything else is shown whole."""
    text = (text or "").strip().removeprefix(HOLD_PREFIX).strip()
    if WHAT_TO_DO in text:
        summary, _, fix = text.partition(WHAT_TO_DO)
        return summary.strip(), fix.strip() or None
    code = _REPLY_CODE.search(text)
    known = explain_reply(int(code.group(1)) if code else None, text)
    if known is not None:
        return text, known.fix
    return text, None


def explain_last_error(last_error: str | None) -> Explanation | None:
    if not last_error:
        return None
    summary, fix = split_explanation(last_error)
    return Explanation(summary, fix or "")
