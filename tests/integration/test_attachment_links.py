"""Attachment links against moto built from template.yaml: the attachments function answers a link from a
notification with a redirect to a short-lived S3 URL, and refuses what it did not sign, what expired, what is gone."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from email import message_from_bytes
from email.policy import default
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from relaydesk.accounts import Account, AccountSettings, Brand
from relaydesk.attachments.links import sign_link
from relaydesk.clock import utcnow
from relaydesk.ids import new_id
from relaydesk.notification import AttachmentRef
from relaydesk.tickets.model import DeliveryStatus, Ticket

from local.lambdas import LambdaContext, load, unload_all
from tests.integration.relay_harness import ACCOUNT, FAST_SMTP, Relay

BASE_URL = "https://abc123.lambda-url.us-east-1.on.aws/"  # the deployed FunctionUrl's shape; never contacted
KEY = f"attachments/{ACCOUNT}/T-1/C-1/01-invoice März.pdf"


def url_event(path: str, method: str = "GET") -> dict:
    """A Lambda Function URL (payload 2.0) request."""
    return {"version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "", "headers": {},
            "requestContext": {"http": {"method": method, "path": path}}, "isBase64Encoded": False}


@pytest.fixture
def stack(aws_stack_env, monkeypatch):
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    monkeypatch.setenv("RELAYDESK_ATTACHMENTS_BASE_URL", BASE_URL)
    for name, value in FAST_SMTP.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    aws_stores.cache_clear()
    unload_all()
    yield aws_stores()
    unload_all()


def signing_key(stores) -> bytes:
    return stores.secrets.get(stores.settings.link_signing_secret_id).value.encode()


def open_link(url: str, method: str = "GET") -> dict:
    assert url.startswith(BASE_URL)
    path = "/" + url[len(BASE_URL):]
    return load("attachments").handler(url_event(path, method), LambdaContext(function_name="relaydesk-attachments",
                                                                              timeout_seconds=10))


def test_the_stack_provides_a_generated_signing_key_to_the_functions(stack):
    assert stack.settings.link_signing_secret_id.startswith("arn:aws:secretsmanager:")
    assert len(signing_key(stack)) >= 32


def test_a_valid_link_redirects_to_a_five_minute_s3_url_for_that_attachment(stack):
    import requests

    stack.blobs.put(KEY, b"%PDF-1.7 invoice", "application/pdf")
    token = sign_link(KEY, ACCOUNT, utcnow() + timedelta(days=30), signing_key(stack))

    response = open_link(BASE_URL + token)

    assert response["statusCode"] == 302
    location = urlsplit(response["headers"]["Location"])
    query = parse_qs(location.query)
    assert stack.settings.raw_mail_bucket in location.netloc + location.path
    assert unquote(location.path).endswith(KEY)
    assert query["X-Amz-Expires"] == ["300"]
    disposition = query["response-content-disposition"][0]
    assert disposition.startswith("attachment;") and "filename*=UTF-8''invoice%20M%C3%A4rz.pdf" in disposition
    downloaded = requests.get(response["headers"]["Location"], timeout=10)  # moto answers S3 in process
    assert downloaded.status_code == 200 and downloaded.content == b"%PDF-1.7 invoice"


def test_a_tampered_link_is_refused_with_403_and_a_json_error(stack):
    stack.blobs.put(KEY, b"data")
    token = sign_link(KEY, ACCOUNT, utcnow() + timedelta(days=30), signing_key(stack))
    forged = sign_link("attachments/T-9/C-9/01-other.pdf", ACCOUNT, utcnow() + timedelta(days=30),
                       b"a signing key of some other stack, long enough")

    for url in (BASE_URL + token[:-2] + ("AA" if not token.endswith("AA") else "BB"), BASE_URL + forged,
                BASE_URL, BASE_URL + "inbound/raw-mail-id"):
        response = open_link(url)
        assert response["statusCode"] == 403, url
        assert json.loads(response["body"])["code"] == "link_invalid"
        assert "Location" not in response["headers"]


def test_an_expired_link_answers_410_gone(stack):
    stack.blobs.put(KEY, b"data")
    token = sign_link(KEY, ACCOUNT, utcnow() - timedelta(seconds=1), signing_key(stack))

    response = open_link(BASE_URL + token)

    assert response["statusCode"] == 410
    assert set(json.loads(response["body"])) == {"code", "message"}
    assert json.loads(response["body"])["code"] == "link_expired"


def test_a_link_to_a_deleted_attachment_answers_404(stack):
    token = sign_link(KEY, ACCOUNT, utcnow() + timedelta(days=30), signing_key(stack))

    response = open_link(BASE_URL + token)

    assert response["statusCode"] == 404
    assert json.loads(response["body"])["code"] == "not_found"


def test_only_get_is_answered(stack):
    token = sign_link(KEY, ACCOUNT, utcnow() + timedelta(days=30), signing_key(stack))

    assert open_link(BASE_URL + token, method="POST")["statusCode"] == 405


def test_the_signing_key_and_the_token_stay_out_of_the_logs(stack, caplog):
    caplog.set_level(logging.INFO)  # what Lambda keeps; botocore's DEBUG wire dumps are off there
    stack.blobs.put(KEY, b"data")
    key = signing_key(stack)
    token = sign_link(KEY, ACCOUNT, utcnow() + timedelta(days=30), key)

    for url in (BASE_URL + token, BASE_URL + token + "x"):
        open_link(url)

    logs = "\n".join(str(record.__dict__) for record in caplog.records)  # messages with every extra field
    assert KEY in logs  # the S3 key is what the operator needs
    assert key.decode() not in logs and token not in logs and token.split(".")[1] not in logs


# --- the relay: links in a notification of an account with "include attachments in email" off ------------------

@pytest.fixture
def relay(stack, smarthost):
    import boto3

    stack.directory.create_account(Account(
        account_id=ACCOUNT, subdomain="acme", name="Acme", brands=[Brand(brand_id="B1", name="Acme Help")],
        settings=AccountSettings(include_attachments_in_email=False)))
    ticket = Ticket(ticket_id=new_id("T"), account_id=ACCOUNT, support_address="support@acme.test",
                    subject="Printer jammed", requester="jane@example.net")
    stack.tickets.create_ticket(ticket)
    harness = Relay(stores=stack, sqs=boto3.client("sqs"), handler=load("relay").handler, ticket=ticket)
    harness.connect("support@acme.test", smarthost)
    return harness


def test_a_notification_without_attachments_carries_links_the_attachments_function_opens(relay, smarthost):
    relay.stores.blobs.put(KEY, b"%PDF-1.7 invoice", "application/pdf")
    notification = relay.notification("support@acme.test", attachments=[
        AttachmentRef(filename="invoice März.pdf", content_type="application/pdf", size=16, s3_key=KEY)])
    relay.enqueue(notification)
    relay.poll()

    [received] = smarthost.received
    assert relay.record(notification).status is DeliveryStatus.DELIVERED
    parsed = message_from_bytes(received.data, policy=default)
    assert not list(parsed.iter_attachments())
    text = parsed.get_body(("plain",)).get_content()
    links = re.findall(re.escape(BASE_URL) + r"[A-Za-z0-9_\-.]+", text)
    assert len(links) == 1 and "X-Amz" not in text  # no pre-signed URL that dies with the session token
    html = parsed.get_body(("html",)).get_content()
    assert links[0] in html
    response = open_link(links[0])
    assert response["statusCode"] == 302
    assert unquote(urlsplit(response["headers"]["Location"]).path).endswith(KEY)
