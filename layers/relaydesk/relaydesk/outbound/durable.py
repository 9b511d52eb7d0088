"""Store writes that must land: a delivery's outcome, its ticket record, the reason of a last attempt.

The SDK already retries a throttled call a few times; when it still fails, the write is tried again here, with a
growing pause, for as long as the invocation has time (less what answering SQS needs). The caller keeps the outcome
meanwhile: a storage error after the smarthost accepted a message never turns it into a deferral.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

from relaydesk.errors import NotFoundError

log = logging.getLogger(__name__)

ANSWER_MARGIN_MS = 500  # kept for answering SQS (the batch response, the retry delays) after the last write
FIRST_PAUSE_SECONDS = 0.05
MAX_PAUSE_SECONDS = 1.0
TRIES_WITHOUT_DEADLINE = 4  # no invocation clock (unit tests, the CLI): a few tries, well under a second


def keep_trying(what: str, write: Callable[[], object], remaining_ms: Callable[[], int] | None) -> bool:
    """Runs `write` until it returns, or until the invocation's time is spent: True once it succeeded. A missing
    item (NotFoundError: the ticket was deleted) is not retried and counts as done: there is nothing left to write."""
    pause = FIRST_PAUSE_SECONDS
    tries = 0
    while True:
        tries += 1
        try:
            write()
            return True
        except NotFoundError:
            return True
        except Exception as error:  # any storage failure: retried while there is time, then reported as False
            wait = pause * random.uniform(0.5, 1.0)
            if remaining_ms is None:
                out_of_time = tries >= TRIES_WITHOUT_DEADLINE
            else:
                out_of_time = remaining_ms() - wait * 1000 < ANSWER_MARGIN_MS
            if out_of_time:
                log.exception("%s failed %d time(s), the last with %s; given up for this invocation", what, tries,
                          type(error).__name__)
                return False
            log.warning("%s failed (%s); trying again", what, type(error).__name__)
            time.sleep(wait)
            pause = min(pause * 2, MAX_PAUSE_SECONDS)
