"""SQS fair queues for moto's standard queues, so local runs see the order AWS gives: moto 5.2.5 accepts a
MessageGroupId on a standard queue and returns it, but hands messages out in arrival order whatever their group.

What AWS documents ("How Amazon SQS fair queues work", SQS Developer Guide), done here:

- a tenant is a MessageGroupId (a message without one is a tenant of its own);
- a tenant is a noisy neighbour when it holds more than 10% of the queue's in-flight messages and at least 30 of
  them, or more than 10% of the consumers' recent processing time (receive to delete);
- a receive hands out quiet tenants' messages first, in arrival order, then noisy tenants' messages, the noisy
  tenant with the fewest in-flight messages first; nothing is dropped or throttled;
- FIFO queues are untouched.

`install()` wraps moto's Queue.messages (the visible messages a ReceiveMessage picks from, in order), the receive
mark and the delete; `uninstall()` puts them back. The local stack installs it; so do the fairness test and bench.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

NOISY_SHARE = 0.10
NOISY_MIN_IN_FLIGHT = 30
RECENT_SECONDS = 60.0  # processing time counted toward a tenant's share

_lock = threading.Lock()
_finished: dict[str, deque[tuple[float, str, float]]] = defaultdict(deque)  # queue arn -> (ended, tenant, seconds)
_originals: dict[str, object] = {}


def tenant(message) -> str:
    return message.group_id or f"message:{message.id}"


def _in_flight(queue) -> list:
    for _ in range(3):  # the server's threads change these sets while a receive looks at them
        try:
            return [m for m in list(queue.pending_messages) if not m.visible]
        except RuntimeError:
            continue
    return []


def order(queue, visible: list) -> list:
    """The visible messages in the order a fair queue hands them out."""
    if queue.fifo_queue or len({tenant(m) for m in visible}) < 2:
        return visible
    now = time.time()
    flying = _in_flight(queue)
    in_flight: dict[str, int] = defaultdict(int)
    busy: dict[str, float] = defaultdict(float)
    for message in flying:
        in_flight[tenant(message)] += 1
        busy[tenant(message)] += now - getattr(message, "fair_received_at", now)
    with _lock:
        recent = _finished[queue.queue_arn]
        while recent and recent[0][0] < now - RECENT_SECONDS:
            recent.popleft()
        for _, name, seconds in recent:
            busy[name] += seconds
    total_in_flight, total_busy = len(flying), sum(busy.values())

    def noisy(name: str) -> bool:
        by_count = in_flight[name] > NOISY_SHARE * total_in_flight and in_flight[name] >= NOISY_MIN_IN_FLIGHT
        return by_count or (total_busy > 0 and busy[name] > NOISY_SHARE * total_busy)

    quiet = [m for m in visible if not noisy(tenant(m))]
    loud = sorted((m for m in visible if noisy(tenant(m))), key=lambda m: in_flight[tenant(m)])
    return quiet + loud


def install() -> None:
    from moto.sqs import models

    with _lock:
        if _originals:
            return
        _originals.update(messages=models.Queue.messages, mark=models.Message.mark_received,
                          delete=models.Queue.delete_message)
    plain_messages = _originals["messages"].fget  # type: ignore[attr-defined]
    plain_mark, plain_delete = _originals["mark"], _originals["delete"]

    def messages(queue):
        return order(queue, plain_messages(queue))

    def mark_received(message, visibility_timeout=None):
        plain_mark(message, visibility_timeout)  # type: ignore[operator]
        message.fair_received_at = time.time()

    def delete_message(queue, receipt_handle):
        found = next((m for m in list(queue._messages) if m.had_receipt_handle(receipt_handle)), None)
        plain_delete(queue, receipt_handle)  # type: ignore[operator]
        if found is not None and hasattr(found, "fair_received_at"):
            with _lock:
                _finished[queue.queue_arn].append((time.time(), tenant(found), time.time() - found.fair_received_at))

    models.Queue.messages = property(messages)
    models.Message.mark_received = mark_received
    models.Queue.delete_message = delete_message


def uninstall() -> None:
    from moto.sqs import models

    with _lock:
        if not _originals:
            return
        models.Queue.messages = _originals.pop("messages")
        models.Message.mark_received = _originals.pop("mark")
        models.Queue.delete_message = _originals.pop("delete")
        _finished.clear()
