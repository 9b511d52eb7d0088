"""The fault classes of `make chaos`: each runs on its own tenant with its own faults, one after another.

Rates are per call (AWS), per command (SMTP) or per invocation (kills, duplicate batches). They are high on
purpose: each class must make every path it names happen many times in a few hundred messages.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaos.faults import (
    DYNAMODB_THROTTLED,
    S3_INTERNAL,
    S3_SLOW_DOWN,
    SECRETS_THROTTLED,
    SES_PAUSED,
    SES_THROTTLED,
    TRANSACTION_CANCELLED,
    TRANSACTION_CONFLICT,
    Rule,
)
from chaos.smtp_faults import SmtpFault
from chaos.workers import KillPlan

WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


def random_kill(chance: float, *, max_call: int = 16, max_seconds: float = 0.8,
                in_window: float = 0.0) -> Callable[[random.Random], KillPlan | None]:
    """With `chance` per invocation: SIGKILL before or after one of its AWS calls, or after some time (wherever it
    is then: an SMTP exchange, a pause between retries). With `in_window` of those, right before the relay stores
    an accepted message's outcome: inside the documented window, on purpose."""

    def plan(rng: random.Random) -> KillPlan | None:
        if rng.random() >= chance:
            return None
        draw = rng.random()
        if draw < in_window:
            return KillPlan(at_predicate="completed_write", phase="before")
        if draw < 0.7:
            return KillPlan(at_call=rng.randint(1, max_call), phase=rng.choice(("before", "after")))
        return KillPlan(after_seconds=rng.uniform(0.0, max_seconds))

    return plan


def no_kill(rng: random.Random) -> KillPlan | None:
    return None


@dataclass
class FaultClass:
    name: str
    notifications: int = 50  # agents' answers enqueued directly (plus one acknowledgement per inbound mail)
    mails: int = 30
    rules: Callable[[Any], list[Rule]] = lambda settings: []
    smtp: list[SmtpFault] = field(default_factory=list)
    relay_kill: Callable[[random.Random], KillPlan | None] = no_kill
    inbound_kill: Callable[[random.Random], KillPlan | None] = no_kill
    duplicate_batches: float = 0.0
    ses_share: float = 0.2  # of the direct notifications, through the default outbound (SES)
    attachment_share: float = 0.1
    two_recipients_share: float = 0.0
    unreachable_share: float = 0.0  # of the direct notifications, to a mailbox the smarthost answers 451 throughout


def _table(settings: Any, name: str) -> frozenset[str]:
    return frozenset({getattr(settings, name)})


def classes() -> list[FaultClass]:
    return [
        FaultClass("none"),
        FaultClass("until_the_dlq", unreachable_share=0.3,
                   smtp=[SmtpFault("DATA", 0.1, reply="451 4.3.0 Temporary local problem")]),
        FaultClass("smtp_drop_after_data", smtp=[SmtpFault("DATA", 0.25, drop=True)]),
        FaultClass("smtp_421", smtp=[SmtpFault("MAIL", 0.1, reply="421 4.3.2 Service shutting down"),
                                     SmtpFault("RCPT", 0.05, reply="421 4.4.2 Timeout, closing"),
                                     SmtpFault("DATA", 0.1, reply="421 4.4.2 Connection dropped")]),
        FaultClass("smtp_451", smtp=[SmtpFault("DATA", 0.3, reply="451 4.3.0 Temporary local problem"),
                                     SmtpFault("MAIL", 0.05, reply="451 4.7.1 Greylisted, try again")]),
        FaultClass("smtp_452", two_recipients_share=0.5,
                   smtp=[SmtpFault("RCPT", 0.25, reply="452 4.2.2 Mailbox full")]),
        FaultClass("smtp_stall", smtp=[SmtpFault("CONNECT", 0.04, stall=1.6), SmtpFault("EHLO", 0.04, stall=1.6),
                                       SmtpFault("MAIL", 0.05, stall=1.6), SmtpFault("RCPT", 0.05, stall=0.8),
                                       SmtpFault("DATA", 0.12, stall=1.6), SmtpFault("DATA", 0.1, stall=0.3)]),
        FaultClass("sigkill", relay_kill=random_kill(0.35, in_window=0.35),
                   inbound_kill=random_kill(0.25, max_call=20)),
        FaultClass("same_batch_twice", duplicate_batches=0.6),
        FaultClass("throttle_idempotency_table", rules=lambda s: [
            Rule("dynamodb", DYNAMODB_THROTTLED, tables=_table(s, "idempotency_table"), chance=0.25),
            Rule("dynamodb", tables=_table(s, "idempotency_table"), operations=WRITES, chance=0.05,
                 lost_response=True)]),
        FaultClass("throttle_tickets_table", rules=lambda s: [
            Rule("dynamodb", DYNAMODB_THROTTLED, tables=_table(s, "tickets_table"), chance=0.15),
            Rule("dynamodb", tables=_table(s, "tickets_table"), operations=WRITES, chance=0.03,
                 lost_response=True)]),
        FaultClass("throttle_directory_table", rules=lambda s: [
            Rule("dynamodb", DYNAMODB_THROTTLED, tables=_table(s, "directory_table"), chance=0.2)]),
        FaultClass("throttle_counters_table", rules=lambda s: [
            Rule("dynamodb", DYNAMODB_THROTTLED, tables=_table(s, "counters_table"), chance=0.3)]),
        FaultClass("throttle_secrets_manager", rules=lambda s: [
            Rule("secrets-manager", SECRETS_THROTTLED, chance=0.3)]),
        FaultClass("throttle_ses", ses_share=0.7, rules=lambda s: [
            Rule("ses", SES_THROTTLED, operations=frozenset({"SendRawEmail"}), chance=0.25),
            Rule("ses", SES_PAUSED, operations=frozenset({"SendRawEmail"}), chance=0.1)]),
        FaultClass("s3_5xx", attachment_share=0.6, rules=lambda s: [
            Rule("s3", S3_SLOW_DOWN, chance=0.15), Rule("s3", S3_INTERNAL, chance=0.1)]),
        FaultClass("transaction_conflicts", rules=lambda s: [
            Rule("dynamodb", TRANSACTION_CANCELLED, operations=frozenset({"TransactWriteItems"}), chance=0.3),
            Rule("dynamodb", TRANSACTION_CONFLICT, operations=frozenset({"PutItem", "UpdateItem"}),
                 tables=_table(s, "tickets_table"), chance=0.05)]),
        FaultClass("everything_at_once", duplicate_batches=0.15, two_recipients_share=0.2, attachment_share=0.2,
                   relay_kill=random_kill(0.1), inbound_kill=random_kill(0.08, max_call=20),
                   smtp=[SmtpFault("DATA", 0.06, drop=True), SmtpFault("DATA", 0.06, reply="451 4.3.0 Try later"),
                         SmtpFault("RCPT", 0.05, reply="452 4.2.2 Mailbox full"),
                         SmtpFault("MAIL", 0.03, reply="421 4.3.2 Shutting down"),
                         SmtpFault("DATA", 0.04, stall=1.6)],
                   rules=lambda s: [
                       Rule("dynamodb", DYNAMODB_THROTTLED, chance=0.05),
                       Rule("dynamodb", operations=WRITES, chance=0.01, lost_response=True),
                       Rule("secrets-manager", SECRETS_THROTTLED, chance=0.05),
                       Rule("ses", SES_THROTTLED, operations=frozenset({"SendRawEmail"}), chance=0.05),
                       Rule("s3", S3_SLOW_DOWN, chance=0.05),
                       Rule("dynamodb", TRANSACTION_CANCELLED, operations=frozenset({"TransactWriteItems"}),
                            chance=0.05)]),
    ]
