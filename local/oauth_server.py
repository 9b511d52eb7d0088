"""A loopback OAuth 2.0 token endpoint that answers as Microsoft Entra ID (the client-credentials grant, with a client
secret or a certificate's signed client assertion) and as Google (a service account's JWT bearer grant, at `/token`),
for the XOAUTH2 smarthost (`local.smarthost.SmtpServer(oauth=...)`), the tests and the local stack.

    tokens = TokenServer(ca, clients={"app-1": "s3cret"}).start()
    tokens.token_url                 # https://127.0.0.1:<port>/acme-tenant/oauth2/v2.0/token (certificate from `ca`)
    tokens.google_token_url          # https://127.0.0.1:<port>/token
    tokens.tokens_issued             # how many access tokens it gave out
    tokens.set_secret("app-1", "new")   # the admin created a new client secret (the old one stops working)
    tokens.add_certificate("app-1", cert_pem)  # ... or uploaded a certificate (Certificates & secrets)
    tokens.google.add_service_account(key)     # Google's side: local.google_oauth.GoogleWorkspace
    tokens.expire_all()              # every issued token stops validating (as if they had expired or been revoked)
    tokens.validate(token)           # the client id the token was issued to, or None; grant_of(token) says more
    tokens.stop()

Entra ID's failures have its shape: HTTP 400/401, JSON with `error`, `error_description` (`AADSTS<n>: ...` then Trace
ID, Correlation ID and Timestamp lines) and `error_codes`. A client assertion is checked as Entra ID does: the
certificate named by `x5t#S256` (or `x5t`) among the app's uploaded ones, the PS256 or RS256 signature, `iss` = `sub`
= client id, `aud` = this endpoint, `nbf`/`exp` with 5 minutes of skew. Google's answers: `local.google_oauth`.
Neither secrets, keys, assertions nor tokens are ever logged.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import http.server
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from local import serving
from local.ca import LocalCA
from local.google_oauth import LIFETIME as GOOGLE_LIFETIME
from local.google_oauth import GoogleWorkspace, Granted
from local.jwt_check import JwtRefused, decode, verify

EXCHANGE_ONLINE_SCOPE = "https://outlook.office365.com/.default"
MAX_BODY = 64 * 1024
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"
GOOGLE_TOKEN_PATH = "/token"
CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CLOCK_SKEW = 300  # seconds Entra ID allows on nbf and exp


class Grant(NamedTuple):
    """What an issued access token stands for: the app (Entra ID) or service account (Google) it was issued to,
    the mailbox it acts as (Google's `sub`; None for an app token), its scope and when it stops validating."""

    client_id: str
    subject: str | None
    scope: str
    valid_until: float


class _Certificate(NamedTuple):
    sha256: bytes
    sha1: bytes
    public_key: Any
    not_after: float


class TokenServer:
    """HTTPS on 127.0.0.1 (ephemeral port), threaded; see the module docstring.

    Args:
        ca: the local CA that issues this endpoint's certificate (for 127.0.0.1 and localhost).
        tenant: the one tenant this endpoint knows; any other answers AADSTS90002.
        clients: client id -> client secret; None: one client with a random id and secret (`client_id`,
            `client_secret`).
        lifetime: seconds, the `expires_in` of every token (Entra ID gives 3599).
        scope: the one scope accepted (Exchange Online's by default); another answers AADSTS70011.
    """

    def __init__(self, ca: LocalCA, *, tenant: str = "acme-tenant", clients: dict[str, str] | None = None,
                 lifetime: int = 3600, scope: str = EXCHANGE_ONLINE_SCOPE,
                 clock: Callable[[], float] = time.time) -> None:
        self.ca = ca
        self.tenant = tenant
        self.lifetime = lifetime
        self.scope = scope
        self.clock = clock  # the endpoint's own time: a test moves it to play a skewed relay clock
        if clients is None:
            clients = {f"app-{uuid.uuid4()}": secrets.token_urlsafe(24)}
        self._clients = dict(clients)
        self._certificates: dict[str, list[_Certificate]] = {}  # client id -> uploaded certificates
        self.google = GoogleWorkspace()
        self._tokens: dict[str, Grant] = {}
        self._issued: list[str] = []  # every token ever issued, for tests that prove none leaks
        self._lock = threading.Lock()
        self._cert = ca.issue(["127.0.0.1", "localhost"])
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.requests = 0
        self.tokens_issued = 0
        self.refused = 0

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> TokenServer:
        server = serving.with_tls(_QuietServer(("127.0.0.1", 0), _handler_for(self)), self._cert)
        self._server, self.port = server, server.server_address[1]
        self._thread = serving.serve(server, "local-oauth-token-server")
        return self

    def stop(self) -> None:
        server, thread, self._server, self._thread = self._server, self._thread, None, None
        serving.stop(server, thread)

    def __enter__(self) -> TokenServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        return f"https://127.0.0.1:{self.port}" + TOKEN_PATH.format(tenant=self.tenant)

    @property
    def google_token_url(self) -> str:
        return f"https://127.0.0.1:{self.port}{GOOGLE_TOKEN_PATH}"

    @property
    def ca_pem(self) -> str:
        return self.ca.pem

    @property
    def client_id(self) -> str:
        """The first client's id (the generated one when `clients` was not given)."""
        with self._lock:
            return next(iter(self._clients))

    @property
    def client_secret(self) -> str:
        with self._lock:
            return next(iter(self._clients.values()))

    def set_secret(self, client_id: str, secret: str) -> None:
        """Add the client or give it a new secret; the old secret is refused from now on (tokens already issued
        stay valid, as in Entra ID)."""
        with self._lock:
            self._clients[client_id] = secret

    def remove_client(self, client_id: str) -> None:
        with self._lock:
            self._clients.pop(client_id, None)
            self._certificates.pop(client_id, None)

    def add_certificate(self, client_id: str, certificate_pem: str) -> None:
        """Certificates & secrets > Certificates > Upload certificate: the app may sign client assertions with its
        key (the app is created if it has no client secret)."""
        certificate = x509.load_pem_x509_certificate(certificate_pem.encode("ascii"))
        der = certificate.public_bytes(Encoding.DER)
        entry = _Certificate(hashlib.sha256(der).digest(), hashlib.sha1(der).digest(),  # noqa: S324 (x5t is SHA-1)
                             certificate.public_key(), certificate.not_valid_after_utc.timestamp())
        with self._lock:
            self._clients.setdefault(client_id, "")
            self._certificates.setdefault(client_id, []).append(entry)

    def remove_certificate(self, client_id: str, certificate_pem: str) -> None:
        der = x509.load_pem_x509_certificate(certificate_pem.encode("ascii")).public_bytes(Encoding.DER)
        with self._lock:
            self._certificates[client_id] = [c for c in self._certificates.get(client_id, [])
                                             if c.sha256 != hashlib.sha256(der).digest()]

    def expire_all(self) -> None:
        """Every token issued so far stops validating."""
        with self._lock:
            self._tokens.clear()

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far, expired ones included (a test looks for them in logs and records)."""
        with self._lock:
            return list(self._issued)

    def validate(self, token: str) -> str | None:
        """The client id (or service account) `token` was issued to while it is valid, else None."""
        grant = self.grant_of(token)
        return grant.client_id if grant else None

    def grant_of(self, token: str) -> Grant | None:
        """What `token` was issued for while it is valid, else None."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or self.clock() >= found.valid_until:
            return None
        return found

    # -- the grant -------------------------------------------------------------------------------------------
    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Entra ID's answer to one token request: (HTTP status, JSON body)."""
        with self._lock:
            self.requests += 1
        if urlsplit(path).path == GOOGLE_TOKEN_PATH:
            return self._answer_google(form)
        parts = urlsplit(path).path.strip("/").split("/")
        if len(parts) != 4 or parts[1:] != ["oauth2", "v2.0", "token"]:
            return self._refuse(404, "invalid_request", 900561, "The endpoint only accepts POST requests. "
                                "Received a request to an unknown path.")
        if parts[0].lower() != self.tenant.lower():
            return self._refuse(400, "invalid_request", 90002, f"Tenant '{parts[0]}' not found. Check to make "
                                "sure you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return self._refuse(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant "
                                "type. Only client_credentials is accepted here.")
        client_id = form.get("client_id", "")
        with self._lock:
            expected = self._clients.get(client_id)
        if expected is None:
            return self._refuse(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' "
                                f"was not found in the directory '{self.tenant}'. This can happen if the "
                                "application has not been installed by the administrator of the tenant or "
                                "consented to by any user in the tenant.")
        if "client_assertion_type" in form or "client_assertion" in form:
            refused = self._check_assertion(client_id, form, path)
            if refused is not None:
                return refused
        elif not expected or not secrets.compare_digest(expected.encode(), form.get("client_secret", "").encode()):
            return self._refuse(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                "secret being sent in the request is the client secret value, not the client "
                                f"secret ID, for a secret added to app '{client_id}'.")
        if form.get("scope") != self.scope:
            return self._refuse(400, "invalid_scope", 70011, "The provided request must include a 'scope' input "
                                "parameter. The provided value for the input parameter 'scope' is not valid.")
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(48)  # opaque here; Entra's are JWTs
        self._issue(token, Grant(client_id, None, self.scope, self.clock() + self.lifetime))
        return 200, {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                     "access_token": token}

    def _issue(self, token: str, grant: Grant) -> None:
        with self._lock:
            self._tokens[token] = grant
            self._issued.append(token)
            self.tokens_issued += 1

    def _check_assertion(self, client_id: str, form: dict[str, str], path: str) -> tuple[int, dict[str, Any]] | None:
        """Entra ID's checks of a certificate's client assertion; None when it passes."""
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not assertion:
            return self._refuse(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
        try:
            header, claims = decode(assertion)
        except JwtRefused:
            return self._refuse(401, "invalid_client", 50027, "JWT token is invalid or malformed.")
        with self._lock:
            uploaded = list(self._certificates.get(client_id, []))
        thumbprint, certificate = self._named_certificate(header, uploaded)
        key_help = (f"Thumbprint of key used by client: '{thumbprint}', Please visit the Azure Portal, Graph "
                    f"Explorer or directly use MS Graph to see configured keys for app Id '{client_id}'.")
        if certificate is None:
            return self._refuse(401, "invalid_client", 700027, "Client assertion contains an invalid signature. "
                                f"[Reason - The key was not found., {key_help}]")
        now = self.clock()
        if now >= certificate.not_after:
            return self._refuse(401, "invalid_client", 700027, "Client assertion contains an invalid signature. "
                                f"[Reason - The key used is expired., {key_help}]")
        try:
            verify(assertion, certificate.public_key, ("PS256", "RS256"))
        except JwtRefused:
            return self._refuse(401, "invalid_client", 700027, "Client assertion contains an invalid signature. "
                                f"[Reason - Key was found, but use of the key to verify the signature failed., "
                                f"{key_help}]")
        if claims.get("iss") != client_id or claims.get("sub") != client_id:
            return self._refuse(401, "invalid_client", 700021, "Client assertion application identifier doesn't "
                                "match 'client_id' parameter. Review the documentation at "
                                "https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")
        if claims.get("aud") != f"https://127.0.0.1:{self.port}{urlsplit(path).path}":
            return self._refuse(401, "invalid_client", 50012, "Client assertion audience claim does not match "
                                "Realm issuer.")
        nbf, exp = claims.get("nbf", 0), claims.get("exp")
        if not isinstance(exp, int) or not isinstance(nbf, int) or not nbf - CLOCK_SKEW <= now < exp + CLOCK_SKEW:
            return self._refuse(401, "invalid_client", 700024, "Client assertion is not within its valid time "
                                f"range. Current time: {_iso(now)}, assertion valid from {_iso(nbf)}, expiry time "
                                f"of assertion {_iso(exp if isinstance(exp, int) else 0)}. Review the documentation "
                                "at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .")
        return None

    @staticmethod
    def _named_certificate(header: dict[str, Any],
                           uploaded: list[_Certificate]) -> tuple[str, _Certificate | None]:
        for name, field in (("x5t#S256", "sha256"), ("x5t", "sha1")):
            value = header.get(name)
            if not isinstance(value, str):
                continue
            try:
                digest = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            except (binascii.Error, ValueError):
                return "", None
            match = next((c for c in uploaded if getattr(c, field) == digest), None)
            return digest.hex().upper(), match
        return "", None

    def _answer_google(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        answer = self.google.answer(form, self.clock(), self.google_token_url)
        if not isinstance(answer, Granted):
            with self._lock:
                self.refused += 1
            return answer
        token = "ya29.c." + secrets.token_urlsafe(96)
        self._issue(token, Grant(answer.client_email, answer.subject, answer.scope, self.clock() + GOOGLE_LIFETIME))
        return 200, {"access_token": token, "expires_in": GOOGLE_LIFETIME, "token_type": "Bearer"}

    def _refuse(self, status: int, error: str, code: int, text: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.refused += 1
        trace, correlation = uuid.uuid4(), uuid.uuid4()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return status, {
            "error": error,
            "error_description": f"AADSTS{code}: {text}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}"
                                 f"\r\nTimestamp: {stamp}",
            "error_codes": [code], "timestamp": stamp, "trace_id": str(trace), "correlation_id": str(correlation),
            "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        }


def _iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that refused our certificate or hung up: its own error says so, no traceback here


def _handler_for(owner: TokenServer) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local-entra"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(min(length, MAX_BODY)).decode("utf-8", "replace")
            form = {name: values[0] for name, values in parse_qs(body, keep_blank_values=True).items()}
            if "application/x-www-form-urlencoded" not in (self.headers.get("Content-Type") or ""):
                form = {}
            status, data = owner.answer(self.path, form)
            self._send(status, data)

        def do_GET(self) -> None:
            self._send(405, {"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only "
                             "accepts POST requests.", "error_codes": [900561]})

        def _send(self, status: int, data: dict[str, Any]) -> None:
            payload = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line carries no secret, but nothing here needs it in the test output

    return Handler
