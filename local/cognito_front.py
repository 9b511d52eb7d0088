"""Cognito's public endpoint for the browser, on loopback HTTPS: what `https://cognito-idp.<region>.amazonaws.com/`
does for the admin console, in front of moto's Cognito (which keeps the users, groups and tokens).

Two things moto does not do are done here, as Cognito does them: CORS (the console calls Cognito from its own
origin), and the password check of an SRP sign-in. moto answers USER_SRP_AUTH with random numbers and accepts any
PASSWORD_VERIFIER; this front computes the real challenge (local/cognito_srp.py) from the user's password in moto's
store and refuses a wrong proof with Cognito's own answer before moto issues tokens. Every other call passes through.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from typing import Any

from local import serving
from local.ca import LocalCA
from local.cognito_srp import Challenge

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
MAX_CHALLENGES = 1000  # sign-ins in progress; the oldest is forgotten first
CHALLENGE_SECONDS = 300
ALLOWED_HEADERS = "content-type, x-amz-target, x-amz-user-agent, cache-control"


def _error(kind: str, message: str) -> tuple[int, dict]:
    return 400, {"__type": kind, "message": message}


class CognitoFront:
    def __init__(self, ca: LocalCA, *, moto_endpoint: str, account_id: str = "123456789012",
                 region: str = "us-east-1") -> None:
        self.moto_endpoint = moto_endpoint.rstrip("/") + "/"
        self.account_id = account_id
        self.region = region
        self._cert = ca.issue(["127.0.0.1", "localhost"], label="cognito-front")
        self._challenges: OrderedDict[str, tuple[Challenge, str, str, float]] = OrderedDict()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.host, self.port = "127.0.0.1", 0
        self.refused = 0  # wrong passwords refused here

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    def start(self) -> CognitoFront:
        server = serving.with_tls(_Server((self.host, 0), _handler_for(self)), self._cert)
        self._server, self.port = server, server.server_address[1]
        self._thread = serving.serve(server, "cognito-front")
        return self

    def stop(self) -> None:
        serving.stop(self._server, self._thread)
        self._server = self._thread = None

    # -- one call --------------------------------------------------------------------------------------------------
    def call(self, target: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        operation = target.removeprefix(TARGET_PREFIX)
        if operation == "InitiateAuth" and body.get("AuthFlow") == "USER_SRP_AUTH":
            return self._start_srp(target, body, headers)
        if operation == "RespondToAuthChallenge" and body.get("ChallengeName") == "PASSWORD_VERIFIER":
            return self._finish_srp(target, body, headers)
        return self._moto(target, body, headers)

    def _start_srp(self, target: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        status, answer = self._moto(target, body, headers)  # moto checks the client, the user and its state
        if status != 200 or answer.get("ChallengeName") != "PASSWORD_VERIFIER":
            return status, answer
        parameters = answer["ChallengeParameters"]
        user = self._user(body.get("ClientId", ""), parameters["USER_ID_FOR_SRP"])
        if user is None:
            return _error("NotAuthorizedException", "Incorrect username or password.")
        pool_id, password = user
        try:
            challenge, salt = Challenge.start(pool_id, parameters["USER_ID_FOR_SRP"], password or "",
                                              str(body.get("AuthParameters", {}).get("SRP_A", "")))
        except ValueError:
            return _error("InvalidParameterException", "SRP_A is not a valid SRP value.")
        with self._lock:
            self._challenges[challenge.secret_block] = (challenge, parameters["SECRET_BLOCK"],
                                                        parameters["USERNAME"], time.monotonic())
            while len(self._challenges) > MAX_CHALLENGES:
                self._challenges.popitem(last=False)
        parameters.update(SALT=format(salt, "x"), SRP_B=format(challenge.big_b, "x"),
                          SECRET_BLOCK=challenge.secret_block)
        return status, answer

    def _finish_srp(self, target: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        responses = dict(body.get("ChallengeResponses") or {})
        with self._lock:
            kept = self._challenges.pop(str(responses.get("PASSWORD_CLAIM_SECRET_BLOCK", "")), None)
        if kept is None or time.monotonic() - kept[3] > CHALLENGE_SECONDS:
            return _error("NotAuthorizedException", "Invalid session for the user, session is expired.")
        challenge, moto_session, username, _ = kept
        if not challenge.verify(str(responses.get("PASSWORD_CLAIM_SIGNATURE", "")),
                                str(responses.get("TIMESTAMP", ""))):
            self.refused += 1
            return _error("NotAuthorizedException", "Incorrect username or password.")
        responses.update(PASSWORD_CLAIM_SECRET_BLOCK=moto_session, USERNAME=username)
        return self._moto(target, {**body, "ChallengeResponses": responses}, headers)

    def _user(self, client_id: str, username: str) -> tuple[str, str | None] | None:
        """(pool id, password) from moto's own store, which runs in this process."""
        from moto.cognitoidp.models import cognitoidp_backends

        backend = cognitoidp_backends[self.account_id][self.region]
        for pool in backend.user_pools.values():
            if client_id in pool.clients:
                try:
                    return pool.id, backend.admin_get_user(pool.id, username).password
                except Exception:  # noqa: BLE001 - moto's UserNotFoundError: answered like a wrong password
                    return None
        return None

    def _moto(self, target: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
        request = urllib.request.Request(  # noqa: S310 (moto on loopback)
            self.moto_endpoint, data=json.dumps(body).encode(), method="POST",
            headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target,
                     # moto routes by the signing service in the Authorization header
                     "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/cognito-idp/"
                                      "aws4_request, SignedHeaders=host, Signature=0"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that hung up: nothing to do
        pass


def _handler_for(front: CognitoFront) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _cors(self) -> None:
            # Cognito answers any origin: its public calls carry no ambient credentials.
            self.send_header("Access-Control-Allow-Origin", self.headers.get("Origin", "*"))
            self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
            self.send_header("Access-Control-Allow-Methods", "POST")
            self.send_header("Access-Control-Max-Age", "600")

        def do_OPTIONS(self) -> None:
            self.send_response(200)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(size, 1 << 20))
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                status, answer = _error("SerializationException", "the body is not JSON")
            else:
                status, answer = front.call(self.headers.get("X-Amz-Target", ""), body if isinstance(body, dict)
                                            else {}, dict(self.headers.items()))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
