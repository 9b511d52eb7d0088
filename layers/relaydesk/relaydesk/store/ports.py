"""The small interfaces domain code depends on, and `Stores`, the set of them a domain function is handed.
`memory` implements them for unit tests, the AWS modules for real; `relaydesk.wiring` builds the real ones."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple, Protocol

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress, VerificationStatus
from relaydesk.alerts.model import HoldAlert
from relaydesk.config import Settings
from relaydesk.notification import Notification
from relaydesk.outbound.suppression import Suppression
from relaydesk.tickets.model import (
    Agent,
    Comment,
    DeliveryAttempt,
    NotificationRecord,
    Ticket,
    TicketPage,
    TicketQuery,
    TicketStatus,
)

if TYPE_CHECKING:  # only the console's ports name them: no function but the tenant API's pays for their import
    from relaydesk.jobs.model import Job, JobStatus, JobStep
    from relaydesk.users import AccountUser, UserRole

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class DirectoryStore(Protocol):
    """Accounts and support addresses. Each account keeps its own record of an address; the address belongs to the
    first account that verifies it (its owner), and no other account can verify it after that."""

    def create_account(self, account: Account) -> None: ...  # ConflictError: subdomain taken
    def put_account(self, account: Account) -> None: ...
    def get_account(self, account_id: str) -> Account: ...  # NotFoundError
    def find_account_by_subdomain(self, subdomain: str) -> Account | None: ...
    def list_accounts(self) -> list[Account]: ...
    # ConflictError: the account has the address already, or (an address created verified, as a system address is)
    # another account owns it.
    def create_address(self, address: SupportAddress) -> None: ...
    def put_address(self, address: SupportAddress) -> None: ...
    # The account's own record; another account's is None, exactly like one that does not exist.
    def get_account_address(self, account_id: str, email: str) -> SupportAddress | None: ...
    def list_addresses(self, account_id: str) -> list[SupportAddress]: ...
    def delete_address(self, account_id: str, email: str) -> None: ...  # and its ownership, if it had it
    # Across accounts, for the uniqueness rule, verification mail and the operator only:
    def list_claims(self, email: str) -> list[SupportAddress]: ...  # every account's record of the address
    def owner_of(self, email: str) -> str | None: ...  # the account that verified it first
    def claim_address(self, account_id: str, email: str) -> None: ...  # ConflictError: another account owns it
    # The owner's record; with no owner, the one claim when only one account has claimed the address; else None.
    def get_address(self, email: str) -> SupportAddress | None: ...


def created_verified(address: SupportAddress) -> bool:
    """An address created already verified (a system address) is owned by its account from the start."""
    return address.forwarding.status is VerificationStatus.VERIFIED


def resolve_claims(claims: list[SupportAddress], owner: str | None) -> SupportAddress | None:
    """What an address resolves to without an account (`DirectoryStore.get_address`): its owner's record, or the
    only claim when no account has verified it and only one has claimed it."""
    if owner is not None:
        return next((claim for claim in claims if claim.account_id == owner), None)
    return claims[0] if len(claims) == 1 else None


class TicketStore(Protocol):
    """Every write fits DynamoDB's item limits or is refused before anything is written (ItemTooLargeError)."""

    # One transaction with its comments and notification records: all or nothing. ConflictError: it exists.
    def create_ticket(self, ticket: Ticket) -> None: ...
    def get_ticket(self, ticket_id: str) -> Ticket | None: ...
    def list_tickets(self, account_id: str) -> list[Ticket]: ...
    def delete_ticket(self, ticket_id: str) -> None: ...  # the ticket and every item of it; absent: nothing
    # One page of an account's tickets (a query keyed by the account, never a scan), newest update first.
    def list_ticket_page(self, account_id: str, query: TicketQuery) -> TicketPage: ...
    # Written once per comment id (a retry writes the same item); moves the ticket's updated_at forward to the
    # comment's time, never back.
    def add_comment(self, ticket_id: str, comment: Comment) -> None: ...
    # Attribute updates, each one write, safe beside any other writer of the ticket. NotFoundError: no such ticket.
    # False: the ticket's status was not one of `from_statuses`, nothing changed.
    def change_status(self, ticket_id: str, status: TicketStatus, at: datetime, *,
                      from_statuses: frozenset[TicketStatus]) -> bool: ...
    def assign(self, ticket_id: str, agent: Agent | None, at: datetime) -> None: ...
    # False: the ticket would have more than `limit` CCs (or followers); nothing changed.
    def add_ccs(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool: ...
    def remove_ccs(self, ticket_id: str, addresses: list[str], at: datetime) -> None: ...
    # A ticket's flags (multiple_forwarding, auto_generated:..., reply_from_non_participant) as a set: concurrent
    # adds all land. False: the ticket would have more than `limit` flags; nothing changed.
    def add_flags(self, ticket_id: str, flags: list[str], at: datetime, *, limit: int) -> bool: ...
    def add_followers(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool: ...
    def remove_followers(self, ticket_id: str, addresses: list[str], at: datetime) -> None: ...
    def put_notification(self, ticket_id: str, record: NotificationRecord) -> None: ...  # upsert
    def get_notification(self, ticket_id: str, notification_id: str) -> NotificationRecord | None: ...
    # One write, no read: the attempt goes last on the record (made from `new_record` if there is none yet), and the
    # record's status becomes the attempt's. The relay's per-message bookkeeping.
    def append_attempt(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt) -> None: ...
    def link_message_id(self, message_id: str, ticket_id: str) -> None: ...
    def find_ticket_by_message_id(self, message_id: str) -> str | None: ...


class BlobStore(Protocol):
    """Raw mail and attachments (S3)."""

    def get(self, key: str) -> bytes: ...  # NotFoundError
    # The object as a stream, `size` bytes at a time, never held whole; NotFoundError at the call, not mid-stream.
    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]: ...
    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None: ...
    def exists(self, key: str) -> bool: ...
    def url_for(self, key: str, expires_in: int = 7 * 24 * 3600) -> str: ...
    # An upload straight from a browser: S3's presigned POST for exactly `key`, `content_type` and at most
    # `max_bytes`, valid `expires_in` seconds. Returns {"url": ..., "fields": {...}}.
    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict: ...
    def describe(self, key: str) -> tuple[int, str]: ...  # (size, content type); NotFoundError


class SecretVersion(NamedTuple):
    version_id: str
    value: str
    stages: tuple[str, ...]


class SecretStore(Protocol):
    """Secrets Manager, by staging label. `get` always reads the store; caching is the caller's choice."""

    def get(self, secret_id: str, version_stage: str = CURRENT) -> SecretVersion: ...  # NotFoundError
    def create(self, name: str, value: str, tags: dict[str, str]) -> str: ...  # returns the ARN
    def put_version(self, secret_id: str, value: str, stages: list[str], token: str | None = None) -> str: ...
    def move_stage(self, secret_id: str, stage: str, to_version: str | None, from_version: str | None) -> None: ...
    def describe_stages(self, secret_id: str) -> dict[str, list[str]]: ...  # version id -> stages
    def schedule_deletion(self, secret_id: str, recovery_days: int = 7) -> None: ...
    def restore(self, secret_id: str) -> None: ...  # cancels a scheduled deletion
    def start_rotation(self, secret_id: str, token: str, rotation_function_arn: str) -> None: ...  # RotateSecret


class QueueCarry(NamedTuple):
    """What a notification carries from one SQS message to the next when the relay queues it again itself (waiting
    for its mailbox's sending limit), so a wait is never counted as a delivery attempt and no attempt is lost."""

    attempts: int = 0  # delivery attempts made on earlier SQS messages of this notification
    waiting_since: float | None = None  # wall-clock epoch seconds it first waited for the sending limit
    turn_at: float | None = None  # the turn the shaper gave it (the shaper's clock)


# The SQS message attributes a QueueCarry travels in (Number attributes; absent when zero or unset).
CARRY_ATTRIBUTES = {"attempts": "relaydesk_attempts", "waiting_since": "relaydesk_waiting_since",
                    "turn_at": "relaydesk_turn_at"}


class Requeued(NamedTuple):
    notification: Notification
    delay_seconds: int
    carry: QueueCarry = QueueCarry()


class NotificationQueue(Protocol):
    """The notifications queue. Every message's group is its account (SQS fair queues: one account's burst does
    not hold back another's)."""

    def send(self, notification: Notification, delay_seconds: int = 0) -> None: ...
    # The relay's own sends, each with what it carries, batched where SQS allows it; returns the notification ids
    # that could not be queued (they stay with their SQS message).
    def requeue(self, entries: list[Requeued]) -> set[str]: ...


class RawMailSender(Protocol):
    """The default outbound (SES SendRawEmail): the bytes as composed. Returns the provider's message id."""

    def send_raw(self, source: str, destinations: list[str], data: bytes) -> str: ...


class HeldNotifications(Protocol):
    """Notifications parked behind an address's hold (auth_failed, tls_failed) until what ends it."""

    def park(self, email: str, notification: Notification) -> None: ...  # idempotent per notification id
    def list(self, email: str) -> list[Notification]: ...
    # Up to `limit` of them whose id sorts after `after` (every one when None), by id: oldest first.
    def list_after(self, email: str, after: str | None, limit: int) -> list[Notification]: ...
    def remove(self, email: str, notification_id: str) -> None: ...


class StoredState(NamedTuple):
    body: str | None  # the state's JSON; None when nothing is stored yet
    version: int  # 0 when nothing is stored yet


class ShaperStates(Protocol):
    """The shaper's state, one item per mailbox, replaced whole by conditional writes (optimistic concurrency)."""

    def read(self, key: str) -> StoredState: ...
    # Stores `body` as version + 1 if the stored version is still `version` (0: none stored) and returns None;
    # otherwise stores nothing and returns what is stored now, so the caller retries without another read.
    def write(self, key: str, body: str, version: int) -> StoredState | None: ...


# The notifications queue keeps a message 4 days and the DLQ 14 (template.yaml): no copy of a notification can reach
# the relay later than that after its first attempt, except through `dlq redrive`, which checks the stored outcome
# and the ticket first.
ONCE_EXPIRY_SECONDS = (4 + 14) * 24 * 3600
# Longer than the queue's visibility timeout (370 s) plus the relay's timeout (60 s): see template.yaml.
ONCE_IN_PROGRESS_SECONDS = 430


@dataclass(frozen=True)
class Claim:
    """A notification held by one invocation (`token`), or the outcome an earlier one stored (`stored`)."""

    notification_id: str
    token: str = ""
    stored: dict | None = None  # a final outcome stored earlier: replay it, send nothing
    taken_over: bool = False  # an earlier claim ran out without an outcome


def new_claim_token() -> str:
    return secrets.token_hex(8)


class OnceGuard(Protocol):
    """Exactly once per notification id: a claim before anything is sent, the final outcome stored before the SQS
    message is released (`store/once_dynamodb.py` on the idempotency table; `memory.MemoryOnce` in unit tests).

    - `claim(id)`: the notification is this invocation's for the in-progress window, which is longer than the
      queue's visibility timeout (so a message that comes back after the timeout finds it still held). A stored
      final outcome comes back instead (`Claim.stored`): it is replayed and nothing is sent. Held by another
      invocation: AlreadyInProgress, with the end of its window. A claim whose window ran out without an outcome
      (its invocation was stopped) is taken over (`Claim.taken_over`): the relay then looks at the ticket's
      delivery record before it sends, because the stopped invocation may have recorded an outcome there.
    - `complete(claim, outcome)`: the final outcome (delivered, failed), kept for the expiry. Writing it again with
      the same claim succeeds, so a write whose response was lost is simply retried. ClaimLost: taken over.
    - `release(claim)`: a deferral or a hold stores nothing; the claim is dropped so the next attempt may send.
    - `stored(id)`: the final outcome, if one was stored (`relaydesk dlq redrive` asks).
    """

    def claim(self, notification_id: str) -> Claim: ...
    def complete(self, claim: Claim, outcome: dict) -> None: ...
    def release(self, claim: Claim) -> None: ...
    def stored(self, notification_id: str) -> dict | None: ...
    # Several at once, in one write: every id claimed when none of them has a record (never claimed, or expired),
    # else None and nothing claimed (the caller claims them one by one, which says why for each).
    def claim_fresh(self, notification_ids: list[str]) -> dict[str, Claim] | None: ...
    def release_all(self, claims: list[Claim]) -> None: ...  # unused claims dropped together


class OutcomeWrites(Protocol):
    """A final outcome in the once guard and its attempt on the ticket in one write: both land or neither
    (`store/outcome_writes.py`, one TransactWriteItems). ClaimLost: the claim was taken over, nothing was written.
    Optional: without it the relay makes the two writes one after the other (`OnceGuard.complete`, then
    `TicketStore.append_attempt`)."""

    def complete_and_record(self, claim: Claim, outcome: dict, ticket_id: str, record: NotificationRecord,
                            attempt: DeliveryAttempt) -> None: ...


class RetryDelay(Protocol):
    """When a deferred SQS record is received again (its visibility timeout)."""

    def delay(self, receipt_handle: str, seconds: int) -> bool: ...  # False: the handle is no longer in flight


class Session(Protocol):
    """An open connection as the pool sees it (`outbound/smtp.py`'s `SmtpSubmission`)."""

    @property
    def connected(self) -> bool: ...

    async def close(self) -> None: ...


class PoolKey(NamedTuple):
    """A connection is reused only for the same smarthost, login and secret version it authenticated with."""

    secret_id: str
    host: str
    port: int
    username: str
    version_id: str


class SessionPool(Protocol):
    """Authenticated connections kept between invocations of a warm container (`outbound/pool.py`)."""

    def has(self, key: PoolKey) -> bool: ...  # an idle connection for `key` is waiting (it may turn out closed)
    def take(self, key: PoolKey) -> Session | None: ...  # a live one, or None; stale ones of the secret are closed
    def give(self, key: PoolKey, session: Session) -> None: ...  # kept for the next invocation while still open
    def forget(self, secret_id: str) -> None: ...  # after a refusal: nothing of this secret is reused
    def close(self) -> None: ...


class JobStore(Protocol):
    """Jobs of an account (`relaydesk.jobs`): each step and progress line is one write, so a poller sees it at once.
    Another account's job is None, exactly like one that does not exist."""

    def create(self, job: Job) -> None: ...
    def get(self, account_id: str, job_id: str) -> Job | None: ...
    def add_step(self, account_id: str, job_id: str, step: JobStep) -> None: ...  # dropped past MAX_STEPS
    def add_progress(self, account_id: str, job_id: str, line: str) -> None: ...  # dropped past MAX_PROGRESS_LINES
    def finish(self, account_id: str, job_id: str, status: JobStatus, *, summary: str | None = None,
               fix: str | None = None) -> None: ...


class JobLauncher(Protocol):
    """Starts a job's runner without waiting for it (Lambda's asynchronous invocation of the jobs function)."""

    def launch(self, account_id: str, job_id: str) -> None: ...


class UserDirectory(Protocol):
    """The user pool's users of one account (`custom:account_id`) and their role (group)."""

    def list_users(self, account_id: str) -> list[AccountUser]: ...
    # The pool sends the invitation (a temporary password to change at first sign-in). ConflictError: the email
    # already signs in to Relaydesk (in this account or another; which one is never said).
    def invite(self, account_id: str, email: str, role: UserRole) -> AccountUser: ...
    # The user with this address as a ticket's assignee: only an enabled agent or admin of this account, else None
    # (a user of another account, a disabled one or one in no group is nobody here).
    def agent(self, account_id: str, email: str) -> Agent | None: ...


class DeadLetter(NamedTuple):
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int  # receives in the DLQ (SQS's redrive keeps the count it had in the queue)
    reason: str = ""  # the relay's reason, when the relay moved it (SQS's own redrive leaves none)
    attempts: int = 0  # receives in the queue when the relay moved it


class NotificationDeadLetters(Protocol):
    """The notifications DLQ: what waits there, sending it back to the notifications queue, and the relay's own
    move of a notification out of attempts (its reason beside it)."""

    def peek(self) -> list[DeadLetter]: ...  # everything, left there
    def take(self, visibility: int = 60) -> list[DeadLetter]: ...  # a batch, hidden until redriven or released
    def redrive(self, letter: DeadLetter, notification_id: str | None) -> None: ...  # to the queue, out of the DLQ
    def release(self, letter: DeadLetter) -> None: ...  # left in the DLQ, visible again now
    def discard(self, letter: DeadLetter) -> None: ...  # out of the DLQ for good (found delivered after all)
    # The body unchanged into the DLQ, with the reason and the attempts it had.
    def bury(self, body: str, *, reason: str, notification_id: str | None, receive_count: int) -> None: ...


class HoldAlertLedger(Protocol):
    """Per held address, the alerts its account's admins were sent. Every write is a compare-and-set on `version`
    (None: the entry must not exist), so two runs never send the same alert; False means another run got there."""

    def get(self, email: str) -> HoldAlert | None: ...
    def list(self) -> list[HoldAlert]: ...  # every address with an open alert
    def put_if(self, alert: HoldAlert, expected_version: int | None) -> bool: ...  # stores alert.version + 1
    def delete_if(self, email: str, expected_version: int) -> bool: ...


class SuppressionList(Protocol):
    """Recipients an account no longer sends to (SES bounces and complaints), keyed by account and address."""

    def suppressed(self, account_id: str, recipients: list[str]) -> dict[str, Suppression]: ...  # lower-cased keys
    # The same for a whole batch (account id -> recipients), in as few reads as the store allows: by account.
    def suppressed_many(self, wanted: dict[str, list[str]]) -> dict[str, dict[str, Suppression]]: ...
    def add(self, suppression: Suppression) -> None: ...  # keeps the first reason and time of an existing entry
    def list(self, account_id: str) -> list[Suppression]: ...
    def remove(self, account_id: str, recipient: str) -> bool: ...  # False: it was not suppressed


@dataclass(frozen=True)
class Stores:
    directory: DirectoryStore
    tickets: TicketStore
    blobs: BlobStore
    secrets: SecretStore
    queue: NotificationQueue
    settings: Settings
    # The relay's: the default outbound (SES) and notifications held behind an address's hold.
    mailer: RawMailSender | None = None
    held: HeldNotifications | None = None
    # The API's: the other environment's directory (sandbox <-> production), labelled, for the uniqueness rule.
    peers: tuple[tuple[str, DirectoryStore], ...] = ()
    # The admin console's: its jobs and what starts them, the account's users (the pool), the notifications DLQ.
    jobs: JobStore | None = None
    launcher: JobLauncher | None = None
    users: UserDirectory | None = None
    dead_letters: NotificationDeadLetters | None = None
    # Operations: alerts to an account's admins about a held address, and recipients SES reported as undeliverable.
    hold_alerts: HoldAlertLedger | None = None
    suppressions: SuppressionList | None = None
