"""An HTTP API of template.yaml on loopback, doing what API Gateway does in front of its function: HTTPS (a
certificate from the local CA), only the routes the template declares (404 otherwise), the API's authorizer (401 or
403 before the function runs), the payload format 2.0 event, and the function's proxy response back on the wire.

    api = LocalHttpApi(ca, name="TenantApi", routes=[("GET", "/accounts/{account_id}", "tenant_api")],
                       authorize=jwt_authorizer.authorize_request, invoke=lambdas.invoke).start()
    api.url      # https://127.0.0.1:<port>/
    api.stop()

One invocation of a function at a time, as one Lambda container serves them.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local import serving
from local.authorizers import Forbidden, Unauthorized
from local.ca import LocalCA

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP API's payload limit
LOCAL_ACCOUNT = "123456789012"

# (method, url, headers, body) -> the event's requestContext.authorizer, or Unauthorized / Forbidden
Authorize = Callable[[str, str, dict[str, str], bytes], dict]
Invoke = Callable[[str, dict], Any]  # (function directory, event) -> the proxy response


class Route:
    def __init__(self, method: str, path: str, function: str) -> None:
        self.method = method
        self.path = path
        self.function = function
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path))
        self.pattern = re.compile(f"^{pattern}$")

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"


class LocalHttpApi:
    def __init__(self, ca: LocalCA, *, name: str, routes: list[tuple[str, str, str]], authorize: Authorize,
                 invoke: Invoke, cors: dict | None = None) -> None:
        self.name = name
        self.cors = cors  # the API's CorsConfiguration (AllowOrigins resolved), or None: no CORS
        self.routes = [Route(*route) for route in routes]
        self.authorize = authorize
        self.invoke = invoke
        self.api_id = uuid.uuid4().hex[:10]
        self._cert = ca.issue(["127.0.0.1", "localhost"], label=f"http-api-{name.lower()}")
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._invocations = threading.Lock()
        self.host = "127.0.0.1"
        self.port = 0
        self.requests = 0

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/"

    def start(self) -> LocalHttpApi:
        server = serving.with_tls(_QuietServer((self.host, 0), _handler_for(self)), self._cert)
        self._server, self.port = server, server.server_address[1]
        self._thread = serving.serve(server, f"local-http-api-{self.name}")
        return self

    def stop(self) -> None:
        serving.stop(self._server, self._thread)
        self._server = self._thread = None

    # -- one request ------------------------------------------------------------------------------------------------
    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes,
               source_ip: str) -> tuple[int, dict[str, str], bytes]:
        """API Gateway's answer, with its CORS headers when the API has a CorsConfiguration: a preflight is
        answered before any route, authorizer or function (as API Gateway does), and every other response, its own
        401 included, carries the allowed origin."""
        origin = headers.get("origin", "")
        allowed = bool(self.cors) and origin in self.cors.get("AllowOrigins", [])
        if self.cors and method == "OPTIONS" and "access-control-request-method" in headers:
            return 204, self._preflight_headers(origin) if allowed else {}, b""
        status, response_headers, data = self._answer(method, target, headers, body, source_ip)
        if allowed:
            response_headers = {**response_headers, "access-control-allow-origin": origin, "vary": "origin"}
        return status, response_headers, data

    def _preflight_headers(self, origin: str) -> dict[str, str]:
        assert self.cors is not None
        return {"access-control-allow-origin": origin,
                "access-control-allow-methods": ",".join(self.cors.get("AllowMethods", [])),
                "access-control-allow-headers": ",".join(self.cors.get("AllowHeaders", [])),
                "access-control-max-age": str(self.cors.get("MaxAge", 0)), "vary": "origin"}

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes,
                source_ip: str) -> tuple[int, dict[str, str], bytes]:
        self.requests += 1
        split = urlsplit(target)
        raw_path = split.path or "/"
        route, parameters = self._route(method, raw_path)
        if route is None:
            return _gateway(404, "Not Found")
        try:
            authorizer = self.authorize(method, f"https://{headers.get('host', self.host)}{target}", headers, body)
        except Unauthorized:
            return _gateway(401, "Unauthorized", {"www-authenticate": 'Bearer error="invalid_token"'})
        except Forbidden:
            return _gateway(403, "Forbidden")
        event = self._event(route, parameters, method, raw_path, split.query, headers, body, source_ip, authorizer)
        try:
            with self._invocations:
                response = self.invoke(route.function, event)
        except Exception:  # noqa: BLE001 - the function failed: API Gateway answers 500, the traceback is in its log
            return _gateway(500, "Internal Server Error")
        return _proxy_response(response)

    def _route(self, method: str, raw_path: str) -> tuple[Route | None, dict[str, str]]:
        for route in self.routes:
            match = route.pattern.match(raw_path)
            if match and route.method == method:
                return route, {name: unquote(value) for name, value in match.groupdict().items()}
        return None, {}

    def _event(self, route: Route, parameters: dict[str, str], method: str, raw_path: str, query: str,
               headers: dict[str, str], body: bytes, source_ip: str, authorizer: dict) -> dict:
        now = dt.datetime.now(dt.UTC)
        try:
            text, encoded = body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        pairs = parse_qsl(query, keep_blank_values=True)
        parameters_of_query: dict[str, str] = {}
        for name, value in pairs:
            parameters_of_query[name] = f"{parameters_of_query[name]},{value}" if name in parameters_of_query else value
        cookies = [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()]
        return {
            "version": "2.0", "routeKey": route.key, "rawPath": raw_path, "rawQueryString": query,
            **({"cookies": cookies} if cookies else {}),
            "headers": {name: value for name, value in headers.items() if name != "cookie"},
            **({"queryStringParameters": parameters_of_query} if parameters_of_query else {}),
            **({"pathParameters": parameters} if parameters else {}),
            "requestContext": {
                "accountId": LOCAL_ACCOUNT, "apiId": self.api_id, "authorizer": authorizer,
                "domainName": headers.get("host", self.host), "domainPrefix": self.api_id,
                "http": {"method": method, "path": raw_path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                         "userAgent": headers.get("user-agent", "")},
                "requestId": uuid.uuid4().hex, "routeKey": route.key, "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"), "timeEpoch": int(time.time() * 1000)},
            **({"body": text} if body else {}), "isBase64Encoded": encoded,
        }


def _gateway(status: int, message: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """API Gateway's own answers: `{"message": "..."}`."""
    return status, {"content-type": "application/json", **(headers or {})}, json.dumps({"message": message}).encode()


def _proxy_response(response: Any) -> tuple[int, dict[str, str], bytes]:
    if not isinstance(response, dict) or "statusCode" not in response:
        return _gateway(500, "Internal Server Error")
    body = response.get("body") or ""
    data = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    return int(response["statusCode"]), headers, data


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that hung up mid-request: nothing to do
        pass


def _handler_for(api: LocalHttpApi) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            length = self.headers.get("Content-Length")
            try:
                size = int(length) if length else 0
            except ValueError:
                size = -1
            if size < 0 or size > MAX_PAYLOAD:
                status, headers, data = _gateway(413 if size > MAX_PAYLOAD else 400,
                                                 "Request Entity Too Large" if size > MAX_PAYLOAD else "Bad Request")
                self.close_connection = True
            else:
                body = self.rfile.read(size) if size else b""
                lowered: dict[str, str] = {}
                for name, value in self.headers.items():
                    key = name.lower()
                    lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
                status, headers, data = api.answer(self.command, self.path, lowered, body, self.client_address[0])
            self.send_response(status)
            for name, value in headers.items():
                if name not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    return Handler
