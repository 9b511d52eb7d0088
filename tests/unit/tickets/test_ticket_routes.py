"""The ticket routes of the tenant API against the in-memory stores, for both roles that may use them (agent, admin):
every route does what the CLI does, as the signed-in user, for its own account only; another account's ticket is 404
like a missing one; hostile bodies are 400/422; a POST retried with its Idempotency-Key repeats nothing. Every
response is checked against the OpenAPI document (tests/unit/api_client.py)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from relaydesk.accounts import AccountSettings
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.store.memory import MemoryUsers
from relaydesk.tickets.model import (
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    RecipientOutcome,
    Ticket,
    TicketStatus,
)
from relaydesk.users import AccountUser, UserRole

from tests.unit.api_client import ApiClient, jwt_authorizer
from tests.unit.test_tenant_api import claims
from tests.unit.tickets.conftest import ACCOUNT, TICKET, seed, sent

OTHER = "A01GLOBEX"
OTHER_TICKET = "T01M8000000000000GX"
ROLES = ("agent", "admin")
BOB_CLAIMS = {"sub": "sub-bob", "email": "Bob@Acme.test", "name": "Bob Agent"}


@pytest.fixture
def stores(memory_stores):
    stores = replace(memory_stores, users=MemoryUsers())
    seed(stores)
    seed(stores, account_id=OTHER, ticket_id=OTHER_TICKET)
    for account, email, role, name in ((ACCOUNT, "ann@acme.test", UserRole.ADMIN, "Ann Admin"),
                                       (ACCOUNT, "off@acme.test", UserRole.AGENT, "Off"),
                                       (ACCOUNT, "norole@acme.test", None, "No Role"),
                                       (OTHER, "gus@globex.test", UserRole.AGENT, "Gus Globex")):
        stores.users.users[email] = (account, AccountUser(email=email, role=role, status="CONFIRMED", name=name,
                                                          enabled=email != "off@acme.test"))
    return stores


@pytest.fixture
def api(stores):
    return build_tenant_api(lambda account_id: stores)


def as_user(api, role: str | None, account: str = ACCOUNT, **overrides) -> ApiClient:
    token = claims(account, *([role] if role else []), **{**BOB_CLAIMS, **overrides})
    return ApiClient(lambda event: api.resolve(event, None), authorizer=jwt_authorizer(token))


def with_key(client: ApiClient, key: str):
    """The client's requests carrying an Idempotency-Key header."""
    call = client._call

    def keyed(event):
        event["headers"]["idempotency-key"] = key
        return call(event)

    return ApiClient(keyed, authorizer=client.authorizer)


def path(suffix: str = "", account: str = ACCOUNT, ticket: str = TICKET) -> str:
    return f"/accounts/{account}/tickets/{ticket}{suffix}"


# --- reading --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_a_page_at_a_time_with_filters_newest_update_first(api, stores, role):
    start = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    for n in range(5):
        stores.tickets.create_ticket(Ticket(
            ticket_id=f"T01M80000000000000{n}", account_id=ACCOUNT, support_address="support@acme.test",
            subject=f"Request {n}", requester="max@example.net" if n % 2 else "jane@example.net",
            status=TicketStatus.OPEN if n < 3 else TicketStatus.PENDING, created_at=start + timedelta(hours=n),
            updated_at=start + timedelta(hours=n)))
    client = as_user(api, role)

    first = client.get(f"/accounts/{ACCOUNT}/tickets", limit="2")
    second = client.get(f"/accounts/{ACCOUNT}/tickets", limit="2", cursor=first.body["next_cursor"])
    pending = client.get(f"/accounts/{ACCOUNT}/tickets", status="pending")
    max_only = client.get(f"/accounts/{ACCOUNT}/tickets", requester="MAX@example.net")
    recent = client.get(f"/accounts/{ACCOUNT}/tickets", updated_since="2026-11-25T10:30:00Z")

    assert [t["ticket_id"] for t in first.body["tickets"]] == ["T01M800000000000004", "T01M800000000000003"]
    assert [t["ticket_id"] for t in second.body["tickets"]] == ["T01M800000000000002", "T01M800000000000001"]
    assert [t["ticket_id"] for t in pending.body["tickets"]] == ["T01M800000000000004", "T01M800000000000003"]
    assert {t["requester"] for t in max_only.body["tickets"]} == {"max@example.net"}
    assert [t["ticket_id"] for t in recent.body["tickets"]] == ["T01M800000000000004", "T01M800000000000003"]
    everything = client.get(f"/accounts/{ACCOUNT}/tickets", limit="100").body
    assert OTHER_TICKET not in {t["ticket_id"] for t in everything["tickets"]} and everything["next_cursor"] is None


@pytest.mark.parametrize("query,status,code", [
    ({"cursor": "eyJ1IjoiMjAyNiIsInQiOiJUMSJ9"}, 400, "invalid_cursor"),
    ({"cursor": "x" * 201}, 422, "validation_error"),
    ({"status": "deleted"}, 422, "validation_error"),
    ({"limit": "0"}, 422, "validation_error"), ({"limit": "101"}, 422, "validation_error"),
    ({"limit": "ten"}, 422, "validation_error"),
    ({"updated_since": "yesterday"}, 422, "updated_since"),
    ({"requester": "j" * 255}, 422, "validation_error"),
])
def test_a_bad_filter_or_cursor_is_refused_with_what_is_wrong(api, query, status, code):
    reply = as_user(api, "agent").get(f"/accounts/{ACCOUNT}/tickets", **query)

    assert (reply.status, reply.body["code"]) == (status, code)


@pytest.mark.parametrize("role", ROLES)
def test_show_has_every_comment_internal_notes_too_and_each_mails_delivery_per_recipient(api, stores, role):
    client = as_user(api, role)
    client.post(path("/notes"), {"body": "Toner ordered."})
    reply = client.post(path("/replies"), {"body": "A technician comes at 2 pm."})
    notification_id = reply.body["notification_ids"][0]
    record = stores.tickets.get_notification(TICKET, notification_id)
    stores.tickets.append_attempt(TICKET, record, DeliveryAttempt(
        status=DeliveryStatus.DELIVERED, route="connector:smtp.acme.test", smtp_code=250, reply="250 2.0.0 OK",
        refused=[RecipientOutcome(recipient="carol@example.org", smtp_code=550, enhanced_status="5.1.1",
                                  reply="550 5.1.1 no such user")]))

    shown = client.get(path()).body

    assert [c["kind"] for c in shown["comments"]] == ["mail", "note", "reply"]
    assert shown["comments"][1]["public"] is False and shown["comments"][1]["notification_ids"] == []
    sent_mail = next(n for n in shown["notifications"] if n["notification_id"] == notification_id)
    assert {r["recipient"]: (r["status"], r["smtp_code"]) for r in sent_mail["recipients"]} == {
        "jane@example.net": ("delivered", 250), "carol@example.org": ("failed", 550)}
    assert client.get(path("/notifications")).body["notifications"] == shown["notifications"]


def test_a_later_bounce_report_shows_on_its_recipient_only(api, stores):
    record = NotificationRecord(notification_id="N01M8000000000000B1", message_id="<n@acme.test>",
                                recipients=["jane@example.net", "carol@example.org"], status=DeliveryStatus.BOUNCED,
                                attempts=[DeliveryAttempt(status=DeliveryStatus.DELIVERED, smtp_code=250,
                                                          reply="250 OK")],
                                reports=[{"recipient": "carol@example.org", "action": "failed", "status": "5.2.2",
                                          "diagnostic_code": "smtp; 552 mailbox full"}])
    stores.tickets.put_notification(TICKET, record)

    rows = {n["notification_id"]: n for n in as_user(api, "agent").get(path("/notifications")).body["notifications"]}

    by_recipient = {r["recipient"]: r for r in rows["N01M8000000000000B1"]["recipients"]}
    assert (by_recipient["carol@example.org"]["status"], by_recipient["carol@example.org"]["report"]) == (
        "bounced", "failed")
    assert by_recipient["jane@example.net"]["status"] == "delivered"


# --- writing, as the signed-in user ---------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_a_reply_is_written_and_mailed_as_the_signed_in_user(api, stores, role):
    reply = as_user(api, role).post(path("/replies"), {"body": "A technician comes at 2 pm.", "status": "pending"})

    assert reply.status == 201
    comment = reply.body["comment"]
    assert (comment["kind"], comment["author"]) == ("reply", "Bob Agent")
    assert comment["agent"] == {"agent_id": "sub-bob", "name": "Bob Agent", "email": "bob@acme.test"}
    assert reply.body["status"] == "pending"
    mail = sent(stores)[-1]
    assert (mail.agent_name, mail.recipients, mail.cc) == ("Bob Agent", ["jane@example.net"], ["carol@example.org"])
    assert stores.tickets.get_ticket(TICKET).status is TicketStatus.PENDING


@pytest.mark.parametrize("field", ["author", "agent", "agent_name", "agent_email", "from", "account_id",
                                   "request_id"])
def test_the_author_and_the_account_never_come_from_the_body(api, stores, field):
    reply = as_user(api, "agent").post(path("/replies"), {"body": "Hello", field: "IT Security <ceo@acme.test>"})

    assert (reply.status, reply.body["code"]) == (422, "validation_error")
    assert len(stores.tickets.get_ticket(TICKET).comments) == 1 and sent(stores) == []


def test_a_user_without_a_name_is_named_by_its_address_and_one_without_an_address_cannot_write(api, stores):
    unnamed = as_user(api, "agent", name=None).post(path("/notes"), {"body": "Checked."})
    nameless = as_user(api, "agent", name="\u202e\r\n").post(path("/notes"), {"body": "Checked."})
    anonymous = as_user(api, "agent", email=None).post(path("/notes"), {"body": "Checked."})

    assert unnamed.body["comment"]["author"] == nameless.body["comment"]["author"] == "bob"
    assert (anonymous.status, anonymous.body["code"]) == (422, "author_unknown")


def test_a_hostile_name_in_the_token_reaches_the_mail_as_one_line(api, stores):
    as_user(api, "agent", name="Bob\r\nBcc: everyone@example.com\x00" + "x" * 500).post(path("/replies"),
                                                                                      {"body": "Hi"})

    name = sent(stores)[-1].agent_name
    assert "\r" not in name and "\n" not in name and "\x00" not in name and len(name) <= 120


@pytest.mark.parametrize("role", ROLES)
def test_a_note_is_internal_and_mails_nobody(api, stores, role):
    reply = as_user(api, role).post(path("/notes"), {"body": "Customer is a VIP."})

    assert (reply.status, reply.body["comment"]["kind"], reply.body["notification_ids"]) == (201, "note", [])
    assert sent(stores) == []


def test_a_reply_retried_with_its_idempotency_key_writes_and_sends_nothing_twice(api, stores):
    client = with_key(as_user(api, "agent"), "retry-0123456789")

    first = client.post(path("/replies"), {"body": "On its way."})
    again = client.post(path("/replies"), {"body": "On its way."})

    assert first.status == again.status == 201
    assert first.body["comment"]["comment_id"] == again.body["comment"]["comment_id"]
    assert again.body["request_id"] == "retry-0123456789"
    assert len(stores.tickets.get_ticket(TICKET).comments) == 2
    assert {n.notification_id for n in sent(stores)} == set(first.body["notification_ids"])  # the relay sends once


@pytest.mark.parametrize("key", ["short", "has space 12345", "x" * 65, "semi;colon123"])
def test_a_malformed_idempotency_key_is_refused_before_anything_is_written(api, stores, key):
    reply = with_key(as_user(api, "agent"), key).post(path("/replies"), {"body": "On its way."})

    assert reply.status == 422
    assert len(stores.tickets.get_ticket(TICKET).comments) == 1


@pytest.mark.parametrize("role", ROLES)
def test_solving_mails_the_requester_once_even_when_retried(api, stores, role):
    client = with_key(as_user(api, role), "solve-0123456789")

    first = client.put(path("/status"), {"status": "solved"})
    again = client.put(path("/status"), {"status": "solved"})

    assert (first.body["changed"], again.body["changed"]) == (True, False)
    assert first.body["notification_id"] and again.body["notification_id"] is None
    assert [n.kind.value for n in sent(stores)] == ["ticket_solved"]
    assert "Bob Agent marked your request" in sent(stores)[0].text_body


@pytest.mark.parametrize("body", [{"status": "new"}, {"status": "suspended"}, {"status": "closed"}, {}])
def test_agents_set_open_pending_or_solved_only(api, stores, body):
    reply = as_user(api, "agent").put(path("/status"), body)

    assert reply.status == 422
    assert stores.tickets.get_ticket(TICKET).status is TicketStatus.NEW


@pytest.mark.parametrize("role", ROLES)
def test_a_ticket_is_assigned_to_a_user_of_its_own_account_only(api, stores, role):
    client = as_user(api, role)

    assigned = client.put(path("/assignee"), {"assignee": "Ann@Acme.test"})
    foreign = client.put(path("/assignee"), {"assignee": "gus@globex.test"})
    nobody = client.put(path("/assignee"), {"assignee": "ghost@acme.test"})
    refused = [client.put(path("/assignee"), {"assignee": email}) for email in ("off@acme.test", "norole@acme.test")]

    assert assigned.body["assignee"] == {"agent_id": "user-ann@acme.test", "name": "Ann Admin",
                                         "email": "ann@acme.test"}
    assert (foreign.status, foreign.body["code"]) == (nobody.status, nobody.body["code"]) == (422,
                                                                                            "assignee_not_agent")
    assert [(r.status, r.body["code"]) for r in refused] == [(422, "assignee_not_agent")] * 2
    assert foreign.body["message"].replace("gus@globex.test", "X") == nobody.body["message"].replace(
        "ghost@acme.test", "X")
    assert stores.tickets.get_ticket(TICKET).assignee.email == "ann@acme.test"
    assert client.put(path("/assignee"), {"assignee": None}).body["assignee"] is None


@pytest.mark.parametrize("role", ROLES)
def test_ccs_and_followers_are_added_and_removed_within_the_accounts_rules(api, stores, role):
    client = as_user(api, role)

    added = client.post(path("/ccs"), {"addresses": ["Dave@Example.org"]})
    following = client.post(path("/followers"), {"addresses": ["ann@acme.test"]})
    removed = client.delete(path("/ccs/" + quote("carol@example.org", safe="")))
    unfollowed = client.delete(path("/followers/ann%40acme.test"))

    assert added.body["ccs"] == ["carol@example.org", "dave@example.org"]
    assert following.body["followers"] == ["ann@acme.test"]
    assert removed.body["ccs"] == ["dave@example.org"] and unfollowed.body["followers"] == []


@pytest.mark.parametrize("kind,body,status,code", [
    ("ccs", {"addresses": ["jane@example.net"]}, 422, "cc_is_requester"),
    ("ccs", {"addresses": ["support@acme.test"]}, 422, "own_address"),
    ("ccs", {"addresses": ["Jane <jane@x.org>, evil@x.org"]}, 422, "invalid_address"),
    ("ccs", {"addresses": [f"p{n}@example.org" for n in range(49)]}, 422, "validation_error"),
    ("ccs", {"addresses": []}, 422, "validation_error"),
    ("ccs", {"addresses": ["a" * 250 + "@x.org"]}, 422, "validation_error"),
    ("followers", {"addresses": ["dave@example.org"]}, 422, "follower_not_agent"),
])
def test_a_cc_or_follower_against_the_rules_is_refused_by_name(api, stores, kind, body, status, code):
    reply = as_user(api, "agent").post(path(f"/{kind}"), body)

    assert (reply.status, reply.body["code"]) == (status, code)
    ticket = stores.tickets.get_ticket(TICKET)
    assert (ticket.ccs, ticket.followers) == (["carol@example.org"], [])


def test_with_ccs_and_followers_off_the_account_takes_none(api, stores):
    account = stores.directory.get_account(ACCOUNT)
    stores.directory.put_account(account.model_copy(update={"settings": AccountSettings(
        ccs_and_followers_enabled=False)}))

    reply = as_user(api, "agent").post(path("/ccs"), {"addresses": ["dave@example.org"]})

    assert (reply.status, reply.body["code"]) == (409, "ccs_and_followers_off")


@pytest.mark.parametrize("role", ROLES)
def test_an_upload_form_is_for_one_key_under_the_accounts_own_prefix_and_a_reply_attaches_it(api, stores, role):
    client = as_user(api, role)

    form = client.post(path("/uploads"), {"filename": "../../quote 2026.pdf", "content_type": "application/pdf",
                                          "size": 1234}).body
    stores.blobs.upload(form["key"], b"%PDF" + b"x" * 1230, "application/pdf")
    reply = client.post(path("/replies"), {"body": "The quote is attached.", "attachments": [form["key"]]})

    assert form["key"].startswith(f"attachments/{ACCOUNT}/uploads/U") and form["key"].endswith("/quote_2026.pdf")
    assert (form["fields"]["key"], form["max_bytes"], form["expires_in"]) == (form["key"], 1234, 300)
    assert reply.body["comment"]["attachments"] == [{"filename": "quote_2026.pdf", "content_type": "application/pdf",
                                                     "size": 1234}]
    assert [a.s3_key for a in sent(stores)[0].attachments] == [form["key"]]


@pytest.mark.parametrize("body,code", [
    ({"filename": "page.html", "content_type": "text/html", "size": 10}, "attachment_type"),
    ({"filename": "logo.svg", "content_type": "image/svg+xml", "size": 10}, "attachment_type"),
    ({"filename": "big.zip", "content_type": "application/zip", "size": 20 * 1024 * 1024 + 1}, "validation_error"),
    ({"filename": "empty.txt", "content_type": "text/plain", "size": 0}, "validation_error"),
    ({"filename": "x" * 256, "content_type": "text/plain", "size": 1}, "validation_error"),
    ({"filename": "a.txt", "content_type": "text/plain", "size": 1, "key": "attachments/A01GLOBEX/x"},
     "validation_error"),
])
def test_an_upload_outside_the_limits_gets_no_form(api, stores, body, code):
    reply = as_user(api, "agent").post(path("/uploads"), body)

    assert (reply.status, reply.body["code"]) == (422, code)
    assert stores.blobs.posts == {}


def test_a_reply_naming_another_accounts_upload_is_refused_and_nothing_is_sent(api, stores):
    theirs = as_user(api, "agent", account=OTHER).post(
        path("/uploads", account=OTHER, ticket=OTHER_TICKET),
        {"filename": "secret.pdf", "content_type": "application/pdf", "size": 10}).body
    stores.blobs.upload(theirs["key"], b"%PDF-12345", "application/pdf")

    reply = as_user(api, "agent").post(path("/replies"), {"body": "See attached.", "attachments": [theirs["key"]]})

    assert reply.status == 404 and "secret.pdf" not in reply.raw
    assert sent(stores) == [] and len(stores.tickets.get_ticket(TICKET).comments) == 1


# --- the boundary ---------------------------------------------------------------------------------------------------

EVERY_ROUTE = [
    ("GET", "", None), ("GET", "/notifications", None),
    ("POST", "/replies", {"body": "Pwned"}), ("POST", "/notes", {"body": "Pwned"}),
    ("PUT", "/status", {"status": "solved"}), ("PUT", "/assignee", {"assignee": None}),
    ("POST", "/ccs", {"addresses": ["evil@example.org"]}), ("DELETE", "/ccs/carol%40example.org", None),
    ("POST", "/followers", {"addresses": ["ann@acme.test"]}), ("DELETE", "/followers/ann%40acme.test", None),
    ("POST", "/uploads", {"filename": "a.pdf", "content_type": "application/pdf", "size": 10}),
]


@pytest.mark.parametrize("method,suffix,body", EVERY_ROUTE, ids=[f"{m} {s}" for m, s, _ in EVERY_ROUTE])
def test_another_accounts_ticket_is_not_found_exactly_like_a_missing_one_and_is_untouched(
        api, stores, method, suffix, body):
    client = as_user(api, "admin")
    before = stores.tickets.get_ticket(OTHER_TICKET)

    under_theirs = client.request(method, path(suffix, account=OTHER, ticket=OTHER_TICKET), body=body)
    under_mine = client.request(method, path(suffix, ticket=OTHER_TICKET), body=body)
    missing = client.request(method, path(suffix, ticket="T01M8000000000000ZZ"), body=body)

    assert (under_theirs.status, under_theirs.body) == (404, {"code": "not_found", "message": "no such resource"})
    assert (under_mine.status, missing.status) == (404, 404)
    assert under_mine.body["message"].replace(OTHER_TICKET, "X") == missing.body["message"].replace(
        "T01M8000000000000ZZ", "X")
    assert stores.tickets.get_ticket(OTHER_TICKET) == before
    assert sent(stores) == [] and stores.blobs.posts == {}
    for foreign in (OTHER, "Printer jammed", "jane@example.net") if suffix else (OTHER,):
        assert foreign not in under_theirs.raw
    assert "help@a01globex.test" not in under_mine.raw + under_theirs.raw


@pytest.mark.parametrize("method,suffix,body", EVERY_ROUTE, ids=[f"{m} {s}" for m, s, _ in EVERY_ROUTE])
def test_a_user_in_no_group_may_use_no_ticket_route(api, stores, method, suffix, body):
    reply = as_user(api, None).request(method, path(suffix), body=body)

    assert (reply.status, reply.body["code"]) == (403, "forbidden")
    assert sent(stores) == [] and len(stores.tickets.get_ticket(TICKET).comments) == 1


@pytest.mark.parametrize("ticket_id", ["t01m8000000000000tk", "T" * 65, "..%2F..%2Fsupport_addresses", "%00",
                                       "T01M8000000000000TK%0D%0AX-Evil:1", "' OR 1=1 --"])
def test_a_hostile_ticket_id_is_not_found_never_an_error(api, ticket_id):
    reply = as_user(api, "agent").get(f"/accounts/{ACCOUNT}/tickets/{ticket_id}")

    assert reply.status in (404, 422)


@pytest.mark.parametrize("raw,status", [
    ("{not json", 400), ("[1, 2]", 422), ('"text"', 422), ("null", 422), ('{"body": 5}', 422),
    ('{"body": ""}', 422), ('{"body": "' + "x" * 20_001 + '"}', 422),
    ('{"body": "hi", "attachments": "attachments/x"}', 422),
    ('{"body": "hi", "attachments": [' + ",".join(['"k"'] * 11) + "]}", 422),
    ('{"body": "\\u0000\\u0000"}', 422),
])
def test_a_hostile_body_gets_a_400_or_422_never_a_traceback(api, stores, raw, status):
    reply = as_user(api, "agent").request("POST", path("/replies"), body=raw)

    assert (reply.status, reply.body["code"] != "internal_error") == (status, True)
    assert "Traceback" not in reply.raw and len(stores.tickets.get_ticket(TICKET).comments) == 1
