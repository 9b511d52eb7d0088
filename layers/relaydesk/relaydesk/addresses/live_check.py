"""The live check before credentials are saved: DNS, TCP, STARTTLS or implicit TLS, certificate, AUTH, step by step
(an OAuth 2.0 address also has a `token` step before AUTH: the app's access token is fetched, and AUTH is XOAUTH2).

Each step is reported as it finishes (name, ok, detail, elapsed) and a failure carries a plain-words explanation
with the fix. TLS is verified with the one client context and never downgraded; AUTH is only tried over TLS. The
password, the client secret and the access token never appear in a step, the report or an error. The SMTP
conversation itself is in `live_check_smtp`, imported when a check runs: rotation checks in one step of four and
the addresses API in a few operations, so their cold start skips aiosmtplib (about 6 ms; 20 ms with asyncio for
rotation: bench/bench_coldstart.py).
"""

from __future__ import annotations

from collections.abc import Awaitable

from relaydesk.addresses.check_report import CheckStep, LiveCheckReport, Resolver, StepListener
from relaydesk.credentials import AuthKind, SmtpCredentials, TlsMode

__all__ = ["CheckStep", "LiveCheckReport", "live_check", "planned_steps", "run_live_check"]

DEFAULT_TIMEOUT = 20.0  # seconds per network operation; Exchange Online can take several seconds to answer AUTH


def planned_steps(credentials: SmtpCredentials, *, sender: bool = True) -> list[str]:
    """The steps a check of these credentials runs, in order, when every one passes (what a progress view lists)."""
    tls = ["tls"] if credentials.tls_mode is TlsMode.IMPLICIT else ["greeting", "starttls"]
    token = ["token"] if credentials.auth_kind is AuthKind.OAUTH2 else []
    return ["dns", "tcp", *tls, "certificate", *token, "auth", *(["sender"] if sender else [])]


async def live_check(credentials: SmtpCredentials, *, resolver: Resolver | None = None,
                     timeout: float = DEFAULT_TIMEOUT, sender: str | None = None,
                     on_step: StepListener | None = None) -> LiveCheckReport:
    """Run the check in the running event loop."""
    from relaydesk.addresses.live_check_smtp import Checker

    checker = Checker(credentials, resolver=resolver, timeout=timeout, sender=sender, on_step=on_step)
    return await checker.run()


def run_live_check(credentials: SmtpCredentials, *, resolver: Resolver | None = None,
                   timeout: float = DEFAULT_TIMEOUT, sender: str | None = None,
                   on_step: StepListener | None = None) -> LiveCheckReport:
    """Run the check to the end and return its report; `on_step` hears each step as it finishes."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    coroutine: Awaitable[LiveCheckReport] = live_check(credentials, resolver=resolver, timeout=timeout,
                                                       sender=sender, on_step=on_step)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)  # type: ignore[arg-type]
    # Called from inside an event loop (a Lambda powered by asyncio, a test): run in a thread of its own.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]
