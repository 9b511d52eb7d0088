"""OAuth 2.0 access tokens for SMTP AUTH XOAUTH2, cached in the warm container until shortly before they expire:
- Microsoft Entra ID's client-credentials grant (RFC 6749 4.4) with the app's client secret, or with a client
  assertion signed by the app's certificate key (RFC 7523 2.2);
- Google's JWT bearer grant (RFC 7523 2.1) for a service account with domain-wide delegation, per mailbox.
Every request goes over verified HTTPS to `SmtpCredentials.token_url`, checked by `_checked_url`.

The client secret and the signing key are sent (or used) in the request only, and neither they, a signed assertion
nor a token appear in an error, a log line or a repr. `urllib`, `json` and the signing code are imported by the first
fetch: most relays never take this path (cold start).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from relaydesk import destinations
from relaydesk.credentials import OAuthGrant, SmtpCredentials
from relaydesk.errors import OAuthTokenError

EXPIRY_MARGIN_SECONDS = 300  # a token is renewed 5 minutes before Entra ID says it expires (clock skew, long batches)
MAX_CACHED_TOKENS = 256  # one per app and scope; a warm relay serves a few hundred OAuth addresses at most
TOKEN_TIMEOUT_SECONDS = 10.0  # under the SMTP connect timeout: one slow endpoint must not eat the batch
MAX_ERROR_CODE = 64  # RFC 6749 5.2 codes are short ASCII words; a longer `error` is cut, not echoed whole
MAX_RESPONSE_BYTES = 64 * 1024  # a token response is a few KiB (a JWT); more is not a token endpoint
# RFC 6749 5.2 error codes that mean the request or the app's credentials are wrong: asking again will not help.
CREDENTIAL_ERRORS = frozenset({"invalid_client", "unauthorized_client", "invalid_scope", "invalid_request",
                               "invalid_grant", "unsupported_grant_type"})
TRANSIENT_STATUSES = frozenset({408, 425, 429})  # and every 5xx: the endpoint may answer later
AADSTS = re.compile(r"\bAADSTS(\d{4,9})\b")
# Base64url segments joined by dots, the first a JSON object ("eyJ"): a JWT (a signed assertion, a token) or the start
# of one, should an endpoint echo it.
JWT_LIKE = re.compile(r"eyJ[\w-]{6,}\.[\w.-]*")

# What to do about the Entra ID codes an admin meets when setting up an app for SMTP AUTH (learn.microsoft.com,
# "Microsoft Entra authentication and authorization error codes").
ROTATE = "then store it with `relaydesk addresses rotate`"
AADSTS_ACTIONS = {
    "AADSTS7000215": ("The client secret is wrong: copy the secret's Value (not its Secret ID) from Entra ID > App "
                      f"registrations > the app > Certificates & secrets, {ROTATE}."),
    "AADSTS7000222": f"The client secret has expired: create a new one under Certificates & secrets, {ROTATE}.",
    "AADSTS700016": ("No app with this client id in the tenant: check the Application (client) ID and the Directory "
                     "(tenant) ID on the app's Overview page, and that an admin consented to it in this tenant."),
    "AADSTS90002": "The tenant was not found: check the Directory (tenant) ID (or the tenant's domain name).",
    "AADSTS900023": "The tenant id is malformed: use the Directory (tenant) ID GUID or the tenant's domain name.",
    "AADSTS70011": "The scope is not valid: use https://outlook.office365.com/.default for Exchange Online.",
    "AADSTS7000112": "The app is disabled in the tenant: enable it under Enterprise applications > Properties.",
    "AADSTS700027": ("Entra ID does not know the certificate that signed the request: upload its public part under "
                     f"the app's Certificates & secrets > Certificates, {ROTATE}."),
    "AADSTS700024": ("Entra ID found the signed request outside its validity time: check the relay's clock (NTP), "
                     "then try again."),
}
TRANSIENT_ACTION = ("Nothing to do: the notification is retried with a growing delay. If it lasts, check that the "
                    "relay can reach the token endpoint ({host}).")


class CachedToken(NamedTuple):
    value: str
    renew_at: float  # clock seconds


class TokenKey(NamedTuple):
    """A token is reused only for the same endpoint, app (or service account), scope, mailbox where the token is
    the mailbox's own (a service account's, per `sub`), and client secret or signing key (hashed: a rotated one gets
    a new token, and the secret itself is not kept as a key)."""

    token_url: str
    client_id: str
    scope: str
    subject: str
    secret_sha256: str

    @classmethod
    def of(cls, creds: SmtpCredentials) -> TokenKey:
        secret = creds.oauth_client_secret.get_secret_value() if creds.oauth_client_secret else ""
        if creds.oauth_grant is not OAuthGrant.CLIENT_SECRET:
            secret = creds.oauth_signing_key
        per_mailbox = creds.oauth_grant is OAuthGrant.SERVICE_ACCOUNT
        return cls(creds.token_url, creds.oauth_service_account or creds.oauth_client_id or "", creds.oauth_scope,
                   creds.username.lower() if per_mailbox else "",
                   hashlib.sha256(f"{creds.oauth_grant.value}:{secret}".encode()).hexdigest())


class Response(NamedTuple):
    status: int
    body: bytes


Fetch = Callable[[str, bytes, SmtpCredentials, float], Response]


class AccessTokens:
    """Access tokens per `TokenKey`, at most `max_size` (least recently used goes first), each until
    `expires_in - EXPIRY_MARGIN_SECONDS`. Thread-safe: the relay serves smarthost groups in threads."""

    def __init__(self, *, timeout: float = TOKEN_TIMEOUT_SECONDS, max_size: int = MAX_CACHED_TOKENS,
                 clock: Callable[[], float] = time.monotonic, fetch: Fetch | None = None,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._timeout = timeout
        self._max_size = max_size
        self._clock = clock
        self._wall_clock = wall_clock  # a signed assertion's iat/nbf/exp: the token endpoint compares them to UTC
        self._fetch = fetch or post_form
        self._tokens: OrderedDict[TokenKey, CachedToken] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._tokens)

    def cached(self, creds: SmtpCredentials) -> str | None:
        """The cached token for these credentials while it is still good, else None (no request)."""
        key = TokenKey.of(creds)
        with self._lock:
            entry = self._tokens.get(key)
            if entry is None:
                return None
            if self._clock() >= entry.renew_at:
                del self._tokens[key]
                return None
            self._tokens.move_to_end(key)
            return entry.value

    def token(self, creds: SmtpCredentials, *, fresh: bool = False) -> str:
        """An access token for `creds` (auth_kind oauth2): the cached one, or a new one from `creds.token_url`.
        `fresh` asks the endpoint even when one is cached and replaces it (after the smarthost refused it).
        Raises OAuthTokenError."""
        if not fresh:
            cached = self.cached(creds)
            if cached is not None:
                return cached
        url = _checked_url(creds.token_url)
        refused = destinations.token_url_refusal(url, creds.host)
        if refused is not None:
            raise OAuthTokenError(refused.message, oauth_error="destination_refused", action=refused.action)
        issued_at = self._clock()
        value, expires_in = _parse(self._fetch(url, _form(creds, self._wall_clock()), creds, self._timeout), creds)
        key = TokenKey.of(creds)
        with self._lock:
            self._tokens.pop(key, None)
            if expires_in > EXPIRY_MARGIN_SECONDS:  # a token about to expire is used once, not kept
                self._tokens[key] = CachedToken(value, issued_at + expires_in - EXPIRY_MARGIN_SECONDS)
                while len(self._tokens) > self._max_size:
                    self._tokens.popitem(last=False)
        return value

    def forget(self, creds: SmtpCredentials) -> None:
        with self._lock:
            self._tokens.pop(TokenKey.of(creds), None)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


_shared: AccessTokens | None = None
_shared_lock = threading.Lock()


def shared_tokens() -> AccessTokens:
    """The warm container's one token cache (the relay's connections and the live check share it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = AccessTokens()
        return _shared


def _host(url: str) -> str:
    return urlsplit(url).hostname or "the token endpoint"


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() != "https" or not parts.hostname:
        # The client secret would cross the network in clear: nothing is sent.
        raise OAuthTokenError(
            f"the token URL must be an https:// URL, not {parts.scheme or 'a relative'}://; nothing was sent",
            oauth_error="insecure_token_url",
            action="Set oauth_token_url to the https:// token endpoint (or leave it empty for Entra ID's).")
    return url


def _form(creds: SmtpCredentials, now: float) -> bytes:
    from urllib.parse import urlencode

    if creds.oauth_grant is not OAuthGrant.CLIENT_SECRET:
        from relaydesk.oauth_jwt import assertion_form

        return urlencode(assertion_form(creds, now)).encode("ascii")
    secret = creds.oauth_client_secret.get_secret_value() if creds.oauth_client_secret else ""
    return urlencode({"grant_type": "client_credentials", "client_id": creds.oauth_client_id or "",
                      "client_secret": secret, "scope": creds.oauth_scope}).encode("ascii")


def post_form(url: str, body: bytes, creds: SmtpCredentials, timeout: float) -> Response:
    """The token request (public: the live check also reads a grant's `expires_in`). POSTs the form over HTTPS
    verified against the system store plus the address's CA bundle; no redirect is followed (it could carry the
    request elsewhere). HTTP errors come back as a Response; a network failure raises a transient OAuthTokenError."""
    import urllib.error
    import urllib.request

    from relaydesk.outbound.tls import client_tls_context

    class _NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx is then an HTTPError, answered below as a refusal

    # Connects only to the token host's checked addresses (never loopback, link-local or private, unless allowed).
    opener = urllib.request.build_opener(
        destinations.CheckedHTTPSHandler(client_tls_context(creds.ca_bundle_pem)), _NoRedirect())
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 (https only: _checked_url)
        "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
    try:
        with opener.open(request, timeout=timeout) as reply:
            return Response(reply.status, reply.read(MAX_RESPONSE_BYTES))
    except urllib.error.HTTPError as error:
        with error:
            return Response(error.code, error.read(MAX_RESPONSE_BYTES))
    except (urllib.error.URLError, OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, destinations.DestinationRefused):
            raise OAuthTokenError(reason.message, oauth_error="destination_refused", action=reason.action) from None
        if _is_certificate_error(reason):
            raise OAuthTokenError(
                f"the certificate of the token endpoint {_host(url)} did not verify", oauth_error="certificate_invalid",
                transient=True,  # deferred, as a smarthost's bad certificate is (outbound/policy.py)
                action="Use the token endpoint's host name on its certificate, or configure the CA bundle that "
                       "issued it.") from None
        raise OAuthTokenError(f"could not reach the token endpoint {_host(url)}: {type(reason).__name__}",
                              transient=True, action=TRANSIENT_ACTION.format(host=_host(url))) from None


def _is_certificate_error(reason: object) -> bool:
    import ssl

    return isinstance(reason, ssl.SSLCertVerificationError)


def _parse(response: Response, creds: SmtpCredentials) -> tuple[str, int]:
    import json

    url = creds.token_url
    try:
        data = json.loads(response.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        data = None
    if not isinstance(data, dict):
        data = {}
    if response.status == 200:
        token = data.get("access_token")
        try:
            expires_in = int(data.get("expires_in", 0))  # Entra ID v1 sent it as a string
        except (TypeError, ValueError):
            expires_in = 0
        if isinstance(token, str) and token:
            return token, expires_in
        raise OAuthTokenError(f"the token endpoint {_host(url)} answered 200 without an access token",
                              http_status=200, transient=True, action=TRANSIENT_ACTION.format(host=_host(url)))
    raise _error(response.status, data, creds)


def _error(status: int, data: dict[str, Any], creds: SmtpCredentials) -> OAuthTokenError:
    host = _host(creds.token_url)
    oauth_error = data["error"][:MAX_ERROR_CODE] if isinstance(data.get("error"), str) else None
    description = _first_line(data.get("error_description"), creds)
    aadsts = _aadsts(data, description)
    transient = status >= 500 or status in TRANSIENT_STATUSES
    said = ": ".join(part for part in (oauth_error, description) if part) or "no error given"
    if transient:
        return OAuthTokenError(f"the token endpoint {host} failed ({status}): {said}", oauth_error=oauth_error,
                               aadsts=aadsts, http_status=status, transient=True,
                               action=TRANSIENT_ACTION.format(host=host))
    if creds.oauth_grant is OAuthGrant.SERVICE_ACCOUNT:
        from relaydesk.addresses.explain import explain_google_token_error

        fix = explain_google_token_error(oauth_error or "", description, service_account=creds.oauth_service_account
                                         or "", client_id=creds.oauth_client_id or "", mailbox=creds.username).fix
        return OAuthTokenError(
            f"the token endpoint {host} refused the service account {creds.oauth_service_account} for the mailbox "
            f"{creds.username} ({status}): {said}", oauth_error=oauth_error, http_status=status, action=fix,
            description=description)
    app = creds.oauth_client_id or "(no client id)"
    action = AADSTS_ACTIONS.get(aadsts or "")
    if action is None and oauth_error not in CREDENTIAL_ERRORS:
        action = (f"The token endpoint refused the request ({status}): check oauth_token_url (or the tenant id) "
                  f"and the app's settings, {ROTATE}.")
    what = "certificate" if creds.oauth_grant is OAuthGrant.CLIENT_CERTIFICATE else "client credentials"
    return OAuthTokenError(f"the token endpoint {host} refused the {what} of app {app} ({status}): {said}",
                           oauth_error=oauth_error, aadsts=aadsts, http_status=status, action=action,
                           description=description)


def _aadsts(data: dict[str, Any], description: str) -> str | None:
    codes = data.get("error_codes")
    if isinstance(codes, list) and codes and isinstance(codes[0], int):
        return f"AADSTS{codes[0]}"
    match = AADSTS.search(description)
    return f"AADSTS{match.group(1)}" if match else None


def _first_line(description: object, creds: SmtpCredentials) -> str:
    """Entra ID's description up to its Trace ID line, bounded, with the client secret and anything shaped like a
    JWT (an assertion, a token) blanked should an endpoint ever echo them."""
    if not isinstance(description, str):
        return ""
    text = description.strip().splitlines()[0] if description.strip() else ""
    secret = creds.oauth_client_secret.get_secret_value() if creds.oauth_client_secret else ""
    text = text.replace(secret, "***") if secret else text
    return JWT_LIKE.sub("***", text)[:300]
