"""The OAuth test kit behaves like Microsoft Entra ID and Exchange Online: client-credentials tokens over HTTPS with
Entra's errors, and a smarthost that takes them with AUTH XOAUTH2 only after TLS."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.parse
import urllib.request

import aiosmtplib
import pytest
from relaydesk.outbound.tls import client_tls_context

MAILBOX = "support@acme.test"
SCOPE = "https://outlook.office365.com/.default"


def post(server, form: dict[str, str], *, url: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url or server.token_url, data=urllib.parse.urlencode(form).encode(),  # noqa: S310
                                     headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5, context=client_tls_context(server.ca_pem)) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def grant(server, **overrides) -> dict[str, str]:
    return {"grant_type": "client_credentials", "client_id": server.client_id, "client_secret": server.client_secret,
            "scope": SCOPE, **overrides}


def test_the_right_client_secret_gets_a_bearer_token_that_validates_for_its_client(token_server):
    status, body = post(token_server, grant(token_server))

    assert status == 200
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]
    assert token_server.validate(body["access_token"]) == token_server.client_id
    assert token_server.tokens_issued == 1


@pytest.mark.parametrize(("change", "status", "error", "code"), [
    ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
    ({"client_id": "no-such-app"}, 400, "unauthorized_client", 700016),
    ({"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 70011),
    ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
])
def test_refusals_have_entra_ids_status_error_and_aadsts_code(token_server, change, status, error, code):
    got_status, body = post(token_server, grant(token_server, **change))

    assert (got_status, body["error"], body["error_codes"]) == (status, error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert "\r\nTrace ID: " in body["error_description"]
    assert token_server.tokens_issued == 0


def test_an_unknown_tenant_is_aadsts90002(token_server):
    status, body = post(token_server, grant(token_server),
                        url=token_server.token_url.replace("/acme-tenant/", "/other-tenant/"))

    assert (status, body["error_codes"]) == (400, [90002])


def test_a_new_client_secret_replaces_the_old_one_and_expire_all_invalidates_issued_tokens(token_server):
    _, first = post(token_server, grant(token_server))
    old_secret = token_server.client_secret
    token_server.set_secret(token_server.client_id, "the-new-secret")

    assert post(token_server, grant(token_server, client_secret=old_secret))[0] == 401
    assert post(token_server, grant(token_server, client_secret="the-new-secret"))[0] == 200
    assert token_server.validate(first["access_token"]) == token_server.client_id  # issued tokens live on
    token_server.expire_all()
    assert token_server.validate(first["access_token"]) is None


def test_the_endpoint_speaks_https_only_with_a_certificate_from_the_local_ca(token_server):
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        urllib.request.urlopen(token_server.token_url.replace("https://", "http://"), timeout=5)  # noqa: S310
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(token_server.token_url, data=b"", timeout=5,  # noqa: S310
                               context=client_tls_context(None))  # the system store does not know the local CA


async def _xoauth2(server, mailbox: str, token: str, *, starttls: bool = True):
    client = aiosmtplib.SMTP(hostname=server.host, port=server.port, timeout=5, start_tls=False,
                             tls_context=client_tls_context(server.ca_pem))
    await client.connect()
    try:
        if starttls:
            await client.starttls()
        await client.ehlo()
        advertised = "xoauth2" in client.server_auth_methods
        try:
            reply = await client.auth_xoauth2(mailbox, token)
        except aiosmtplib.SMTPResponseException as error:
            return advertised, f"{error.code} {error.message}"
        await client.sendmail(mailbox, ["alice@example.test"], b"Subject: hi\r\n\r\nbody\r\n")
        return advertised, f"{reply.code} {reply.message}"
    finally:
        client.close()


def token_for(server) -> str:
    return post(server, grant(server))[1]["access_token"]


def test_smarthost_accepts_a_valid_token_for_an_allowed_mailbox_and_records_the_mailbox(make_smarthost, token_server):
    host = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {MAILBOX}})

    advertised, reply = asyncio.run(_xoauth2(host, MAILBOX, token_for(token_server)))

    assert advertised and reply.startswith("235")
    assert host.received[0].auth_user == MAILBOX
    assert (host.stats.auth_attempts, host.stats.auth_failures) == (1, 0)


@pytest.mark.parametrize("case", ["other mailbox", "expired token", "made-up token"])
def test_smarthost_answers_exchanges_535_5_7_3_to_a_token_it_does_not_accept(make_smarthost, token_server, case):
    host = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {MAILBOX}})
    token = token_for(token_server)
    mailbox = "ceo@acme.test" if case == "other mailbox" else MAILBOX
    if case == "expired token":
        token_server.expire_all()
    if case == "made-up token":
        token = "eyJ0eXAiOiJKV1Qi.forged"

    _, reply = asyncio.run(_xoauth2(host, mailbox, token))

    assert reply == "535 5.7.3 Authentication unsuccessful"
    assert host.received == [] and (host.stats.auth_attempts, host.stats.auth_failures) == (1, 1)


def test_xoauth2_is_offered_only_after_tls_and_only_with_a_token_endpoint(make_smarthost, token_server):
    with_oauth = make_smarthost(oauth=token_server, oauth_mailboxes={token_server.client_id: {MAILBOX}},
                                require_tls=False)
    without = make_smarthost()

    advertised_in_clear, reply_in_clear = asyncio.run(_xoauth2(with_oauth, MAILBOX, token_for(token_server),
                                                               starttls=False))
    advertised_without, _ = asyncio.run(_xoauth2(without, MAILBOX, token_for(token_server)))

    assert not advertised_in_clear and reply_in_clear.startswith("538")
    assert not advertised_without
    assert with_oauth.stats.auth_attempts == 0
