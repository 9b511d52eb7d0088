"""The admin console's routes against the in-memory stores: the wizard's staged credentials and its live-check job,
verification and rotation jobs, an address's details with its last error explained, holds, DKIM, the delivery log,
dead letters, suspended tickets, settings and users. Every route acts for the caller's own account only, and no
response carries a credential."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from urllib.parse import quote

import pytest
from relaydesk.addresses import lifecycle, state
from relaydesk.addresses.live_check import CheckStep, LiveCheckReport
from relaydesk.addresses.model import ConnectorState, SupportAddress, VerificationStatus
from relaydesk.api import console_routes
from relaydesk.api.tenant_routes import build_tenant_api
from relaydesk.credentials import SmtpCredentials
from relaydesk.errors import AuthenticationFailedError
from relaydesk.jobs import runner
from relaydesk.notification import Notification
from relaydesk.outbound import hold
from relaydesk.store.memory import (
    MemoryDeadLetters,
    MemoryHeld,
    MemoryJobs,
    MemoryLauncher,
    MemoryUsers,
)
from relaydesk.tickets.model import (
    DeliveryAttempt,
    DeliveryStatus,
    NotificationRecord,
    SuspensionReason,
    Ticket,
    TicketStatus,
)

from tests.unit.api_client import ApiClient, jwt_authorizer

CONSOLE, CLI = "console-client", "cli-client"
PASSWORD = "Console-s3cret-Pa55!"
NEW_PASSWORD = "Rotated-s3cret-Pa55!"
CLIENT_SECRET = "Entra~client~secret~value~0123456789"
STEPS = ("dns", "tcp", "greeting", "starttls", "certificate", "auth", "sender")


def claims(account_id: str, *groups: str, client: str = CONSOLE) -> dict:
    return {"sub": f"user-of-{account_id}", "aud": client, "token_use": "id", "custom:account_id": account_id,
            "cognito:groups": list(groups), "exp": int(time.time()) + 3600, "iss": "https://cognito-idp.test/pool"}


def checker_that(*, fails_at: str | None = None, reply: str = ""):
    """A live check whose steps pass up to `fails_at` (which fails with `reply`), recording what it was given."""
    seen: list[SmtpCredentials] = []

    def check(credentials, *, sender=None, on_step=None, **_):
        seen.append(credentials)
        report = LiveCheckReport(host=credentials.host, port=credentials.port, tls_mode=credentials.tls_mode)
        for name in STEPS:
            ok = name != fails_at
            step = CheckStep(name=name, ok=ok, detail=reply if not ok else f"{name} ok",
                             smtp_code=535 if not ok and name == "auth" else None)
            report.steps.append(step)
            if on_step:
                on_step(step)
            if not ok:
                report.summary, report.fix = "The server refused the username or password (535).", "Check them."
                break
        return report

    check.seen = seen
    return check


@pytest.fixture
def stores(memory_stores):
    return replace(memory_stores, jobs=MemoryJobs(), launcher=MemoryLauncher(), users=MemoryUsers(),
                   held=MemoryHeld(), dead_letters=MemoryDeadLetters())


@pytest.fixture
def acme(stores):
    return lifecycle.create_account(stores, "acme", "Acme Corp", "production")[0]


@pytest.fixture
def globex(stores):
    return lifecycle.create_account(stores, "globex", "Globex Industries", "production")[0]


@pytest.fixture
def api(stores):
    return build_tenant_api(lambda account_id: stores, console_client_id=CONSOLE)


def as_user(api, account, *groups, client: str = CONSOLE) -> ApiClient:
    return ApiClient(lambda event: api.resolve(event, None), authorizer=jwt_authorizer(
        claims(account.account_id, *groups, client=client)))


def path(account, *parts: str) -> str:
    return "/accounts/" + account.account_id + "".join("/" + part for part in parts)


def address_path(account, email: str, *parts: str) -> str:
    return path(account, "support_addresses", quote(email, safe=""), *parts)


def wizard_form(**overrides) -> dict:
    form = {"email": "support@acme.com", "name": "Acme Support", "preset": "generic", "host": "smtp.acme.com",
            "port": 587, "tls_mode": "starttls", "username": "support@acme.com", "password": PASSWORD}
    return {**form, **overrides}


def run_launched(stores) -> dict:
    """Run every launched job, as the jobs function does, and return the last one as the console reads it."""
    account_id, job_id = stores.launcher.launched[-1]
    while stores.launcher.launched:
        runner.run(stores, *stores.launcher.launched.pop(0))
    return stores.jobs.get(account_id, job_id)


def connect(stores, api, account, monkeypatch, **form) -> dict:
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", checker_that())
    reply = as_user(api, account, "admin").post(path(account, "connections"), wizard_form(**form))
    assert reply.status == 202, reply.body
    run_launched(stores)
    return reply.body


# --- the wizard -------------------------------------------------------------------------------------------------

def test_the_wizard_stages_the_credentials_and_its_job_connects_the_address_step_by_step(
        stores, api, acme, monkeypatch):
    check = checker_that()
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", check)
    admin = as_user(api, acme, "admin")

    started = admin.post(path(acme, "connections"), wizard_form())

    assert started.status == 202
    assert started.body["status"] == "running"
    assert started.body["planned_steps"] == list(STEPS)
    assert stores.directory.get_account_address(acme.account_id, "support@acme.com") is None  # not before the check
    job = run_launched(stores)
    shown = admin.get(path(acme, "jobs", started.body["job_id"]))
    assert shown.body["status"] == "succeeded"
    assert [step["name"] for step in shown.body["steps"]] == list(STEPS)
    assert check.seen[0].password.get_secret_value() == PASSWORD  # the check read the staged secret
    address = stores.directory.get_account_address(acme.account_id, "support@acme.com")
    assert address.connector.state is ConnectorState.PENDING and job.status.value == "succeeded"
    stored = json.loads(stores.secrets.get(address.connector.secret_arn).value)
    assert stored["password"] == PASSWORD
    assert PASSWORD not in started.raw + shown.raw + admin.get(address_path(acme, "support@acme.com", "details")).raw


def test_a_failed_check_explains_the_step_keeps_no_address_and_no_live_credentials(stores, api, acme, monkeypatch):
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check",
                        checker_that(fails_at="auth", reply="535 5.7.8 Username and Password not accepted"))
    admin = as_user(api, acme, "admin")

    started = admin.post(path(acme, "connections"), wizard_form())
    run_launched(stores)
    job = admin.get(path(acme, "jobs", started.body["job_id"])).body

    assert job["status"] == "failed"
    assert [s["ok"] for s in job["steps"]] == [True] * 5 + [False]
    assert job["summary"] and job["fix"]
    assert stores.directory.get_account_address(acme.account_id, "support@acme.com") is None
    assert f"relaydesk/connector/{acme.account_id}/support@acme.com" in stores.secrets.deleted
    # Fixing the password and checking again restores the secret with the new value
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", checker_that())
    assert admin.post(path(acme, "connections"), wizard_form(password=NEW_PASSWORD)).status == 202
    run_launched(stores)
    address = stores.directory.get_account_address(acme.account_id, "support@acme.com")
    assert json.loads(stores.secrets.get(address.connector.secret_arn).value)["password"] == NEW_PASSWORD


def test_only_the_console_may_connect_an_address_the_public_api_gets_403(stores, api, acme):
    cli_admin = as_user(api, acme, "admin", client=CLI)

    reply = cli_admin.post(path(acme, "connections"), wizard_form())

    assert (reply.status, reply.body["code"]) == (403, "console_only")
    assert stores.launcher.launched == [] and not stores.secrets.versions
    assert cli_admin.post(path(acme, "support_addresses"),
                          {"email": "support@acme.com", "kind": "smtp_connector"}).status == 422


@pytest.mark.parametrize("form, code", [
    (wizard_form(email="support@acme.mail.relaydesk.test"), "system_address"),
    (wizard_form(password=""), "configuration_error"),
    (wizard_form(host="smtp acme.com"), "validation_error"),
    (wizard_form(email="evil\r\nBcc: x@acme.com"), "validation_error"),
    (wizard_form(password="x" * 5000), "validation_error"),
    (wizard_form(ca_bundle_pem="not a certificate"), "validation_error"),
])
def test_the_wizard_refuses_with_words_and_stores_nothing(stores, api, acme, form, code):
    reply = as_user(api, acme, "admin").post(path(acme, "connections"), form)

    assert 400 <= reply.status < 500 and reply.body["code"] == code, reply.body
    assert reply.body["message"]
    assert not stores.secrets.versions and stores.launcher.launched == []
    assert "x" * 50 not in reply.raw and "Bcc" not in reply.raw  # the input is never echoed


def test_the_wizard_keeps_the_ccs_and_followers_rule(stores, api, acme):
    lifecycle.update_account_settings(stores, acme.account_id, ccs_and_followers_enabled=False)

    reply = as_user(api, acme, "admin").post(path(acme, "connections"), wizard_form())

    assert (reply.status, reply.body["code"]) == (409, "ccs_and_followers_required")


def test_an_oauth_connection_takes_the_app_values_and_never_returns_the_client_secret(stores, api, acme, monkeypatch):
    check = checker_that()
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", check)
    form = wizard_form(preset="microsoft365", host=None, port=None, tls_mode=None, password=None,
                       auth_kind="oauth2", oauth_tenant_id="acme.onmicrosoft.com", oauth_client_id="app-1",
                       oauth_client_secret=CLIENT_SECRET)

    started = as_user(api, acme, "admin").post(path(acme, "connections"), form)
    run_launched(stores)

    assert "token" in started.body["planned_steps"]
    assert check.seen[0].host == "smtp.office365.com"
    assert check.seen[0].oauth_client_secret.get_secret_value() == CLIENT_SECRET
    assert CLIENT_SECRET not in started.raw


def test_a_google_service_account_key_file_connects_google_workspace_and_the_key_never_comes_back(
        stores, api, acme, monkeypatch, service_account_keys):
    from relaydesk.credentials import GMAIL_SCOPE, OAuthGrant

    key = service_account_keys[0]
    check = checker_that()
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", check)
    form = wizard_form(preset="google", host=None, port=None, tls_mode=None, password=None, auth_kind="oauth2",
                       oauth_grant="service_account", service_account_key=key.json)

    started = as_user(api, acme, "admin").post(path(acme, "connections"), form)
    run_launched(stores)

    assert started.status == 202, started.body
    (credentials,) = check.seen
    assert credentials.oauth_grant is OAuthGrant.SERVICE_ACCOUNT and credentials.host == "smtp.gmail.com"
    assert credentials.oauth_service_account == key.client_email and credentials.oauth_scope == GMAIL_SCOPE
    assert credentials.username == "support@acme.com"  # the mailbox it signs in as
    details = as_user(api, acme, "admin").get(path(acme, "support_addresses/support%40acme.com/details"))
    for reply in (started, details):
        assert not any(line in reply.raw for line in key.private_key_pem.splitlines() if "-----" not in line)


def test_an_entra_app_certificate_connects_microsoft_365_and_its_key_never_comes_back(
        stores, api, acme, monkeypatch, app_certificates):
    from relaydesk.credentials import OAuthGrant

    cert = app_certificates[0]
    check = checker_that()
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", check)
    form = wizard_form(preset="microsoft365", host=None, port=None, tls_mode=None, password=None,
                       auth_kind="oauth2", oauth_grant="client_certificate", oauth_tenant_id="acme.onmicrosoft.com",
                       oauth_client_id="app-1", oauth_certificate_pem=cert.bundle_pem)

    started = as_user(api, acme, "admin").post(path(acme, "connections"), form)
    run_launched(stores)

    (credentials,) = check.seen
    assert credentials.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE and credentials.oauth_client_secret is None
    assert (credentials.oauth_tenant_id, credentials.host) == ("acme.onmicrosoft.com", "smtp.office365.com")
    assert credentials.oauth_certificate_thumbprint and "token" in started.body["planned_steps"]
    assert not any(line in started.raw for line in cert.private_key_pem.splitlines() if "-----" not in line)


@pytest.mark.parametrize("change, code, words", [
    ({"oauth_grant": "service_account", "service_account_key": '{"type": "authorized_user"}'},
     "configuration_error", "not a service account key"),
    ({"oauth_grant": "service_account", "service_account_key": None}, "configuration_error", "key file is missing"),
    ({"oauth_grant": "client_certificate", "oauth_certificate_pem": "-----BEGIN CERTIFICATE-----\nAAAA\n"
      "-----END CERTIFICATE-----\n", "preset": "microsoft365"}, "configuration_error", "private key"),
    ({"oauth_grant": "service_account", "service_account_key": "x" * (64 * 1024 + 1)}, "validation_error", ""),
])
def test_bad_sign_in_files_are_refused_in_words_and_never_echoed(stores, api, acme, change, code, words):
    form = {**wizard_form(preset="google", host=None, port=None, tls_mode=None, password=None, auth_kind="oauth2",
                          oauth_tenant_id=None, oauth_client_id=None), **change}

    reply = as_user(api, acme, "admin").post(path(acme, "connections"), form)

    assert 400 <= reply.status < 500 and reply.body["code"] == code, reply.body
    assert words in reply.body["message"]
    assert "xxxxxxxxxx" not in reply.raw and "AAAA" not in reply.raw
    assert not stores.secrets.versions and stores.launcher.launched == []


# --- an address's page ------------------------------------------------------------------------------------------

def test_details_show_a_hold_with_the_cli_explanation_and_the_held_count(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    address = stores.directory.get_account_address(acme.account_id, "support@acme.com")
    refused = AuthenticationFailedError(
        "refused", smtp_code=535, enhanced_status="5.7.139",
        server_reply="5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox")
    state.change(stores, acme.account_id, address.email, state.Hold(
        state.HoldReason.CREDENTIALS, hold.explanation(refused, host=address.connector.host,
                                                       username="support@acme.com"), version_id="v1"))
    for n in range(2):
        hold.park(stores, Notification(notification_id=f"N{n}", account_id=acme.account_id, ticket_id="T1",
                                       support_address="support@acme.com", recipients=["jane@example.net"],
                                       subject="Printer", text_body="Hi"))

    details = as_user(api, acme, "agent").get(address_path(acme, "support@acme.com", "details")).body

    assert details["address"]["connector"]["state"] == "auth_failed"
    assert details["held_notifications"] == 2
    assert "5.7.139" in details["explanation"]["summary"]
    assert "Set-CASMailbox" in details["explanation"]["fix"]
    assert details["forwarding_target"] == "support@acme.mail.relaydesk.test"
    assert "support@acme.com" in details["provider"]["forwarding"][0]


@pytest.mark.parametrize(("preset", "host", "guide", "step"), [
    ("microsoft365", "hybrid.acme.com", "microsoft365", "Exchange admin center, open Mail flow > Rules"),
    ("exchange", "mail.acme.com", "exchange", "Set-Mailbox -ForwardingSmtpAddress"),
    ("google", "smtp-relay.acme.com", "google", "Google Admin console"),
    ("postfix", "mx.acme.com", "postfix", "virtual alias map"),
])
def test_the_forwarding_guide_follows_the_provider_chosen_in_the_wizard_whatever_the_host(
        stores, api, acme, monkeypatch, preset, host, guide, step):
    connect(stores, api, acme, monkeypatch, preset=preset, host=host)  # e.g. a hybrid Exchange relaying for M365
    assert stores.directory.get_account_address(acme.account_id, "support@acme.com").connector.provider == preset

    provider = as_user(api, acme, "agent").get(address_path(acme, "support@acme.com", "details")).body["provider"]

    assert provider["key"] == guide
    assert any(step in line and "support@acme.com" in line for line in provider["forwarding"])


@pytest.mark.parametrize(("host", "guide"), [("smtp.office365.com", "microsoft365"), ("smtp.gmail.com", "google"),
                                             ("mail.acme.com", "postfix")])
def test_an_address_recorded_before_provider_profiles_gets_the_guide_its_host_suggests(
        stores, api, acme, monkeypatch, host, guide):
    connect(stores, api, acme, monkeypatch, host=host)  # generic: no profile recorded, as before profiles existed
    assert stores.directory.get_account_address(acme.account_id, "support@acme.com").connector.provider is None

    details = as_user(api, acme, "agent").get(address_path(acme, "support@acme.com", "details")).body

    assert details["provider"]["key"] == guide


def test_release_sends_the_held_notifications_again(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    hold.park(stores, Notification(notification_id="N1", account_id=acme.account_id, ticket_id="T1",
                                   support_address="support@acme.com", recipients=["jane@example.net"],
                                   subject="Printer", text_body="Hi"))

    reply = as_user(api, acme, "admin").post(address_path(acme, "support@acme.com", "held", "release"), {})

    assert reply.body == {"email": "support@acme.com", "released": 1}
    assert [n.notification_id for n, _ in stores.queue.sent] == ["N1"]


# --- held notifications, a page at a time ----------------------------------------------------------------------

def park_held(stores, account, email: str, count: int, *, start: int = 0, step: int = 1) -> list[str]:
    """`count` notifications held for `email` of `account`, with ids that sort as they were made."""
    if stores.directory.get_account_address(account.account_id, email) is None:
        stores.directory.create_address(SupportAddress(email=email, account_id=account.account_id))
    ids = [f"N01HELD{start + n * step:012d}" for n in range(count)]
    for notification_id in ids:
        hold.park(stores, Notification(notification_id=notification_id, account_id=account.account_id,
                                       ticket_id="T1", support_address=email, recipients=["jane@example.net"],
                                       subject="Printer", text_body="Hi"))
    return ids


def held_pages(client, account, limit: int, cursor: str | None = None) -> list[list[str]]:
    """Every page, following next_cursor as the console does."""
    pages = []
    while True:
        query = {"limit": str(limit), **({"cursor": cursor} if cursor else {})}
        reply = client.get(path(account, "held_notifications"), **query)
        assert reply.status == 200, reply.body
        pages.append([n["notification_id"] for n in reply.body["held"]])
        cursor = reply.body["next_cursor"]
        if cursor is None:
            return pages


@pytest.mark.parametrize(("held", "pages"), [(0, [0]), (1, [1]), (3, [3]), (4, [3, 1]), (7, [3, 3, 1])])
def test_held_notifications_come_a_page_at_a_time_oldest_first_across_the_addresses(
        stores, api, acme, held, pages):
    ids = park_held(stores, acme, "support@acme.com", held - held // 2, step=2)  # every other id
    ids += park_held(stores, acme, "help@acme.com", held // 2, start=1, step=2)  # the ones between

    walked = held_pages(as_user(api, acme, "agent"), acme, limit=3)

    assert [len(page) for page in walked] == pages  # exactly one page: no empty second page
    assert [i for page in walked for i in page] == sorted(ids)


def test_the_default_page_is_bounded_and_the_limit_is_checked(stores, api, acme):
    park_held(stores, acme, "support@acme.com", 51)
    agent = as_user(api, acme, "agent")

    first = agent.get(path(acme, "held_notifications"))

    assert len(first.body["held"]) == 50 and first.body["next_cursor"]
    for limit in ("0", "101", "ten"):
        refused = agent.get(path(acme, "held_notifications"), limit=limit)
        assert (refused.status, refused.body["code"]) == (422, "validation_error")
    assert len(agent.get(path(acme, "held_notifications"), limit="100").body["held"]) == 51


@pytest.mark.parametrize("cursor", [
    "garbage", "eyJuIjoiLi4vLi4ifQ",  # {"n":"../.."}
    base64.urlsafe_b64encode(b'{"n":"N01HELD000000000001","a":"A01OTHER"}').decode(),  # a field it never writes
    base64.urlsafe_b64encode(b'{"u":"2026-11-24T09:00:00.000000Z","t":"T01M8000000000000TK"}').decode(),  # tickets'
    base64.urlsafe_b64encode(b'["N01HELD000000000001"]').decode()])
def test_a_forged_cursor_is_refused_with_what_to_do(stores, api, acme, cursor):
    park_held(stores, acme, "support@acme.com", 2)

    reply = as_user(api, acme, "agent").get(path(acme, "held_notifications"), cursor=cursor)

    assert (reply.status, reply.body["code"]) == (400, "invalid_cursor")
    assert "first page" in reply.body["action"]


def test_another_accounts_cursor_only_moves_within_ones_own_held_notifications(stores, api, acme, globex):
    mine = park_held(stores, acme, "support@acme.com", 4, step=2)
    theirs = park_held(stores, globex, "support@globex.com", 4, start=1, step=2)
    park_held(stores, globex, "support@acme.com", 3, start=100)  # globex's own record of the same address
    their_cursor = as_user(api, globex, "agent").get(path(globex, "held_notifications"), limit="1").body["next_cursor"]
    assert globex.account_id not in base64.urlsafe_b64decode(their_cursor + "==").decode()  # a position only

    walked = held_pages(as_user(api, acme, "agent"), acme, limit=1, cursor=their_cursor)

    assert [i for page in walked for i in page] == [i for i in mine if i > theirs[0]]
    assert held_pages(as_user(api, acme, "agent"), acme, limit=2) == [mine[:2], mine[2:]]  # globex's never show


def test_disable_then_enable_and_the_default_rule(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    admin = as_user(api, acme, "admin")

    unverified = admin.put(address_path(acme, "support@acme.com"), {"default": True})
    disabled = admin.post(address_path(acme, "support@acme.com", "disable"), {})
    enabled = admin.post(address_path(acme, "support@acme.com", "enable"), {})

    assert (unverified.status, unverified.body["code"]) == (409, "default_requires_verification")
    assert disabled.body["connector"]["state"] == "disabled"
    assert enabled.body["connector"]["state"] == "pending"


def test_a_host_change_keeps_the_password_and_goes_live_only_after_the_test(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    check = checker_that()
    monkeypatch.setattr("relaydesk.addresses.rotation.run_live_check", check)
    monkeypatch.setattr("relaydesk.jobs.runner.default_starter",
                        lambda stores: lambda secret_id, token: __import__(
                            "relaydesk.addresses.rotation", fromlist=["x"]).rotate_in_process(
                                stores, secret_id, token, checker=check))

    started = as_user(api, acme, "admin").post(address_path(acme, "support@acme.com", "connector"),
                                               {"host": "smtp2.acme.com", "port": 465, "tls_mode": "implicit"})
    run_launched(stores)

    assert started.status == 202 and started.body["kind"] == "rotate"
    assert check.seen[-1].host == "smtp2.acme.com" and check.seen[-1].password.get_secret_value() == PASSWORD
    address = stores.directory.get_account_address(acme.account_id, "support@acme.com")
    assert (address.connector.host, address.connector.port, address.connector.tls_mode) == (
        "smtp2.acme.com", 465, "implicit")


def test_a_refused_new_password_leaves_the_current_one_live_and_says_why(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    refusing = checker_that(fails_at="auth", reply="535 5.7.8 Username and Password not accepted")
    monkeypatch.setattr("relaydesk.jobs.runner.default_starter",
                        lambda stores: lambda secret_id, token: __import__(
                            "relaydesk.addresses.rotation", fromlist=["x"]).rotate_in_process(
                                stores, secret_id, token, checker=refusing))
    admin = as_user(api, acme, "admin")

    started = admin.post(address_path(acme, "support@acme.com", "connector"), {"password": NEW_PASSWORD})
    run_launched(stores)
    job = admin.get(path(acme, "jobs", started.body["job_id"])).body

    assert job["status"] == "failed" and "refused" in job["summary"]
    address = stores.directory.get_account_address(acme.account_id, "support@acme.com")
    assert json.loads(stores.secrets.get(address.connector.secret_arn).value)["password"] == PASSWORD
    assert NEW_PASSWORD not in started.raw + json.dumps(job)


def test_a_job_whose_runner_died_is_reported_lost(stores, api, acme, monkeypatch):
    monkeypatch.setattr("relaydesk.addresses.connection.run_live_check", checker_that())
    admin = as_user(api, acme, "admin")
    started = admin.post(path(acme, "connections"), wizard_form())
    job = stores.jobs.jobs[(acme.account_id, started.body["job_id"])]
    job.created_at = job.created_at.replace(year=job.created_at.year - 1)  # never ran, long ago

    shown = admin.get(path(acme, "jobs", started.body["job_id"])).body

    assert (shown["status"], shown["lost"], shown["fix"]) == ("failed", True, "Start it again.")


# --- the tenant boundary on the console's routes ----------------------------------------------------------------

def test_another_accounts_jobs_addresses_and_tickets_are_not_found(stores, api, acme, globex, monkeypatch):
    started = connect(stores, api, acme, monkeypatch)
    stores.tickets.create_ticket(Ticket(ticket_id="T1SUSPENDED", account_id=acme.account_id,
                                        support_address="support@acme.com", subject="Fwd: help",
                                        requester="agent@acme.com", status=TicketStatus.SUSPENDED,
                                        suspension_reason=SuspensionReason.MANUAL_FORWARD))
    intruder = as_user(api, globex, "admin")

    assert intruder.get(path(globex, "jobs", started["job_id"])).status == 404
    assert intruder.get(address_path(globex, "support@acme.com", "details")).status == 404
    assert intruder.post(address_path(globex, "support@acme.com", "disable"), {}).status == 404
    assert intruder.post(path(globex, "suspended_tickets", "T1SUSPENDED", "recover"), {}).status == 404
    assert intruder.delete(path(globex, "suspended_tickets", "T1SUSPENDED")).status == 404
    assert intruder.get(path(globex, "suspended_tickets")).body == {"tickets": []}
    assert intruder.get(path(acme, "deliveries")).status == 404  # the gate: another account's path
    assert stores.tickets.get_ticket("T1SUSPENDED").status is TicketStatus.SUSPENDED


def test_an_agent_reads_the_log_but_changes_nothing(stores, api, acme, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    agent = as_user(api, acme, "agent")

    assert agent.get(path(acme, "deliveries")).status == 200
    assert agent.get(address_path(acme, "support@acme.com", "details")).status == 200
    for method, route, body in (("post", address_path(acme, "support@acme.com", "disable"), {}),
                                ("post", address_path(acme, "support@acme.com", "verification"), {}),
                                ("post", path(acme, "dkim", "acme.com"), {}),
                                ("put", path(acme, "settings"), {"include_attachments_in_email": False}),
                                ("post", path(acme, "users"), {"email": "new@acme.com"})):
        assert getattr(agent, method)(route, body).status == 403, route


# --- the delivery log -------------------------------------------------------------------------------------------

def ticket_with(stores, account, ticket_id: str, *records: NotificationRecord, address: str = "support@acme.com",
                status: TicketStatus = TicketStatus.NEW) -> None:
    stores.tickets.create_ticket(Ticket(ticket_id=ticket_id, account_id=account.account_id, support_address=address,
                                        subject=f"Subject of {ticket_id}", requester="jane@example.net",
                                        status=status, notifications=list(records)))


def record(notification_id: str, status: DeliveryStatus, reply: str, recipient: str = "jane@example.net"):
    return NotificationRecord(notification_id=notification_id, message_id=f"<{notification_id}@acme.com>",
                              recipients=[recipient], status=status,
                              attempts=[DeliveryAttempt(status=status, route="connector:smtp.acme.com",
                                                        smtp_code=int(reply[:3]), reply=reply)])


def test_the_log_lists_every_notification_with_the_server_reply_and_filters(stores, api, acme, globex):
    ticket_with(stores, acme, "T1", record("N1", DeliveryStatus.DELIVERED, "250 2.0.0 Ok: queued as 4F2"))
    ticket_with(stores, acme, "T2", record("N2", DeliveryStatus.DEFERRED, "451 4.3.0 try later", "bob@example.org"),
                address="help@acme.com")
    ticket_with(stores, globex, "T3", record("N3", DeliveryStatus.DELIVERED, "250 ok"))
    agent = as_user(api, acme, "agent")

    everything = agent.get(path(acme, "deliveries")).body["deliveries"]
    deferred = agent.get(path(acme, "deliveries"), status="deferred").body["deliveries"]
    to_bob = agent.get(path(acme, "deliveries"), recipient="BOB@").body["deliveries"]
    of_help = agent.get(path(acme, "deliveries"), address="help@acme.com").body["deliveries"]
    of_ticket = agent.get(path(acme, "deliveries"), ticket_id="T1").body["deliveries"]

    assert {row["notification_id"] for row in everything} == {"N1", "N2"}
    assert everything[0]["attempts"][0]["reply"]
    assert [row["notification_id"] for row in deferred] == ["N2"]
    assert [row["notification_id"] for row in to_bob] == ["N2"]
    assert [row["notification_id"] for row in of_help] == ["N2"]
    assert [row["notification_id"] for row in of_ticket] == ["N1"]
    assert agent.get(path(acme, "deliveries"), status="nonsense").status == 422


def test_the_log_pages_through_every_notification_once_reading_a_bounded_number_of_tickets(
        stores, api, acme, globex, monkeypatch):
    from relaydesk.tickets import delivery_log

    for index in range(230):  # two notifications per ticket, every 7th one deferred
        status = DeliveryStatus.DEFERRED if index % 7 == 0 else DeliveryStatus.DELIVERED
        reply = "451 4.3.0 try later" if status is DeliveryStatus.DEFERRED else "250 ok"
        ticket_with(stores, acme, f"T01M9{index:014d}", record(f"N{index}A", status, reply),
                    record(f"N{index}B", DeliveryStatus.DELIVERED, "250 ok"))
    ticket_with(stores, globex, "T02M90000000000000X", record("NGLOBEX", DeliveryStatus.DEFERRED, "451 later"))
    reads = []
    get_ticket = stores.tickets.get_ticket
    monkeypatch.setattr(stores.tickets, "get_ticket",
                        lambda ticket_id: reads.append(ticket_id) or get_ticket(ticket_id))
    agent = as_user(api, acme, "agent")

    def walk(**filters) -> tuple[list[str], list[int]]:
        seen, per_request, cursor = [], [], None
        while True:
            reads.clear()
            page = agent.get(path(acme, "deliveries"), **filters, **({"cursor": cursor} if cursor else {})).body
            per_request.append(len(reads))
            seen += [row["notification_id"] for row in page["deliveries"]]
            cursor = page["next_cursor"]
            assert page["truncated"] is (cursor is not None)
            if cursor is None:
                return seen, per_request

    everything, reads_per_page = walk()
    deferred, deferred_reads = walk(status="deferred")

    assert sorted(everything) == sorted(f"N{i}{half}" for i in range(230) for half in "AB")  # each once
    assert len(reads_per_page) == 230 * 2 // delivery_log.ROWS_WANTED + 1
    assert max(reads_per_page + deferred_reads) <= delivery_log.MAX_TICKETS_READ
    assert sorted(deferred) == sorted(f"N{i}A" for i in range(230) if i % 7 == 0)  # never another account's
    assert agent.get(path(acme, "deliveries"), cursor="not-a-cursor").body["code"] == "invalid_cursor"


def test_dead_letters_of_the_account_only_and_a_redrive_never_moves_anothers(stores, api, acme, globex):
    def letter(notification_id: str, account) -> str:
        return Notification(notification_id=notification_id, account_id=account.account_id, ticket_id="T1",
                            support_address="support@acme.com", recipients=["jane@example.net"], subject="s",
                            text_body="b").model_dump_json()
    stores.dead_letters.add(letter("NACME", acme))
    stores.dead_letters.add(letter("NGLOBEX", globex))
    admin = as_user(api, acme, "admin")

    listed = admin.get(path(acme, "dead_letters")).body["dead_letters"]
    named = admin.post(path(acme, "dead_letters", "redrive"), {"notification_ids": ["NGLOBEX"]}).body
    everything = admin.post(path(acme, "dead_letters", "redrive"), {"all": True}).body

    assert [row["notification_id"] for row in listed] == ["NACME"]
    assert named == {"redriven": [], "not_found": ["NGLOBEX"]}
    assert everything["redriven"] == ["NACME"]
    assert [json.loads(body)["notification_id"] for body in stores.dead_letters.redriven] == ["NACME"]
    assert [json.loads(left.body)["notification_id"] for left in stores.dead_letters.peek()] == ["NGLOBEX"]


def test_a_suspended_ticket_is_recovered_or_deleted(stores, api, acme):
    ticket_with(stores, acme, "T1", status=TicketStatus.SUSPENDED)
    ticket_with(stores, acme, "T2", status=TicketStatus.SUSPENDED)
    ticket_with(stores, acme, "T3")
    admin = as_user(api, acme, "admin")

    listed = admin.get(path(acme, "suspended_tickets")).body["tickets"]
    recovered = admin.post(path(acme, "suspended_tickets", "T1", "recover"), {})
    deleted = admin.delete(path(acme, "suspended_tickets", "T2"))
    not_suspended = admin.delete(path(acme, "suspended_tickets", "T3"))

    assert {t["ticket_id"] for t in listed} == {"T1", "T2"}
    assert recovered.body["status"] == "new" and stores.tickets.get_ticket("T1").status is TicketStatus.NEW
    assert deleted.body == {"ticket_id": "T2", "deleted": True} and stores.tickets.get_ticket("T2") is None
    assert (not_suspended.status, not_suspended.body["code"]) == (409, "ticket_not_suspended")


# --- DKIM -------------------------------------------------------------------------------------------------------

def verified(stores, account, email: str) -> None:
    address = stores.directory.get_account_address(account.account_id, email)
    address.forwarding.status = VerificationStatus.VERIFIED
    stores.directory.put_address(address)
    stores.directory.claim_address(account.account_id, email)


def published_resolver(records: dict[str, str]):
    return lambda name, rdtype: [records[name]] if rdtype == "TXT" and name in records else []


def test_dkim_needs_a_verified_address_then_shows_records_and_signs_once_published(stores, api, acme, globex,
                                                                                  monkeypatch):
    connect(stores, api, acme, monkeypatch)
    admin = as_user(api, acme, "admin")
    before = admin.post(path(acme, "dkim", "acme.com"), {})
    verified(stores, acme, "support@acme.com")

    set_up = admin.post(path(acme, "dkim", "acme.com"), {}).body
    published: dict[str, str] = {}
    monkeypatch.setattr(console_routes, "resolver_factory", lambda: published_resolver(published))
    refused = admin.put(path(acme, "dkim", "acme.com"), {"signing": True})
    published.update({r["name"]: r["value"] for r in set_up["records"]})
    check = admin.get(path(acme, "dkim", "acme.com", "check")).body
    signing = admin.put(path(acme, "dkim", "acme.com"), {"signing": True}).body

    assert (before.status, before.body["code"]) == (409, "dkim_domain_not_verified")
    assert set_up["set_up"] and not set_up["signing"] and len(set_up["records"]) == 2
    assert all(r["type"] == "TXT" and r["name"].endswith("._domainkey.acme.com") for r in set_up["records"])
    assert (refused.status, refused.body["code"]) == (409, "dkim_not_published")
    assert [f["status"] for f in check["findings"] if f["check"] == "dkim"] and \
        all(f["status"] != "fail" for f in check["findings"] if f["check"] == "dkim")
    assert signing["signing"] is True
    assert stores.directory.get_account_address(acme.account_id, "support@acme.com").dkim.enabled
    for method, route in (("post", path(globex, "dkim", "acme.com")), ("get", path(globex, "dkim", "acme.com")),
                          ("get", path(globex, "dkim", "acme.com", "check"))):
        other = getattr(as_user(api, globex, "admin"), method)(*((route, {}) if method == "post" else (route,)))
        assert (other.status, other.body["code"]) == (404, "not_found")  # like a domain nobody has
        assert "Acme" not in other.raw and acme.account_id not in other.raw


# --- settings and users -----------------------------------------------------------------------------------------

def test_settings_keep_the_connector_rule_and_users_are_the_accounts_own(stores, api, acme, globex, monkeypatch):
    connect(stores, api, acme, monkeypatch)
    admin = as_user(api, acme, "admin")

    ccs_off = admin.put(path(acme, "settings"), {"ccs_and_followers_enabled": False})
    attachments_off = admin.put(path(acme, "settings"), {"include_attachments_in_email": False})
    invited = admin.post(path(acme, "users"), {"email": "Ann@Acme.com", "role": "agent"})
    as_user(api, globex, "admin").post(path(globex, "users"), {"email": "gary@globex.com"})
    again = admin.post(path(acme, "users"), {"email": "gary@globex.com"})

    assert (ccs_off.status, ccs_off.body["code"]) == (409, "ccs_and_followers_required")
    assert attachments_off.body["settings"] == {"ccs_and_followers_enabled": True,
                                                "include_attachments_in_email": False}
    assert (invited.status, invited.body["email"], invited.body["role"]) == (201, "ann@acme.com", "agent")
    assert [u["email"] for u in admin.get(path(acme, "users")).body["users"]] == ["ann@acme.com"]
    assert (again.status, again.body["code"]) == (409, "conflict") and "globex" not in again.raw.lower()
