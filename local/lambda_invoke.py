"""Lambda's Invoke API on loopback, for the functions a function invokes (the tenant API starts the console's jobs
with `InvocationType=Event`): boto3 reaches it through `AWS_ENDPOINT_URL_LAMBDA`, the rest of the stack stays on moto.

An `Event` invocation answers 202 at once and runs the handler in a worker, as Lambda's queue does; a
`RequestResponse` one runs it and returns its result. Functions are known by the names the stack gives them
(template.yaml's logical ids), run from functions/<dir>/app.py by `local.lambdas`.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import logging
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from local import lambdas, serving

log = logging.getLogger(__name__)
PATH = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)/invocations$")
WORKERS = 2  # concurrent asynchronous invocations (the machine has two cores)
STOP_WAIT_SECONDS = 15.0


class LocalLambda:
    def __init__(self, functions: dict[str, str]) -> None:
        self.functions = dict(functions)  # function name (or ARN tail) -> functions/<dir>
        self.host, self.port = "127.0.0.1", 0
        self._pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="local-lambda")
        self._running: set[Future] = set()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.invocations: list[tuple[str, str]] = []  # (function dir, invocation type)
        self.failures: list[tuple[str, str]] = []  # (function dir, error): Lambda logs them, nobody waits

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> LocalLambda:
        server = _Server((self.host, 0), _handler_for(self))
        self._server, self.port = server, server.server_address[1]
        self._thread = serving.serve(server, "local-lambda-api")
        return self

    def stop(self) -> None:
        serving.stop(self._server, self._thread)
        self._server = self._thread = None
        with self._lock:
            running = list(self._running)
        for future in running:  # a job polling its test mails ends when the stack under it stops answering
            future.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for future in running:
            with contextlib.suppress(Exception):  # cancelled or timed out: it ran against a stack that is gone
                future.exception(timeout=STOP_WAIT_SECONDS)

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """True when no invocation is running any more (tests)."""
        with self._lock:
            running = list(self._running)
        for future in running:
            try:
                future.exception(timeout=timeout)
            except Exception:  # noqa: BLE001
                return False
        return True

    def invoke(self, name: str, invocation_type: str, payload: bytes) -> tuple[int, bytes]:
        directory = self.functions.get(name.rsplit(":", 1)[-1]) or self.functions.get(name)
        if directory is None:
            return 404, json.dumps({"Type": "User", "Message": f"Function not found: {name}"}).encode()
        event = json.loads(payload or b"{}")
        self.invocations.append((directory, invocation_type))
        if invocation_type == "Event":
            future = self._pool.submit(self._run, directory, event)
            with self._lock:
                self._running.add(future)
            future.add_done_callback(self._done)
            return 202, b""
        return 200, json.dumps(lambdas.invoke(directory, event)).encode()

    def _run(self, directory: str, event: Any) -> Any:
        try:
            return lambdas.invoke(directory, event)
        except Exception as error:
            self.failures.append((directory, repr(error)))
            log.exception("asynchronous invocation of %s failed", directory)
            raise

    def _done(self, future: Future) -> None:
        with self._lock:
            self._running.discard(future)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass


def _handler_for(api: LocalLambda) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            match = PATH.match(self.path.split("?", 1)[0])
            payload = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if match is None:
                status, data = 404, b'{"Message": "unknown route"}'
            else:
                from urllib.parse import unquote

                status, data = api.invoke(unquote(match["name"]),
                                          self.headers.get("X-Amz-Invocation-Type", "RequestResponse"), payload)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler
