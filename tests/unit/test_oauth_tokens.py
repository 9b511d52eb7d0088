"""Access tokens from the client-credentials grant: asked for once, reused until shortly before they expire, kept
per app and client secret, and every failure typed with Entra ID's code and never the secret. No sockets: the
HTTPS exchange is a fake endpoint (the real one is tested in tests/integration/test_relay_oauth.py)."""

from __future__ import annotations

import asyncio
import json
import threading
from urllib.parse import parse_qs

import aiosmtplib
import pytest
from relaydesk.credentials import AuthKind, SmtpCredentials
from relaydesk.errors import (
    AuthenticationFailedError,
    AuthMechanismUnavailableError,
    OAuthTokenError,
    OAuthTokenRefusedError,
    OAuthTokenUnavailableError,
    TlsRequiredError,
)
from relaydesk.oauth import EXPIRY_MARGIN_SECONDS, AccessTokens, Response
from relaydesk.outbound.auth import authenticate

SECRET = "Client~Secret~Value~1"


def creds(secret: str = SECRET, **overrides) -> SmtpCredentials:
    values = dict(host="smtp.office365.com", username="support@acme.com", auth_kind=AuthKind.OAUTH2,
                  oauth_tenant_id="acme-tenant", oauth_client_id="app-1", oauth_client_secret=secret)
    values.update(overrides)
    return SmtpCredentials(**values)


class Endpoint:
    """A fake token endpoint: records each request, answers from `answers` (else a new token)."""

    def __init__(self, expires_in: int | str = 3599) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.answers: list[Response] = []
        self.expires_in = expires_in
        self._lock = threading.Lock()

    def __call__(self, url: str, body: bytes, creds: SmtpCredentials, timeout: float) -> Response:
        with self._lock:
            form = {name: values[0] for name, values in parse_qs(body.decode()).items()}
            self.requests.append((url, form))
            if self.answers:
                return self.answers.pop(0)
            token = f"token-{len(self.requests)}"
        return Response(200, json.dumps({"token_type": "Bearer", "expires_in": self.expires_in,
                                         "access_token": token}).encode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def entra_error(status: int, error: str, code: int, text: str) -> Response:
    return Response(status, json.dumps({
        "error": error, "error_codes": [code],
        "error_description": f"AADSTS{code}: {text}\r\nTrace ID: 0f\r\nCorrelation ID: 1a\r\nTimestamp: 2026-11-25",
    }).encode())


# --- the request ----------------------------------------------------------------------------------------------------

def test_the_grant_posts_client_credentials_and_exchanges_scope_to_the_tenants_endpoint():
    endpoint = Endpoint()

    assert AccessTokens(fetch=endpoint).token(creds()) == "token-1"

    [(url, form)] = endpoint.requests
    assert url == "https://login.microsoftonline.com/acme-tenant/oauth2/v2.0/token"
    assert form == {"grant_type": "client_credentials", "client_id": "app-1", "client_secret": SECRET,
                    "scope": "https://outlook.office365.com/.default"}


def test_an_http_token_url_is_refused_before_any_request():
    endpoint = Endpoint()

    with pytest.raises(OAuthTokenError, match="https://") as raised:
        AccessTokens(fetch=endpoint).token(creds(oauth_token_url="http://login.example.test/token"))

    assert endpoint.requests == [] and not raised.value.transient


# --- the cache ------------------------------------------------------------------------------------------------------

def test_a_token_is_reused_until_five_minutes_before_it_expires_then_asked_for_again():
    endpoint, clock = Endpoint(expires_in=3600), Clock()
    tokens = AccessTokens(fetch=endpoint, clock=clock)

    first = tokens.token(creds())
    clock.now += 3600 - EXPIRY_MARGIN_SECONDS - 1
    assert tokens.token(creds()) == first and len(endpoint.requests) == 1
    clock.now += 1
    assert tokens.token(creds()) == "token-2" and len(endpoint.requests) == 2


def test_fresh_asks_the_endpoint_again_and_replaces_the_cached_token():
    endpoint = Endpoint()
    tokens = AccessTokens(fetch=endpoint)
    tokens.token(creds())

    assert tokens.token(creds(), fresh=True) == "token-2"
    assert tokens.token(creds()) == "token-2" and len(endpoint.requests) == 2


def test_a_rotated_client_secret_gets_its_own_token_and_the_secret_is_not_the_key():
    endpoint = Endpoint()
    tokens = AccessTokens(fetch=endpoint)

    assert tokens.token(creds()) == "token-1"
    assert tokens.token(creds("Rotated~Secret~2")) == "token-2"
    assert tokens.token(creds()) == "token-1"
    assert SECRET not in repr(tokens._tokens)  # keyed on the secret's SHA-256


def test_the_cache_is_bounded_and_the_least_recently_used_token_goes_first():
    endpoint = Endpoint()
    tokens = AccessTokens(fetch=endpoint, max_size=2)
    tokens.token(creds(oauth_client_id="app-a"))
    tokens.token(creds(oauth_client_id="app-b"))
    tokens.token(creds(oauth_client_id="app-a"))  # used again: app-b is now the oldest
    tokens.token(creds(oauth_client_id="app-c"))

    assert len(tokens) == 2
    assert tokens.cached(creds(oauth_client_id="app-a")) == "token-1"
    assert tokens.cached(creds(oauth_client_id="app-b")) is None


def test_a_token_about_to_expire_is_used_once_and_not_kept():
    endpoint = Endpoint(expires_in=EXPIRY_MARGIN_SECONDS)
    tokens = AccessTokens(fetch=endpoint)

    assert tokens.token(creds()) == "token-1" and len(tokens) == 0


def test_expires_in_sent_as_a_string_as_entras_v1_endpoint_does_still_caches():
    tokens = AccessTokens(fetch=Endpoint(expires_in="3599"))
    tokens.token(creds())

    assert tokens.cached(creds()) == "token-1"


def test_threads_of_one_batch_share_the_cache_safely():
    endpoint = Endpoint()
    tokens = AccessTokens(fetch=endpoint)
    apps = [creds(oauth_client_id=f"app-{n % 4}") for n in range(40)]
    got: list[str] = []

    def work(c: SmtpCredentials) -> None:
        got.append(tokens.token(c))

    threads = [threading.Thread(target=work, args=(c,)) for c in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(got) == 40 and len(tokens) == 4
    assert all(tokens.cached(c) is not None for c in apps)


# --- failures -------------------------------------------------------------------------------------------------------

def test_a_wrong_client_secret_is_a_credentials_problem_with_the_aadsts_code_and_what_to_do():
    endpoint = Endpoint()
    endpoint.answers.append(entra_error(401, "invalid_client", 7000215, "Invalid client secret provided."))

    with pytest.raises(OAuthTokenError) as raised:
        AccessTokens(fetch=endpoint).token(creds())

    error = raised.value
    assert (error.transient, error.oauth_error, error.aadsts, error.http_status) == (
        False, "invalid_client", "AADSTS7000215", 401)
    assert "AADSTS7000215: Invalid client secret provided." in error.message and "Trace ID" not in error.message
    assert "Value" in error.action


@pytest.mark.parametrize(("status", "error", "code", "aadsts"), [
    (400, "unauthorized_client", 700016, "AADSTS700016"),
    (400, "invalid_request", 90002, "AADSTS90002"),
    (400, "invalid_scope", 70011, "AADSTS70011"),
])
def test_other_refusals_are_credentials_problems_too(status, error, code, aadsts):
    endpoint = Endpoint()
    endpoint.answers.append(entra_error(status, error, code, "Refused."))

    with pytest.raises(OAuthTokenError) as raised:
        AccessTokens(fetch=endpoint).token(creds())

    assert not raised.value.transient and raised.value.aadsts == aadsts and raised.value.action


@pytest.mark.parametrize("answer", [Response(503, b"<html>Service Unavailable</html>"),
                                    Response(500, b'{"error":"temporarily_unavailable"}'),
                                    Response(429, b""), Response(200, b'{"token_type":"Bearer"}')])
def test_server_errors_throttling_and_a_reply_without_a_token_are_transient(answer):
    endpoint = Endpoint()
    endpoint.answers.append(answer)

    with pytest.raises(OAuthTokenError) as raised:
        AccessTokens(fetch=endpoint).token(creds())

    assert raised.value.transient


def test_a_failure_is_not_cached_and_an_endpoint_that_echoes_the_secret_does_not_leak_it():
    endpoint = Endpoint()
    endpoint.answers.append(entra_error(401, "invalid_client", 7000215, f"Secret {SECRET} is wrong."))
    tokens = AccessTokens(fetch=endpoint)

    with pytest.raises(OAuthTokenError) as raised:
        tokens.token(creds())

    assert SECRET not in str(raised.value) and SECRET not in repr(raised.value.__dict__)
    assert tokens.token(creds()) == "token-2"  # asked again: a refusal is not remembered


# --- authenticate ---------------------------------------------------------------------------------------------------

class FakeSmtp:
    """What `authenticate` needs of aiosmtplib.SMTP; records what would have been sent."""

    def __init__(self, *, tls: bool = True, refuse: str | None = None) -> None:
        self.is_connected = True
        self.tls = tls
        self.refuse = refuse
        self.sent: list[tuple[str, str]] = []

    def get_transport_info(self, key: str) -> object:
        return object() if key == "sslcontext" and self.tls else None

    async def auth_xoauth2(self, username: str, token: str) -> None:
        self.sent.append(("XOAUTH2", username))
        if self.refuse:
            raise aiosmtplib.SMTPAuthenticationError(535, self.refuse)

    async def auth_plain(self, username: str, password: str) -> None:
        self.sent.append(("PLAIN", username))
        if self.refuse:
            raise aiosmtplib.SMTPAuthenticationError(535, self.refuse)

    async def auth_login(self, username: str, password: str) -> None:
        self.sent.append(("LOGIN", username))
        if self.refuse:
            raise aiosmtplib.SMTPAuthenticationError(535, self.refuse)

    async def login(self, username: str, password: str) -> None:  # aiosmtplib's walk through every mechanism
        raise AssertionError("login() tries one mechanism after another; authenticate must pick one")


OFFERED = ("XOAUTH2", "PLAIN", "LOGIN")


def test_xoauth2_sends_the_mailbox_with_a_token_over_tls():
    smtp, endpoint = FakeSmtp(), Endpoint()

    asyncio.run(authenticate(smtp, creds(), AccessTokens(fetch=endpoint), offered=OFFERED))

    assert smtp.sent == [("XOAUTH2", "support@acme.com")] and len(endpoint.requests) == 1


def test_without_tls_nothing_is_sent_and_no_token_is_asked_for():
    smtp, endpoint = FakeSmtp(tls=False), Endpoint()

    with pytest.raises(TlsRequiredError):
        asyncio.run(authenticate(smtp, creds(), AccessTokens(fetch=endpoint), offered=OFFERED))

    assert smtp.sent == [] and endpoint.requests == []


def test_a_refused_token_is_an_authentication_failure_with_exchanges_fix():
    smtp = FakeSmtp(refuse="5.7.3 Authentication unsuccessful")

    with pytest.raises(AuthenticationFailedError) as raised:
        asyncio.run(authenticate(smtp, creds(), AccessTokens(fetch=Endpoint()), offered=OFFERED))

    assert raised.value.server_reply == "535 5.7.3 Authentication unsuccessful"
    assert "Add-MailboxPermission" in raised.value.action


def test_token_endpoint_refusals_hold_and_outages_defer():
    refusing, down = Endpoint(), Endpoint()
    refusing.answers.append(entra_error(401, "invalid_client", 7000215, "Invalid client secret provided."))
    down.answers.append(Response(503, b""))

    with pytest.raises(OAuthTokenRefusedError) as refused:
        asyncio.run(authenticate(FakeSmtp(), creds(), AccessTokens(fetch=refusing), offered=OFFERED))
    with pytest.raises(OAuthTokenUnavailableError) as unavailable:
        asyncio.run(authenticate(FakeSmtp(), creds(), AccessTokens(fetch=down), offered=OFFERED))

    assert isinstance(refused.value, AuthenticationFailedError) and refused.value.token_error.aadsts == "AADSTS7000215"
    assert isinstance(unavailable.value, ConnectionError) and unavailable.value.token_error.transient


PASSWORD_CREDS = SmtpCredentials(host="smtp.acme.test", username="u@acme.test", password="pw")


@pytest.mark.parametrize(("offered", "used"), [(("CRAM-MD5", "PLAIN", "LOGIN"), "PLAIN"), (("LOGIN",), "LOGIN"),
                                               (("LOGIN", "PLAIN"), "PLAIN")])
def test_a_password_goes_with_plain_unless_the_server_lacks_it(offered, used):
    smtp = FakeSmtp()

    assert asyncio.run(authenticate(smtp, PASSWORD_CREDS, AccessTokens(fetch=Endpoint()), offered=offered)) == used

    assert smtp.sent == [(used, "u@acme.test")]


def test_a_refused_password_is_one_failed_login_whatever_else_the_server_offers():
    smtp = FakeSmtp(refuse="5.7.8 Error: authentication failed")

    with pytest.raises(AuthenticationFailedError) as raised:
        asyncio.run(authenticate(smtp, PASSWORD_CREDS, AccessTokens(fetch=Endpoint()),
                                 offered=("CRAM-MD5", "DIGEST-MD5", "PLAIN", "LOGIN")))

    assert smtp.sent == [("PLAIN", "u@acme.test")] and raised.value.smtp_code == 535


@pytest.mark.parametrize(("credentials", "offered"), [(PASSWORD_CREDS, ("CRAM-MD5",)), (PASSWORD_CREDS, ()),
                                                      ("oauth", ("PLAIN", "LOGIN"))])
def test_without_a_usable_mechanism_nothing_is_sent(credentials, offered):
    smtp, endpoint = FakeSmtp(), Endpoint()
    credentials = creds() if credentials == "oauth" else credentials

    with pytest.raises(AuthMechanismUnavailableError) as raised:
        asyncio.run(authenticate(smtp, credentials, AccessTokens(fetch=endpoint), offered=offered))

    assert smtp.sent == [] and endpoint.requests == []
    assert isinstance(raised.value, AuthenticationFailedError) and "no credentials were sent" in raised.value.message
