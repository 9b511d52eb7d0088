"""A connection's `MessageSource` (pipelined.py) that claims and prepares one message ahead: while message n is
on the wire, message n+1 is claimed (the once guard), composed and signed in the connection's worker thread, so
that its envelope is ready to ride in the same write as n's final dot (one round trip per message).

At most one message is claimed ahead per connection. One the connection never took (it ended first: dropped,
closed by the server, or the batch's time ran out) is handed back by `leftover()` still claimed and untouched on
the wire: the connection sends it once it reconnects, or its outcome releases the claim, exactly as for a message
claimed and then not sent today (docs/DELIVERY.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor, Future

from relaydesk.outbound.delivery import Delivery
from relaydesk.outbound.envelope import Outgoing


class Prefetch:
    """`first`: the message the connection starts with (prepared already). `prepare_next()`: takes the next
    notification, claims and prepares it (those that end without a send are concluded there); None when there are
    no more or the connection must stop taking. It runs on `worker`, never on the event loop."""

    def __init__(self, first: Delivery | None, prepare_next: Callable[[], Delivery | None], worker: Executor,
                 deadline: Callable[[], float | None], *, still_wanted: Callable[[Delivery], bool] = lambda d: True,
                 unclaim: Callable[[Delivery], None] = lambda d: None) -> None:
        """`still_wanted(delivery)`: asked (on the event loop, no I/O) just before a message prepared ahead goes on
        the wire; when no longer (the mailbox was throttled meanwhile), `unclaim(delivery)` runs on the worker."""
        self._first = first
        self._prepare_next = prepare_next
        self._worker = worker
        self._deadline = deadline
        self._still_wanted = still_wanted
        self._unclaim = unclaim
        self._ahead: Future[Delivery | None] | None = None
        self._done = False  # prepare_next said there are no more

    @property
    def preparing(self) -> bool:
        """A message is being claimed and prepared ahead right now."""
        return self._ahead is not None and not self._ahead.done()

    def ready(self) -> Outgoing | None:
        """The message prepared ahead, when its preparation has finished; never waits."""
        if self._first is not None:
            return self._hand_out(self._take_first())
        if self._ahead is None or not self._ahead.done():
            return None
        return self._hand_out(self._take_ahead())

    async def next(self) -> Outgoing | None:
        if self._first is not None:
            outgoing = self._hand_out(self._take_first())
            if outgoing is not None:
                return outgoing
        while not self._done or self._ahead is not None:
            if self._ahead is None:
                self._ahead = self._worker.submit(self._prepare_next)
            await asyncio.wrap_future(self._ahead)
            outgoing = self._hand_out(self._take_ahead())
            if outgoing is not None:
                return outgoing
        return None

    def leftover(self) -> Delivery | None:
        """After the stream: the message claimed and prepared ahead that the connection did not take (waits for a
        preparation still running)."""
        if self._first is not None:
            return self._take_first()
        return self._take_ahead() if self._ahead is not None else None

    def _take_first(self) -> Delivery | None:
        first, self._first = self._first, None
        return first

    def _take_ahead(self) -> Delivery | None:
        ahead, self._ahead = self._ahead, None
        assert ahead is not None
        delivery = ahead.result()
        if delivery is None:
            self._done = True
        return delivery

    def _hand_out(self, delivery: Delivery | None) -> Outgoing | None:
        """The message for the wire; the one after it starts preparing now, while this one is in flight."""
        if delivery is None:
            return None
        if not self._still_wanted(delivery):
            self._worker.submit(self._unclaim, delivery)
            if not self._done:
                self._ahead = self._worker.submit(self._prepare_next)
            return None
        outgoing = delivery.outgoing(self._deadline())
        if not self._done:
            self._ahead = self._worker.submit(self._prepare_next)
        return outgoing
