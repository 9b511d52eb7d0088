"""Store calls that must land: the relay's outcomes and ticket records, inbound's tickets, comments and ledger.

The SDK already retries a throttled call a few times; when it still fails, the call is tried again here, with a
growing pause, for as long as the invocation has time (less what answering needs: SQS's batch response, or the
raise that hands an inbound mail to Lambda's retry). Only the error's type is logged, never its message.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from relaydesk.errors import NotFoundError

log = logging.getLogger(__name__)

T = TypeVar("T")

ANSWER_MARGIN_MS = 500  # kept for answering (the batch response, the retry delays, the raise) after the last try
FIRST_PAUSE_SECONDS = 0.05
MAX_PAUSE_SECONDS = 1.0
TRIES_WITHOUT_DEADLINE = 4  # no invocation clock (unit tests, the CLI): a few tries, well under a second


def _any_failure(error: Exception) -> bool:
    return True


def retried(what: str, call: Callable[[], T], remaining_ms: Callable[[], int] | None, *,
            retryable: Callable[[Exception], bool] = _any_failure) -> T:
    """`call`'s answer, once it gives one. A failure `retryable` accepts is tried again while the invocation has time;
    any other failure, or the last one when the time is spent, is raised as it came."""
    pause = FIRST_PAUSE_SECONDS
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as error:
            if not retryable(error):
                raise
            wait = pause * random.uniform(0.5, 1.0)
            if remaining_ms is None:
                out_of_time = tries >= TRIES_WITHOUT_DEADLINE
            else:
                out_of_time = remaining_ms() - wait * 1000 < ANSWER_MARGIN_MS
            if out_of_time:
                log.error("%s failed %d time(s), the last with %s; given up for this invocation", what, tries,
                          type(error).__name__)
                raise
            log.warning("%s failed (%s); trying again", what, type(error).__name__)
            time.sleep(wait)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)


def keep_trying(what: str, write: Callable[[], object], remaining_ms: Callable[[], int] | None) -> bool:
    """Runs `write` until it returns, or until the invocation's time is spent: True once it succeeded. A missing
    item (NotFoundError: the ticket was deleted) is not retried and counts as done: there is nothing left to write."""
    try:
        retried(what, write, remaining_ms, retryable=lambda error: not isinstance(error, NotFoundError))
    except NotFoundError:
        return True
    except Exception:  # noqa: BLE001  # any storage failure, retried while there was time: False, logged above
        return False
    return True
