"""In-memory fakes of every port in `store/` (`ports`, `inbound_ports`), for unit tests and the benchmarks. Each
behaves as its adapter does (tests/integration/test_store_contract.py runs the same checks on both) and hands out
deep copies, so a test never shares state with the store by accident."""

from __future__ import annotations

import copy
import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.alerts.model import HoldAlert
from relaydesk.errors import AlreadyInProgress, ClaimLost, ConflictError, NotFoundError
from relaydesk.jobs.model import MAX_PROGRESS_LINES, MAX_STEPS, Job, JobStatus, JobStep, bounded
from relaydesk.notification import Notification
from relaydesk.outbound.suppression import Suppression
from relaydesk.store import ticket_items
from relaydesk.store.item_budget import check_item, check_key, check_transaction
from relaydesk.store.ports import (
    CURRENT,
    ONCE_IN_PROGRESS_SECONDS,
    PENDING,
    PREVIOUS,
    Claim,
    DeadLetter,
    QueueCarry,
    Requeued,
    SecretVersion,
    StoredState,
    created_verified,
    new_claim_token,
    resolve_claims,
)
from relaydesk.tickets.model import (
    UNASSIGNED,
    Agent,
    Comment,
    DeliveryAttempt,
    NotificationRecord,
    Ticket,
    TicketPage,
    TicketPosition,
    TicketQuery,
    TicketStatus,
    agent_name,
    sort_stamp,
)
from relaydesk.users import AccountUser, UserRole


class MemoryDirectory:
    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.addresses: dict[tuple[str, str], SupportAddress] = {}  # (email, account id) -> that account's record
        self.owners: dict[str, str] = {}  # email -> the account that verified it first

    def create_account(self, account: Account) -> None:
        if self.find_account_by_subdomain(account.subdomain) or account.account_id in self.accounts:
            raise ConflictError(f"subdomain {account.subdomain!r} is taken")
        self.accounts[account.account_id] = account.model_copy(deep=True)

    def put_account(self, account: Account) -> None:
        self.accounts[account.account_id] = account.model_copy(deep=True)

    def get_account(self, account_id: str) -> Account:
        try:
            return self.accounts[account_id].model_copy(deep=True)
        except KeyError as error:
            raise NotFoundError(f"no account {account_id!r}") from error

    def find_account_by_subdomain(self, subdomain: str) -> Account | None:
        found = next((a for a in self.accounts.values() if a.subdomain == subdomain.lower()), None)
        return found.model_copy(deep=True) if found else None

    def list_accounts(self) -> list[Account]:
        return [a.model_copy(deep=True) for a in self.accounts.values()]

    def create_address(self, address: SupportAddress) -> None:
        key = (address.email, address.account_id)
        if key in self.addresses:
            raise ConflictError(f"{address.email} is already a support address of this account")
        if created_verified(address):
            self.claim_address(address.account_id, address.email)
        self.addresses[key] = address.model_copy(deep=True)

    def put_address(self, address: SupportAddress) -> None:
        self.addresses[(address.email, address.account_id)] = address.model_copy(deep=True)

    def get_account_address(self, account_id: str, email: str) -> SupportAddress | None:
        found = self.addresses.get((email.lower(), account_id))
        return found.model_copy(deep=True) if found else None

    def list_addresses(self, account_id: str) -> list[SupportAddress]:
        return [a.model_copy(deep=True) for a in self.addresses.values() if a.account_id == account_id]

    def delete_address(self, account_id: str, email: str) -> None:
        self.addresses.pop((email.lower(), account_id), None)
        if self.owners.get(email.lower()) == account_id:
            del self.owners[email.lower()]

    def list_claims(self, email: str) -> list[SupportAddress]:
        return [a.model_copy(deep=True) for (claimed, _), a in self.addresses.items() if claimed == email.lower()]

    def owner_of(self, email: str) -> str | None:
        return self.owners.get(email.lower())

    def claim_address(self, account_id: str, email: str) -> None:
        owner = self.owners.setdefault(email.lower(), account_id)
        if owner != account_id:
            raise ConflictError(f"{email} is owned by another account")

    def get_address(self, email: str) -> SupportAddress | None:
        return resolve_claims(self.list_claims(email), self.owner_of(email))


def _assigned_as_asked(ticket: Ticket, assignee: str | None) -> bool:
    if assignee is None:
        return True
    if assignee == UNASSIGNED:
        return ticket.assignee is None
    return ticket.assignee is not None and (ticket.assignee.email or "").lower() == assignee


class MemoryTickets:
    """Each method is one atomic step, as its DynamoDB write is (a lock stands for the item-level atomicity); a
    ticket is created with its comments all or nothing, as the adapter's transaction; every item is checked against
    DynamoDB's limits (the adapter's own items, built by `ticket_items`), so unit tests meet them too."""

    def __init__(self) -> None:
        self.tickets: dict[str, Ticket] = {}
        self.message_ids: dict[str, str] = {}
        self._lock = threading.RLock()

    def create_ticket(self, ticket: Ticket) -> None:
        check_transaction(ticket_items.ticket_with_children(ticket))
        with self._lock:
            if ticket.ticket_id in self.tickets:
                raise ConflictError(f"ticket {ticket.ticket_id} exists")
            self.tickets[ticket.ticket_id] = ticket.model_copy(deep=True)

    def get_ticket(self, ticket_id: str) -> Ticket | None:
        with self._lock:
            found = self.tickets.get(ticket_id)
            return found.model_copy(deep=True) if found else None

    def list_tickets(self, account_id: str) -> list[Ticket]:
        with self._lock:
            return [t.model_copy(deep=True) for t in self.tickets.values() if t.account_id == account_id]

    def list_ticket_page(self, account_id: str, query: TicketQuery) -> TicketPage:
        with self._lock:
            ordered = sorted((t for t in self.tickets.values() if t.account_id == account_id),
                             key=lambda t: (sort_stamp(t.updated_at), t.ticket_id), reverse=True)
        since = sort_stamp(query.updated_since) if query.updated_since else ""
        after = (query.after.updated, query.after.ticket_id) if query.after else None
        found: list[Ticket] = []
        for ticket in ordered:
            position = (sort_stamp(ticket.updated_at), ticket.ticket_id)
            if (after and position >= after) or position[0] < since:
                continue
            if (query.status and ticket.status is not query.status) or \
                    (query.requester and ticket.requester != query.requester) or \
                    not _assigned_as_asked(ticket, query.assignee):
                continue
            if len(found) == query.limit:  # one more exists: the page ends at the last one taken
                last = found[-1]
                return TicketPage(tickets=found, next=TicketPosition(updated=sort_stamp(last.updated_at),
                                                                     ticket_id=last.ticket_id))
            found.append(ticket.model_copy(deep=True, update={"comments": [], "notifications": []}))
        return TicketPage(tickets=found)

    def delete_ticket(self, ticket_id: str) -> None:
        self.tickets.pop(ticket_id, None)

    def add_comment(self, ticket_id: str, comment: Comment) -> None:
        check_item(ticket_items.comment_item(ticket_id, comment))
        with self._lock:
            ticket = self._get(ticket_id)
            if not any(c.comment_id == comment.comment_id for c in ticket.comments):
                ticket.comments.append(comment.model_copy(deep=True))
            ticket.updated_at = max(ticket.updated_at, comment.created_at)

    def change_status(self, ticket_id: str, status: TicketStatus, at: datetime, *,
                      from_statuses: frozenset[TicketStatus]) -> bool:
        with self._lock:
            ticket = self._get(ticket_id)
            if ticket.status not in from_statuses:
                return False
            ticket.status, ticket.updated_at = status, at
            return True

    def assign(self, ticket_id: str, agent: Agent | None, at: datetime) -> None:
        with self._lock:
            ticket = self._get(ticket_id)
            ticket.assignee, ticket.updated_at = (agent.model_copy() if agent else None), at

    def add_ccs(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool:
        return self._add(ticket_id, "ccs", addresses, at, limit)

    def remove_ccs(self, ticket_id: str, addresses: list[str], at: datetime) -> None:
        self._remove(ticket_id, "ccs", addresses, at)

    def add_flags(self, ticket_id: str, flags: list[str], at: datetime, *, limit: int) -> bool:
        return self._add(ticket_id, "flags", flags, at, limit)

    def add_followers(self, ticket_id: str, addresses: list[str], at: datetime, *, limit: int) -> bool:
        return self._add(ticket_id, "followers", addresses, at, limit)

    def remove_followers(self, ticket_id: str, addresses: list[str], at: datetime) -> None:
        self._remove(ticket_id, "followers", addresses, at)

    def _add(self, ticket_id: str, role: str, addresses: list[str], at: datetime, limit: int) -> bool:
        with self._lock:
            ticket = self._get(ticket_id)
            current: list[str] = getattr(ticket, role)
            merged = sorted({*current, *addresses})
            if len(merged) > limit:
                return False
            setattr(ticket, role, merged)
            ticket.updated_at = at
            return True

    def _remove(self, ticket_id: str, role: str, addresses: list[str], at: datetime) -> None:
        with self._lock:
            ticket = self._get(ticket_id)
            setattr(ticket, role, sorted(set(getattr(ticket, role)) - set(addresses)))
            ticket.updated_at = at

    def put_notification(self, ticket_id: str, record: NotificationRecord) -> None:
        check_item(ticket_items.notification_item(ticket_id, record))
        records = self._get(ticket_id).notifications
        for index, existing in enumerate(records):
            if existing.notification_id == record.notification_id:
                records[index] = record.model_copy(deep=True)
                return
        records.append(record.model_copy(deep=True))

    def append_attempt(self, ticket_id: str, new_record: NotificationRecord, attempt: DeliveryAttempt) -> None:
        records = self._get(ticket_id).notifications
        record = next((r for r in records if r.notification_id == new_record.notification_id), None)
        if record is None:
            record = new_record.model_copy(deep=True)
            records.append(record)
        record.attempts.append(attempt.model_copy(deep=True))
        record.status = attempt.status

    def get_notification(self, ticket_id: str, notification_id: str) -> NotificationRecord | None:
        records = self.tickets[ticket_id].notifications if ticket_id in self.tickets else []
        found = next((r for r in records if r.notification_id == notification_id), None)
        return found.model_copy(deep=True) if found else None

    def link_message_id(self, message_id: str, ticket_id: str) -> None:
        check_item(ticket_items.message_link_item(message_id, ticket_id))
        self.message_ids[message_id.strip().lower()] = ticket_id

    def find_ticket_by_message_id(self, message_id: str) -> str | None:
        return self.message_ids.get(message_id.strip().lower())

    def _get(self, ticket_id: str) -> Ticket:
        try:
            return self.tickets[ticket_id]
        except KeyError as error:
            raise NotFoundError(f"no ticket {ticket_id!r}") from error


class MemoryBlobs:
    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}
        self.posts: dict[str, tuple[str, int]] = {}  # presigned POSTs handed out: key -> (type, max bytes)

    def get(self, key: str) -> bytes:
        try:
            return self.objects[key][0]
        except KeyError as error:
            raise NotFoundError(f"no object {key!r}") from error

    def chunks(self, key: str, size: int = 1 << 16) -> Iterator[bytes]:
        data = self.get(key)  # NotFoundError now, as S3's GetObject; each chunk a copy, as a stream's reads are
        return (data[start:start + size] for start in range(0, len(data), size))

    def put(self, key: str, data: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = (bytes(data), content_type)

    def exists(self, key: str) -> bool:
        return key in self.objects

    def url_for(self, key: str, expires_in: int = 7 * 24 * 3600) -> str:
        return f"https://attachments.invalid/{key}?expires_in={expires_in}"

    def presigned_post(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> dict:
        self.posts[key] = (content_type, max_bytes)
        return {"url": "https://uploads.invalid/", "fields": {"key": key, "Content-Type": content_type,
                                                              "policy": f"max={max_bytes};expires_in={expires_in}"}}

    def upload(self, key: str, data: bytes, content_type: str) -> None:
        """What S3 does with a browser's POST: refused unless it keeps the policy `presigned_post` gave."""
        allowed_type, max_bytes = self.posts[key]
        if content_type != allowed_type or len(data) > max_bytes:
            raise PermissionError("the upload breaks its POST policy")
        self.put(key, data, content_type)

    def describe(self, key: str) -> tuple[int, str]:
        data, content_type = self.objects.get(key) or (None, "")
        if data is None:
            raise NotFoundError(f"no object {key!r}")
        return len(data), content_type


class MemorySecrets:
    """Staging labels as Secrets Manager keeps them: each label on exactly one version."""

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, str]] = defaultdict(dict)  # secret -> version -> value
        self.stages: dict[str, dict[str, str]] = defaultdict(dict)  # secret -> stage -> version
        self.deleted: set[str] = set()
        self.reads = 0
        self.rotations: list[tuple[str, str, str]] = []  # RotateSecret calls: secret, token, function
        self._counter = itertools.count(1)

    def get(self, secret_id: str, version_stage: str = CURRENT) -> SecretVersion:
        self.reads += 1
        version = self.stages.get(secret_id, {}).get(version_stage)
        if version is None or secret_id in self.deleted:
            raise NotFoundError(f"secret has no {version_stage} version")
        stages = tuple(s for s, v in self.stages[secret_id].items() if v == version)
        return SecretVersion(version, self.versions[secret_id][version], stages)

    def create(self, name: str, value: str, tags: dict[str, str]) -> str:
        if name in self.versions:
            raise ConflictError("secret exists")
        self.put_version(name, value, [CURRENT])
        return name

    def put_version(self, secret_id: str, value: str, stages: list[str], token: str | None = None) -> str:
        version = token or f"v{next(self._counter)}"
        self.versions[secret_id][version] = value
        for stage in stages:
            if stage == CURRENT and CURRENT in self.stages[secret_id]:
                self.stages[secret_id][PREVIOUS] = self.stages[secret_id][CURRENT]
            self.stages[secret_id][stage] = version
        return version

    def move_stage(self, secret_id: str, stage: str, to_version: str | None, from_version: str | None) -> None:
        if stage == CURRENT and from_version is not None:
            self.stages[secret_id][PREVIOUS] = from_version
        if to_version is None:
            self.stages[secret_id].pop(stage, None)
        else:
            self.stages[secret_id][stage] = to_version

    def describe_stages(self, secret_id: str) -> dict[str, list[str]]:
        result: dict[str, list[str]] = defaultdict(list)
        for stage, version in self.stages.get(secret_id, {}).items():
            result[version].append(stage)
        return dict(result)

    def schedule_deletion(self, secret_id: str, recovery_days: int = 7) -> None:
        self.deleted.add(secret_id)

    def restore(self, secret_id: str) -> None:
        self.deleted.discard(secret_id)

    def start_rotation(self, secret_id: str, token: str, rotation_function_arn: str) -> None:
        self.rotations.append((secret_id, token, rotation_function_arn))

    def pending_value(self, secret_id: str) -> str | None:
        version = self.stages.get(secret_id, {}).get(PENDING)
        return self.versions[secret_id][version] if version else None


class MemoryQueue:
    def __init__(self) -> None:
        self.sent: list[tuple[Notification, int]] = []
        self.carried: dict[str, QueueCarry] = {}  # notification id -> what its last requeue carried
        self.refuse: set[str] = set()  # notification ids whose requeue fails (SQS refusing an entry)

    def send(self, notification: Notification, delay_seconds: int = 0) -> None:
        self.sent.append((notification.model_copy(deep=True), delay_seconds))

    def requeue(self, entries: list[Requeued]) -> set[str]:
        failed = set()
        for entry in entries:
            if entry.notification.notification_id in self.refuse:
                failed.add(entry.notification.notification_id)
                continue
            self.send(entry.notification, entry.delay_seconds)
            self.carried[entry.notification.notification_id] = entry.carry
        return failed



class MemoryOutbox:
    """The default outbound as an outbox that records what would have been sent (Django's locmem backend)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[str], bytes]] = []

    def send_raw(self, source: str, destinations: list[str], data: bytes) -> str:
        self.sent.append((source, list(destinations), bytes(data)))
        return f"memory-{len(self.sent)}"


class MemoryRetryDelay:
    """The queue's visibility timeouts: `calls` records each (receipt handle, seconds); a handle that is not
    `in_flight` (when that set is given) answers False, as SQS does for a record already visible again."""

    def __init__(self, in_flight: set[str] | None = None) -> None:
        self.calls: list[tuple[str, int]] = []
        self.in_flight = in_flight

    def delay(self, receipt_handle: str, seconds: int) -> bool:
        if self.in_flight is not None and receipt_handle not in self.in_flight:
            return False
        self.calls.append((receipt_handle, seconds))
        return True


class MemoryHeld:
    def __init__(self) -> None:
        self.parked: dict[str, dict[str, Notification]] = defaultdict(dict)

    def park(self, email: str, notification: Notification) -> None:
        self.parked[email.lower()][notification.notification_id] = notification.model_copy(deep=True)

    def list(self, email: str) -> list[Notification]:
        return [n.model_copy(deep=True) for n in self.parked.get(email.lower(), {}).values()]

    def list_after(self, email: str, after: str | None, limit: int) -> list[Notification]:
        parked = self.parked.get(email.lower(), {})
        later = sorted(i for i in parked if after is None or i > after)[:limit]
        return [parked[i].model_copy(deep=True) for i in later]

    def remove(self, email: str, notification_id: str) -> None:
        self.parked.get(email.lower(), {}).pop(notification_id, None)


@dataclass
class _Held:
    token: str
    until: float
    outcome: dict | None = None


class MemoryOnce:
    """The once guard with the DynamoDB adapter's rules (`ports.OnceGuard`); `now` lets a test move time on."""

    def __init__(self, *, in_progress_seconds: float = ONCE_IN_PROGRESS_SECONDS,
                 now: Callable[[], float] = time.time) -> None:
        self.in_progress_seconds = in_progress_seconds
        self.now = now
        self._items: dict[str, _Held] = {}
        self._lock = threading.Lock()

    @property
    def completed(self) -> dict[str, dict]:
        with self._lock:
            return {key: copy.deepcopy(held.outcome) for key, held in self._items.items() if held.outcome is not None}

    def claim(self, notification_id: str) -> Claim:
        with self._lock:
            held = self._items.get(notification_id)
            now = self.now()
            if held is not None and held.outcome is not None:
                return Claim(notification_id, stored=copy.deepcopy(held.outcome))
            if held is not None and held.until > now:
                raise AlreadyInProgress(notification_id, held.until - now)
            token = new_claim_token()
            self._items[notification_id] = _Held(token, now + self.in_progress_seconds)
            return Claim(notification_id, token, taken_over=held is not None)

    def complete(self, claim: Claim, outcome: dict) -> None:
        with self._lock:
            held = self._items.get(claim.notification_id)
            if held is None or held.token != claim.token:
                raise ClaimLost(claim.notification_id)
            held.outcome = copy.deepcopy(outcome)

    def release(self, claim: Claim) -> None:
        with self._lock:
            held = self._items.get(claim.notification_id)
            if held is not None and held.token == claim.token and held.outcome is None:
                del self._items[claim.notification_id]

    def stored(self, notification_id: str) -> dict | None:
        with self._lock:
            held = self._items.get(notification_id)
            return copy.deepcopy(held.outcome) if held is not None else None

    def claim_fresh(self, notification_ids: list[str]) -> dict[str, Claim] | None:
        with self._lock:
            if any(notification_id in self._items for notification_id in notification_ids):
                return None
            until = self.now() + self.in_progress_seconds
            claims = {notification_id: Claim(notification_id, new_claim_token())
                      for notification_id in notification_ids}
            for notification_id, claim in claims.items():
                self._items[notification_id] = _Held(claim.token, until)
            return claims

    def release_all(self, claims: list[Claim]) -> None:
        for claim in claims:
            self.release(claim)


class MemoryLedger:
    def __init__(self) -> None:
        self.records: dict[str, tuple[str, bool]] = {}
        self._lock = threading.Lock()

    def get(self, ses_message_id: str) -> tuple[str, bool] | None:
        return self.records.get(ses_message_id)

    def claim(self, ses_message_id: str, decision_json: str) -> str:
        check_item(ticket_items.ledger_item(ses_message_id, decision_json))  # the same limit as the DynamoDB ledger
        with self._lock:  # the conditional put: the first decision wins
            return self.records.setdefault(ses_message_id, (decision_json, False))[0]

    def complete(self, ses_message_id: str) -> None:
        decision, _ = self.records[ses_message_id]
        self.records[ses_message_id] = (decision, True)


class MemoryCounters:
    """The same semantics as the DynamoDB counters: one count per (key, event id), the value it got remembered."""

    def __init__(self) -> None:
        self.values: dict[str, int] = {}
        self.expiry: dict[str, int] = {}
        self.counted: dict[tuple[str, str], int] = {}  # (key, event id) -> the value that event got
        self._lock = threading.Lock()

    def count_once(self, key: str, event_id: str, expires_at: int) -> int:
        check_key({"pk": f"counted#{key}#{event_id}"})  # the DynamoDB counters' marker key
        with self._lock:  # the transaction: marker and counter change together or not at all
            if (key, event_id) in self.counted:
                return self.counted[key, event_id]
            self.values[key] = self.values.get(key, 0) + 1
            self.expiry[key] = expires_at
            self.counted[key, event_id] = self.values[key]
            return self.values[key]


class MemoryInboundDeadLetters:
    """Inbound's on-failure queue (`inbound/replay.py`'s DeadLetters)."""

    def __init__(self, bodies: list[str] | None = None) -> None:
        self._ids = itertools.count(1)
        self.messages: dict[str, str] = {f"h{next(self._ids)}": b for b in bodies or []}
        self.released: list[str] = []

    def add(self, body: str) -> None:
        self.messages[f"h{next(self._ids)}"] = body

    def receive(self, max_messages: int = 10) -> list[tuple[str, str]]:
        return list(self.messages.items())[:max_messages]

    def delete(self, receipt_handle: str) -> None:
        self.messages.pop(receipt_handle, None)

    def release(self, receipt_handle: str) -> None:
        self.released.append(receipt_handle)


class MemoryJobs:
    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], Job] = {}

    def create(self, job: Job) -> None:
        key = (job.account_id, job.job_id)
        if key in self.jobs:
            raise ConflictError(f"job {job.job_id} exists")
        self.jobs[key] = job.model_copy(deep=True)

    def get(self, account_id: str, job_id: str) -> Job | None:
        found = self.jobs.get((account_id, job_id))
        return found.model_copy(deep=True) if found else None

    def add_step(self, account_id: str, job_id: str, step: JobStep) -> None:
        job = self.jobs.get((account_id, job_id))
        if job is not None and len(job.steps) < MAX_STEPS:
            job.steps.append(step.model_copy(deep=True))

    def add_progress(self, account_id: str, job_id: str, line: str) -> None:
        job = self.jobs.get((account_id, job_id))
        if job is not None and len(job.progress) < MAX_PROGRESS_LINES:
            job.progress.append(bounded(line))

    def finish(self, account_id: str, job_id: str, status: JobStatus, *, summary: str | None = None,
               fix: str | None = None) -> None:
        job = self.jobs[(account_id, job_id)]
        job.status, job.summary, job.fix = status, summary and bounded(summary), fix and bounded(fix)


class MemoryLauncher:
    """Records what would have been started; a test runs the job itself (`relaydesk.jobs.runner.run`)."""

    def __init__(self) -> None:
        self.launched: list[tuple[str, str]] = []

    def launch(self, account_id: str, job_id: str) -> None:
        self.launched.append((account_id, job_id))


class MemoryUsers:
    def __init__(self) -> None:
        self.users: dict[str, tuple[str, AccountUser]] = {}  # email -> (account id, user)

    def list_users(self, account_id: str) -> list[AccountUser]:
        return [user.model_copy() for account, user in self.users.values() if account == account_id]

    def invite(self, account_id: str, email: str, role: UserRole) -> AccountUser:
        if email in self.users:
            raise ConflictError("this email already signs in to Relaydesk")
        user = AccountUser(email=email, role=role, status="FORCE_CHANGE_PASSWORD")
        self.users[email] = (account_id, user)
        return user.model_copy()

    def agent(self, account_id: str, email: str) -> Agent | None:
        account, user = self.users.get((email or "").strip().lower(), ("", None))
        if user is None or account != account_id or not user.enabled or user.role is None:
            return None
        return Agent(agent_id=f"user-{user.email}", name=agent_name(user.name) or user.email.partition("@")[0],
                     email=user.email)


class MemoryDeadLetters:
    """The notifications DLQ as SqsDeadLetters reads it: peek leaves letters, take hides a batch until redriven
    (sent to `queue`) or released."""

    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.taken: list[DeadLetter] = []
        self.redriven: list[str] = []  # bodies sent back to the queue

    def add(self, body: str) -> None:
        self.letters.append(DeadLetter(f"m{len(self.letters) + len(self.taken) + 1}", "r", body, 5))

    def peek(self) -> list[DeadLetter]:
        return list(self.letters)

    def take(self, visibility: int = 60) -> list[DeadLetter]:
        batch, self.letters = self.letters[:10], self.letters[10:]
        self.taken += batch
        return batch

    def redrive(self, letter: DeadLetter, notification_id: str | None) -> None:
        self.taken.remove(letter)
        self.redriven.append(letter.body)

    def release(self, letter: DeadLetter) -> None:
        self.taken.remove(letter)
        self.letters.append(letter)

    def discard(self, letter: DeadLetter) -> None:
        self.taken.remove(letter)

    def bury(self, body: str, *, reason: str, notification_id: str | None, receive_count: int) -> None:
        self.letters.append(DeadLetter(f"m{len(self.letters) + len(self.taken) + 1}", "r", body, 1, reason=reason,
                                       attempts=receive_count))


class MemoryHoldAlerts:
    """The hold-alert ledger with the DynamoDB adapter's compare-and-set semantics."""

    def __init__(self) -> None:
        self.alerts: dict[str, HoldAlert] = {}

    def get(self, email: str) -> HoldAlert | None:
        found = self.alerts.get(email.lower())
        return found.model_copy(deep=True) if found else None

    def list(self) -> list[HoldAlert]:
        return [a.model_copy(deep=True) for a in self.alerts.values()]

    def put_if(self, alert: HoldAlert, expected_version: int | None) -> bool:
        current = self.alerts.get(alert.email.lower())
        if (current.version if current else None) != expected_version:
            return False
        self.alerts[alert.email.lower()] = alert.model_copy(deep=True, update={"version": (expected_version or 0) + 1})
        return True

    def delete_if(self, email: str, expected_version: int) -> bool:
        current = self.alerts.get(email.lower())
        if current is None or current.version != expected_version:
            return False
        del self.alerts[email.lower()]
        return True


class MemorySuppressions:
    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Suppression] = {}

    def suppressed(self, account_id: str, recipients: list[str]) -> dict[str, Suppression]:
        return {r.lower(): self.entries[(account_id, r.lower())].model_copy()
                for r in recipients if (account_id, r.lower()) in self.entries}

    def suppressed_many(self, wanted: dict[str, list[str]]) -> dict[str, dict[str, Suppression]]:
        return {account_id: self.suppressed(account_id, recipients) for account_id, recipients in wanted.items()}

    def add(self, suppression: Suppression) -> None:
        key = (suppression.account_id, suppression.recipient.lower())
        self.entries.setdefault(key, suppression.model_copy(update={"recipient": key[1]}))

    def list(self, account_id: str) -> list[Suppression]:
        return [s.model_copy() for (account, _), s in self.entries.items() if account == account_id]

    def remove(self, account_id: str, recipient: str) -> bool:
        return self.entries.pop((account_id, recipient.lower()), None) is not None


class MemoryShaperStates:
    """The shaper's items in a dict, with the same conditional writes as the DynamoDB adapter."""

    def __init__(self) -> None:
        self.items: dict[str, StoredState] = {}
        self.writes = 0
        self.conflicts = 0
        self._lock = threading.Lock()

    def read(self, key: str) -> StoredState:
        with self._lock:
            return self.items.get(key, StoredState(None, 0))

    def write(self, key: str, body: str, version: int) -> StoredState | None:
        with self._lock:
            current = self.items.get(key, StoredState(None, 0))
            if current.version != version:
                self.conflicts += 1
                return current
            self.items[key] = StoredState(body, version + 1)
            self.writes += 1
            return None
