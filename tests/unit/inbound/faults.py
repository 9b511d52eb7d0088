"""Fault injection for the inbound path: every call to a store (tickets, directory, bucket, queue, ledger, counters)
is numbered, and one of them is killed (the invocation stops dead: a Lambda timeout or a crash, no handler runs)
or fails (the store raises, the invocation raises, Lambda retries), before or after its effect."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


class Killed(BaseException):
    """The invocation died here: nothing after this line runs, no `except Exception` sees it."""


class StoreFailed(ConnectionError):
    """A store call failed (throttling, a 5xx, a network error)."""


@dataclass
class FaultPlan:
    at: int | None = None  # the call number that goes wrong (1-based), None for a clean run
    kind: str = "kill"  # kill | fail
    after: bool = False  # after the call took effect, or before
    calls: list[str] = field(default_factory=list)

    def around(self, name: str, call):
        self.calls.append(name)
        hit = self.at is not None and len(self.calls) == self.at
        if hit and not self.after:
            self._strike(name)
        result = call()
        if hit and self.after:
            self._strike(name)
        return result

    def _strike(self, name: str) -> None:
        self.at = None  # one fault per plan: the retry runs clean
        if self.kind == "kill":
            raise Killed(name)
        raise StoreFailed(f"{name} failed")


class Faulty:
    """A store whose every method call goes through the plan."""

    def __init__(self, label: str, inner, plan: FaultPlan) -> None:
        self._label, self._inner, self._plan = label, inner, plan

    def __getattr__(self, name: str):
        target = getattr(self._inner, name)
        if not callable(target):
            return target
        return lambda *args, **kwargs: self._plan.around(f"{self._label}.{name}", lambda: target(*args, **kwargs))


def with_faults(world, plan: FaultPlan):
    """The world's stores and ports, each behind the plan (the world itself keeps the clean ones for checking)."""
    stores = dataclasses.replace(world.stores, **{name: Faulty(name, getattr(world.stores, name), plan)
                                                  for name in ("directory", "tickets", "blobs", "queue")})
    ports = dataclasses.replace(world.ports, ledger=Faulty("ledger", world.ports.ledger, plan),
                                counters=Faulty("counters", world.ports.counters, plan))
    return stores, ports


def throttled(operation: str, message: str = "The level of configured provisioned throughput was exceeded.",
              ) -> Exception:
    """What boto3 raises for a throttled DynamoDB call once its own retries ran out."""
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, operation)


def answer_lost(operation: str) -> Exception:
    """What boto3 raises when the call took effect and its answer never came back."""
    from botocore.exceptions import ReadTimeoutError

    return ReadTimeoutError(endpoint_url=f"https://dynamodb.invalid/{operation}")


@dataclass
class Throttle:
    """Per kind of call (a store's method, `tickets.create_ticket`): its first `first` calls are throttled before
    they reach the store (None: every call, for ever), and the next `lost` ones take effect and lose their answer.
    `only` limits it to some kinds."""

    first: int | None = 2
    lost: int = 0
    only: frozenset[str] | None = None
    calls: dict[str, int] = field(default_factory=dict)
    throttles: int = 0
    lost_answers: int = 0

    def around(self, name: str, call):
        n = self.calls[name] = self.calls.get(name, 0) + 1
        if self.only is not None and name not in self.only:
            return call()
        if self.first is None or n <= self.first:
            self.throttles += 1
            raise throttled(name)
        result = call()
        if n <= self.first + self.lost:
            self.lost_answers += 1
            raise answer_lost(name)
        return result
