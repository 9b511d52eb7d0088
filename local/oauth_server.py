"""A loopback OAuth 2.0 token endpoint that answers the client-credentials grant as Microsoft Entra ID does, for the
XOAUTH2 smarthost (`local.smarthost.SmtpServer(oauth=...)`), the tests and the local stack.

    tokens = TokenServer(ca, clients={"app-1": "s3cret"}).start()
    tokens.token_url                 # https://127.0.0.1:<port>/acme-tenant/oauth2/v2.0/token (certificate from `ca`)
    tokens.tokens_issued             # how many access tokens it gave out
    tokens.set_secret("app-1", "new")   # the admin created a new client secret (the old one stops working)
    tokens.expire_all()              # every issued token stops validating (as if they had expired or been revoked)
    tokens.validate(token)           # the client id the token was issued to, or None
    tokens.stop()

Failures have Entra ID's shape: HTTP 400/401, JSON with `error`, `error_description` (`AADSTS<n>: ...` then Trace
ID, Correlation ID and Timestamp lines) and `error_codes`. Neither secrets nor tokens are ever logged.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import secrets
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from local.ca import LocalCA

EXCHANGE_ONLINE_SCOPE = "https://outlook.office365.com/.default"
MAX_BODY = 64 * 1024
TOKEN_PATH = "/{tenant}/oauth2/v2.0/token"


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
                 lifetime: int = 3600, scope: str = EXCHANGE_ONLINE_SCOPE) -> None:
        self.ca = ca
        self.tenant = tenant
        self.lifetime = lifetime
        self.scope = scope
        if clients is None:
            clients = {f"app-{uuid.uuid4()}": secrets.token_urlsafe(24)}
        self._clients = dict(clients)
        self._tokens: dict[str, tuple[str, float]] = {}  # access token -> (client id, valid until)
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
        server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        # The TLS handshake happens in the request's thread (on first read), so a stalled client cannot block
        # the accept loop.
        server.socket = self._cert.server_context().wrap_socket(server.socket, server_side=True,
                                                                do_handshake_on_connect=False)
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="local-oauth-token-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> TokenServer:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests use --------------------------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        return f"https://127.0.0.1:{self.port}" + TOKEN_PATH.format(tenant=self.tenant)

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

    def expire_all(self) -> None:
        """Every token issued so far stops validating."""
        with self._lock:
            self._tokens.clear()

    def issued_tokens(self) -> list[str]:
        """Every access token issued so far, expired ones included (a test looks for them in logs and records)."""
        with self._lock:
            return list(self._issued)

    def validate(self, token: str) -> str | None:
        """The client id `token` was issued to while it is valid, else None."""
        with self._lock:
            found = self._tokens.get(token)
        if found is None or time.time() >= found[1]:
            return None
        return found[0]

    # -- the grant -------------------------------------------------------------------------------------------
    def answer(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Entra ID's answer to one token request: (HTTP status, JSON body)."""
        with self._lock:
            self.requests += 1
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
        if not secrets.compare_digest(expected.encode(), form.get("client_secret", "").encode()):
            return self._refuse(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                "secret being sent in the request is the client secret value, not the client "
                                f"secret ID, for a secret added to app '{client_id}'.")
        if form.get("scope") != self.scope:
            return self._refuse(400, "invalid_scope", 70011, "The provided request must include a 'scope' input "
                                "parameter. The provided value for the input parameter 'scope' is not valid.")
        token = "eyJ0eXAiOiJKV1Qi." + secrets.token_urlsafe(48)  # opaque here; Entra's are JWTs
        with self._lock:
            self._tokens[token] = (client_id, time.time() + self.lifetime)
            self._issued.append(token)
            self.tokens_issued += 1
        return 200, {"token_type": "Bearer", "expires_in": self.lifetime, "ext_expires_in": self.lifetime,
                     "access_token": token}

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
