"""One contract per port, run against the in-memory fake (what unit tests use) and its moto-backed adapter (what the
Lambdas use), so a fake cannot drift from the real store: the same calls, the same answers, the same errors."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from relaydesk.accounts import Account
from relaydesk.addresses.model import SupportAddress
from relaydesk.errors import ConflictError, NotFoundError
from relaydesk.ids import new_id
from relaydesk.notification import Notification
from relaydesk.store import memory
from relaydesk.store.ports import CURRENT, PENDING, PREVIOUS
from relaydesk.tickets.model import (
    Comment,
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    Ticket,
    TicketStatus,
)

KINDS = ["memory", "aws"]


@pytest.fixture(params=KINDS)
def kind(request) -> str:
    return request.param


@pytest.fixture
def stores(kind, request):
    """The shared ports as fakes, or as the template's resources in moto."""
    if kind == "memory":
        return {"directory": memory.MemoryDirectory(), "tickets": memory.MemoryTickets(),
                "blobs": memory.MemoryBlobs(), "secrets": memory.MemorySecrets(), "queue": memory.MemoryQueue(),
                "held": memory.MemoryHeld(), "mailer": memory.MemoryOutbox()}
    aws = request.getfixturevalue("aws_stack")
    return {"directory": aws.directory, "tickets": aws.tickets, "blobs": aws.blobs, "secrets": aws.secrets,
            "queue": aws.queue, "held": aws.held, "mailer": aws.mailer, "settings": aws.settings}


def notification(email: str = "support@acme.test", **fields) -> Notification:
    values = {"notification_id": new_id("N"), "account_id": "A1", "support_address": email,
              "recipients": ["jane@example.net"], "subject": "Printer jammed", "text_body": "On it."}
    return Notification(**{**values, **fields})


# --- DirectoryStore -------------------------------------------------------------------------------------------------

def test_directory_accounts(stores):
    directory = stores["directory"]
    account = Account(account_id=new_id("A"), subdomain="acme", name="Acme")
    directory.create_account(account)
    with pytest.raises(ConflictError):
        directory.create_account(Account(account_id=new_id("A"), subdomain="acme", name="Other"))
    assert directory.get_account(account.account_id) == account
    assert directory.find_account_by_subdomain("acme") == account
    assert directory.find_account_by_subdomain("nobody") is None
    with pytest.raises(NotFoundError):
        directory.get_account("A-none")
    account.name = "Acme Inc"
    directory.put_account(account)
    assert [a.name for a in directory.list_accounts()] == ["Acme Inc"]


def test_directory_addresses_each_accounts_record_and_the_owner(stores):
    directory = stores["directory"]
    address = SupportAddress(email="Support@Acme.test", account_id="A1", name="Support")
    directory.create_address(address)
    with pytest.raises(ConflictError):
        directory.create_address(SupportAddress(email="support@acme.test", account_id="A1"))
    directory.create_address(SupportAddress(email="support@acme.test", account_id="A2"))  # a claim of its own
    found = directory.get_account_address("A1", "SUPPORT@acme.test")
    assert found == address and found.email == "support@acme.test"
    assert directory.get_account_address("A3", "support@acme.test") is None  # another account's: not there
    found.name = "changed by the caller only"
    assert directory.get_account_address("A1", "support@acme.test").name == "Support"  # a copy
    assert sorted(a.account_id for a in directory.list_claims("support@acme.test")) == ["A1", "A2"]
    assert directory.owner_of("support@acme.test") is None and directory.get_address("support@acme.test") is None

    directory.claim_address("A2", "support@acme.test")  # A2 verified it first
    with pytest.raises(ConflictError):
        directory.claim_address("A1", "support@acme.test")
    assert directory.owner_of("support@acme.test") == "A2"
    assert directory.get_address("support@acme.test").account_id == "A2"

    directory.create_address(SupportAddress(email="help@acme.test", account_id="A1"))
    assert sorted(a.email for a in directory.list_addresses("A1")) == ["help@acme.test", "support@acme.test"]
    address.name = "Renamed"
    directory.put_address(address)
    assert directory.get_account_address("A1", "support@acme.test").name == "Renamed"
    directory.delete_address("A2", "Support@acme.test")  # the owner's record, and its ownership
    directory.delete_address("A1", "nobody@acme.test")  # nothing there: no error
    assert directory.owner_of("support@acme.test") is None
    assert directory.get_account_address("A2", "support@acme.test") is None
    assert directory.get_address("support@acme.test").account_id == "A1"  # the one claim left


# --- TicketStore ----------------------------------------------------------------------------------------------------

def ticket(**fields) -> Ticket:
    values = {"ticket_id": new_id("T"), "account_id": "A1", "support_address": "support@acme.test",
              "subject": "Printer jammed", "requester": "jane@example.net"}
    return Ticket(**{**values, **fields})


def test_tickets_their_comments_and_attribute_updates(stores):
    tickets = stores["tickets"]
    at = datetime(2026, 12, 1, 10, tzinfo=UTC)
    first = ticket(comments=[Comment(comment_id=new_id("C"), author="jane@example.net", body="Help")])
    tickets.create_ticket(first)
    with pytest.raises(ConflictError):
        tickets.create_ticket(first)
    assert tickets.get_ticket(first.ticket_id).comments == first.comments
    assert tickets.get_ticket("T-none") is None
    tickets.add_comment(first.ticket_id, Comment(comment_id=new_id("C"), author="agent@acme.test", body="On it"))
    assert [c.body for c in tickets.get_ticket(first.ticket_id).comments] == ["Help", "On it"]
    open_ = frozenset({TicketStatus.NEW, TicketStatus.OPEN})
    assert tickets.change_status(first.ticket_id, TicketStatus.SOLVED, at, from_statuses=open_) is True
    assert tickets.change_status(first.ticket_id, TicketStatus.SOLVED, at, from_statuses=open_) is False  # once
    assert tickets.add_ccs(first.ticket_id, ["a@example.net", "b@example.net"], at, limit=2) is True
    assert tickets.add_ccs(first.ticket_id, ["c@example.net"], at, limit=2) is False  # over the limit: nothing
    stored = tickets.get_ticket(first.ticket_id)
    assert stored.status is TicketStatus.SOLVED and sorted(stored.ccs) == ["a@example.net", "b@example.net"]
    with pytest.raises(NotFoundError):
        tickets.assign("T-none", None, at)
    tickets.create_ticket(ticket(account_id="A2"))
    assert [t.ticket_id for t in tickets.list_tickets("A1")] == [first.ticket_id]


def test_tickets_notification_records_and_attempts(stores):
    tickets = stores["tickets"]
    owner = ticket()
    tickets.create_ticket(owner)
    record = NotificationRecord(notification_id=new_id("N"), message_id="<n@acme.test>", recipients=["j@x.test"])
    delivered = DeliveryAttempt(status=DeliveryStatus.DELIVERED, route="ses", reply="250 ok",
                                at=datetime(2026, 12, 1, tzinfo=UTC))
    held = DeliveryAttempt(status=DeliveryStatus.HELD, route="connector:h:587", smtp_code=535, reply="535 no",
                           at=datetime(2026, 12, 1, tzinfo=UTC))
    tickets.append_attempt(owner.ticket_id, record, held)  # no record yet: made from `new_record`
    tickets.append_attempt(owner.ticket_id, record, delivered)
    stored = tickets.get_notification(owner.ticket_id, record.notification_id)
    assert stored.status is DeliveryStatus.DELIVERED and stored.attempts == [held, delivered]
    tickets.put_notification(owner.ticket_id, stored.model_copy(update={"recipients": ["k@x.test"]}))
    assert tickets.get_notification(owner.ticket_id, record.notification_id).recipients == ["k@x.test"]
    assert tickets.get_notification(owner.ticket_id, "N-none") is None
    tickets.link_message_id("<Abc@Mail.Example.NET>", owner.ticket_id)
    assert tickets.find_ticket_by_message_id(" <abc@mail.example.net>") == owner.ticket_id
    assert tickets.find_ticket_by_message_id("<other@x>") is None


# --- BlobStore, SecretStore -------------------------------------------------------------------------------------------

def test_blobs(stores):
    blobs = stores["blobs"]
    blobs.put("inbound/m1", b"x" * 70_000, "message/rfc822")
    assert blobs.exists("inbound/m1") and not blobs.exists("inbound/none")
    assert blobs.get("inbound/m1") == b"x" * 70_000
    assert b"".join(blobs.chunks("inbound/m1", 1 << 15)) == b"x" * 70_000
    with pytest.raises(NotFoundError):
        blobs.get("inbound/none")
    with pytest.raises(NotFoundError):
        blobs.chunks("inbound/none")
    assert "inbound/m1" in blobs.url_for("inbound/m1", expires_in=60)


def test_secrets_and_their_staging_labels(stores):
    secrets = stores["secrets"]
    secret = secrets.create("relaydesk/connector/A1/support@acme.test", '{"v": 1}', {"relaydesk:account-id": "A1"})
    with pytest.raises(ConflictError):
        secrets.create("relaydesk/connector/A1/support@acme.test", '{"v": 9}', {})
    first = secrets.get(secret)
    assert first.value == '{"v": 1}' and CURRENT in first.stages
    token = "11111111-2222-3333-4444-555555555555"
    assert secrets.put_version(secret, '{"v": 2}', [PENDING], token=token) == token
    assert secrets.get(secret, PENDING) == (token, '{"v": 2}', (PENDING,))
    assert secrets.get(secret, CURRENT).version_id == first.version_id  # staging does not touch AWSCURRENT
    secrets.move_stage(secret, CURRENT, to_version=token, from_version=first.version_id)
    secrets.move_stage(secret, PENDING, to_version=None, from_version=token)
    stages = secrets.describe_stages(secret)
    assert CURRENT in stages[token] and PENDING not in stages[token] and PREVIOUS in stages[first.version_id]
    with pytest.raises(NotFoundError):
        secrets.get(secret, PENDING)
    secrets.schedule_deletion(secret, 7)
    with pytest.raises(NotFoundError):
        secrets.get(secret)
    secrets.restore(secret)
    assert secrets.get(secret).value == '{"v": 2}'


def test_a_new_current_version_at_once_moves_the_old_one_to_previous(stores):
    # (On a fresh secret: moto 5.2 leaves AWSCURRENT on a version that UpdateSecretVersionStage made current as
    # well; Secrets Manager moves it, as the fake does.)
    secrets = stores["secrets"]
    secret = secrets.create("relaydesk/connector/A1/help@acme.test", '{"v": 1}', {})
    first = secrets.get(secret).version_id
    second = secrets.put_version(secret, '{"v": 2}', [CURRENT])  # a settings change: new current at once
    assert secrets.get(secret) == (second, '{"v": 2}', (CURRENT,))
    assert secrets.describe_stages(secret) == {first: [PREVIOUS], second: [CURRENT]}


# --- NotificationQueue, RawMailSender, HeldNotifications --------------------------------------------------------------

def queued(kind: str, stores) -> list[Notification]:
    if kind == "memory":
        return [n for n, _ in stores["queue"].sent]
    import boto3

    sqs = boto3.client("sqs")
    messages = sqs.receive_message(QueueUrl=stores["settings"].notifications_queue_url, MaxNumberOfMessages=10,
                                   WaitTimeSeconds=1).get("Messages", [])
    return [Notification.model_validate_json(m["Body"]) for m in messages]


def test_the_queue_carries_the_whole_notification(kind, stores):
    sent = notification(ticket_id="T1", cc=["cc@example.net"])
    stores["queue"].send(sent)
    assert queued(kind, stores) == [sent]


def test_the_default_outbound_returns_a_message_id(kind, stores):
    if kind == "aws":
        import boto3

        boto3.client("ses").verify_domain_identity(Domain="mail.relaydesk.test")
    message_id = stores["mailer"].send_raw("support@acme.mail.relaydesk.test", ["jane@example.net"],
                                           b"From: support@acme.mail.relaydesk.test\r\nSubject: hi\r\n\r\nhello\r\n")
    assert isinstance(message_id, str) and message_id


def test_held_notifications_park_once_per_id_and_come_back_whole(stores):
    held = stores["held"]
    first, second = notification(), notification()
    held.park("Support@acme.test", first)
    held.park("support@acme.test", first)  # a retried park: still one
    held.park("support@acme.test", second)
    held.park("help@acme.test", notification("help@acme.test"))
    assert sorted(n.notification_id for n in held.list("SUPPORT@acme.test")) == sorted(
        [first.notification_id, second.notification_id])
    assert next(n for n in held.list("support@acme.test") if n.notification_id == first.notification_id) == first
    held.remove("support@acme.test", first.notification_id)
    held.remove("support@acme.test", "N-none")
    assert [n.notification_id for n in held.list("support@acme.test")] == [second.notification_id]


def test_held_notifications_are_listed_after_an_id_oldest_first_a_bounded_number_at_a_time(stores):
    held = stores["held"]
    ids = [f"N01HELD{n:012d}" for n in range(5)]
    for notification_id in reversed(ids):  # parked in any order
        held.park("support@acme.test", notification(notification_id=notification_id))
    held.park("help@acme.test", notification("help@acme.test", notification_id="N01HELD000000000002A"))

    assert [n.notification_id for n in held.list_after("Support@acme.test", None, 3)] == ids[:3]
    assert [n.notification_id for n in held.list_after("support@acme.test", ids[2], 3)] == ids[3:]
    assert held.list_after("support@acme.test", ids[4], 3) == []
    assert held.list_after("nobody@acme.test", None, 3) == []
    [second] = held.list_after("support@acme.test", ids[0], 1)
    assert second == next(n for n in held.list("support@acme.test") if n.notification_id == ids[1])  # whole


# --- inbound's ports ------------------------------------------------------------------------------------------------

@pytest.fixture
def inbound(kind, request):
    if kind == "memory":
        return {"ledger": memory.MemoryLedger(), "counters": memory.MemoryCounters(),
                "dead": memory.MemoryInboundDeadLetters(), "add": None}
    request.getfixturevalue("aws_stack")
    import boto3
    from relaydesk.config import get_settings
    from relaydesk.store.inbound_dynamodb import SqsDeadLetters, aws_inbound_ports

    ports = aws_inbound_ports()
    url = get_settings().inbound_dlq_url
    sqs = boto3.client("sqs")
    return {"ledger": ports.ledger, "counters": ports.counters, "dead": SqsDeadLetters(sqs, url),
            "add": lambda body: sqs.send_message(QueueUrl=url, MessageBody=body)}


def test_the_ledger_keeps_the_first_decision(inbound):
    ledger = inbound["ledger"]
    assert ledger.get("ses-1") is None
    assert ledger.claim("ses-1", '{"decision": "first"}') == '{"decision": "first"}'
    assert ledger.claim("ses-1", '{"decision": "second"}') == '{"decision": "first"}'
    assert ledger.get("ses-1") == ('{"decision": "first"}', False)
    ledger.complete("ses-1")
    assert ledger.get("ses-1") == ('{"decision": "first"}', True)


def test_counters_count_each_event_once(inbound):
    counters = inbound["counters"]
    expires = int(time.time()) + 3600
    assert [counters.count_once("flood#a", event, expires) for event in ("e1", "e2", "e1", "e3")] == [1, 2, 1, 3]
    assert counters.count_once("flood#b", "e1", expires) == 1


def test_dead_letters_are_received_released_and_deleted(inbound):
    dead = inbound["dead"]
    body = json.dumps({"Records": [{"ses": {"mail": {"messageId": "m1"}}}]})
    if inbound["add"] is None:
        dead.add(body)
    else:
        inbound["add"](body)
    [(handle, received)] = dead.receive()
    assert received == body
    dead.release(handle)
    [(handle, _)] = dead.receive()
    dead.delete(handle)
    assert dead.receive() == []


# --- the retry delay (the once guard's contract, on both: test_once_guard.py) ----------------------------------------

def test_the_retry_delay_sets_an_in_flight_records_visibility_and_says_when_it_no_longer_can(kind, request):
    if kind == "memory":
        delay, handle = memory.MemoryRetryDelay(in_flight={"handle-1"}), "handle-1"
    else:
        aws = request.getfixturevalue("aws_stack")
        import boto3
        from relaydesk.store.sqs_retry import SqsRetryDelay

        sqs = boto3.client("sqs")
        url = aws.settings.notifications_queue_url
        aws.queue.send(notification())
        handle = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"][0]["ReceiptHandle"]
        delay = SqsRetryDelay(sqs, url)
    assert delay.delay(handle, 120) is True
    assert delay.delay("AQEB-not-a-handle-in-flight", 120) is False


# --- the console's ports: jobs, users, the notifications DLQ ---------------------------------------------------------

@pytest.fixture
def console(kind, request):
    if kind == "memory":
        dead = memory.MemoryDeadLetters()
        return {"jobs": memory.MemoryJobs(), "users": memory.MemoryUsers(), "dead": dead, "add": dead.add,
                "redriven": lambda: list(dead.redriven)}
    aws = request.getfixturevalue("aws_stack")
    import boto3

    sqs = boto3.client("sqs")

    def redriven() -> list[str]:
        return [m["Body"] for m in sqs.receive_message(QueueUrl=aws.settings.notifications_queue_url,
                                                       MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])]

    return {"jobs": aws.jobs, "users": aws.users, "dead": aws.dead_letters, "redriven": redriven,
            "add": lambda body: sqs.send_message(QueueUrl=aws.settings.notifications_dlq_url, MessageBody=body)}


def test_a_job_is_written_once_grows_within_its_bounds_and_is_the_accounts_own(console):
    from relaydesk.jobs.model import MAX_STEPS, Job, JobKind, JobStatus, JobStep

    jobs = console["jobs"]
    job = Job(job_id="J1", account_id="A1", kind=JobKind.CONNECT, email="support@acme.test", planned_steps=["dns"])
    jobs.create(job)
    with pytest.raises(ConflictError):
        jobs.create(job)
    jobs.add_step("A1", "J1", JobStep(name="dns", ok=True, detail="127.0.0.1", elapsed_ms=1.5))
    assert [(s.name, s.ok, s.detail) for s in jobs.get("A1", "J1").steps] == [("dns", True, "127.0.0.1")]
    for n in range(MAX_STEPS + 2):
        jobs.add_step("A1", "J1", JobStep(name=f"s{n}", ok=True))
    jobs.add_progress("A1", "J1", "x" * 10_000)
    jobs.add_step("A1", "J-none", JobStep(name="dns", ok=True))  # an unknown job takes nothing, raises nothing
    jobs.finish("A1", "J1", JobStatus.FAILED, summary="refused", fix="check the password")
    done = jobs.get("A1", "J1")
    assert len(done.steps) == MAX_STEPS and len(done.progress) == 1 and len(done.progress[0]) <= 2000
    assert (done.status, done.summary, done.fix, done.planned_steps) == (
        JobStatus.FAILED, "refused", "check the password", ["dns"])
    assert jobs.get("A2", "J1") is None and jobs.get("A1", "J-none") is None


def test_users_are_listed_per_account_and_an_email_signs_in_to_one_account(console):
    from relaydesk.users import UserRole

    users = console["users"]
    invited = users.invite("A1", "ann@acme.test", UserRole.ADMIN)
    users.invite("A1", "bob@acme.test", UserRole.AGENT)
    users.invite("A2", "gary@globex.test", UserRole.ADMIN)
    assert (invited.email, invited.role, invited.status) == ("ann@acme.test", UserRole.ADMIN, "FORCE_CHANGE_PASSWORD")
    assert sorted((u.email, u.role) for u in users.list_users("A1")) == [
        ("ann@acme.test", UserRole.ADMIN), ("bob@acme.test", UserRole.AGENT)]
    for account in ("A1", "A2"):
        with pytest.raises(ConflictError) as refused:
            users.invite(account, "gary@globex.test", UserRole.AGENT)
        assert "A2" not in refused.value.message
    assert users.list_users("A3") == []


def test_dead_letters_are_seen_left_taken_released_and_redriven(console):
    dead = console["dead"]
    first, second = (notification(notification_id=f"N{n}").model_dump_json() for n in (1, 2))
    console["add"](first)
    console["add"](second)
    assert sorted(letter.body for letter in dead.peek()) == sorted([first, second])
    assert sorted(letter.body for letter in dead.peek()) == sorted([first, second])  # peeking leaves them
    taken = dead.take()
    assert sorted(letter.body for letter in taken) == sorted([first, second])
    kept = next(letter for letter in taken if letter.body == first)
    dead.release(kept)
    dead.redrive(next(letter for letter in taken if letter.body == second), "N2")
    assert [letter.body for letter in dead.peek()] == [first]
    assert console["redriven"]() == [second]
