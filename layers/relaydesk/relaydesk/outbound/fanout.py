"""Several messages in flight to one smarthost over N connections: one shared backlog, and each connection takes the
next message when it can carry one, so a slow reply on one connection holds back only that connection.

Within a connection messages are pipelined (`outbound/pipelined.py`); across connections they run concurrently on
one event loop. A message whose connection ended before the server saw its body (NothingAcceptedError) is reported,
not sent again here: the caller decides, as it does for a single connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace

from relaydesk.errors import SmtpDeliveryError
from relaydesk.outbound.envelope import Outgoing
from relaydesk.outbound.pipelined import Backlog, PipelinedSubmission, Sent
from relaydesk.outbound.smtp import NothingAcceptedError


async def open_sessions(make: Callable[[], PipelinedSubmission], count: int) -> list[PipelinedSubmission]:
    """`count` sessions opened concurrently (TLS, then AUTH, each); a session that failed to open closed itself.
    Raises the first typed failure when none opened, and anything else (a bug, a cancellation) at once."""
    sessions = [make() for _ in range(count)]
    outcomes = await asyncio.gather(*(session.open() for session in sessions), return_exceptions=True)
    failures = [outcome for outcome in outcomes if outcome is not None]
    if any(not isinstance(failure, SmtpDeliveryError) for failure in failures):
        await asyncio.gather(*(session.close() for session in sessions))
        raise next(failure for failure in failures if not isinstance(failure, SmtpDeliveryError))
    opened = [session for session, outcome in zip(sessions, outcomes, strict=True) if outcome is None]
    if not opened:
        raise failures[0]
    return opened


async def send_over(sessions: Sequence[PipelinedSubmission], messages: Sequence[Outgoing]) -> list[Sent]:
    """Every message's result, in the order given. Each message is taken by exactly one connection; a message no
    connection could take (all of them ended) is NothingAcceptedError."""
    backlog = Backlog(replace(message, tag=index) for index, message in enumerate(messages))
    results: dict[object, Sent] = {}

    def report(message: Outgoing, sent: Sent) -> None:
        results[message.tag] = sent

    await asyncio.gather(*(session.stream(backlog, report) for session in sessions))
    return [results.get(index) or NothingAcceptedError("no connection to the smarthost was left to send it")
            for index in range(len(messages))]
