"""The AWS side on loopback: a moto server (ephemeral port) with template.yaml's resources, and the environment the
functions and the CLI need to talk to it, set in this process and written to `<state>/env.sh` and `env.json`."""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import threading
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
LOCAL_BIN = ROOT / "local" / "bin"  # `relaydesk` and `acme-admin`, each running in the project's .venv
REGION = "us-east-1"
# moto accepts any credentials; these make sure nothing local can ever use a real profile.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                    "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
LOCAL_POWERTOOLS = {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_DEV": "false"}  # no X-Ray daemon here


def clear_relaydesk_caches() -> None:
    from relaydesk import destinations
    from relaydesk.config import get_settings
    from relaydesk.wiring import aws_stores

    get_settings.cache_clear()
    aws_stores.cache_clear()
    destinations.policy.cache_clear()


class MotoStack:
    """`start()` runs the server, resets moto, provisions the template, sets the environment; `stop()` undoes all."""

    def __init__(self, state_dir: Path, *, parameters: dict[str, str] | None = None,
                 extra_env: dict[str, str] | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.parameters = parameters or {}
        self.extra_env = dict(extra_env or {})  # e.g. the local DNS server, for the CLI and the functions
        self.env: dict[str, str] = {}
        self.http_api_auth: dict[str, dict] = {}  # each HTTP API's Auth, resolved (template.yaml)
        self.endpoint = ""
        self._server = None
        self._connections: _Connections | None = None
        self._saved_env: dict[str, str | None] = {}

    def start(self) -> MotoStack:
        from moto.server import ThreadedMotoServer

        from local import fair_queues

        fair_queues.install()  # the notifications queue hands out messages in SQS fair queues' order
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one access-log line per AWS call is noise here
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self._connections = _track_connections(self._server._server)
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self._reset()  # the server shares moto's in-process backends: start from nothing
        self._set_env({**FAKE_CREDENTIALS, **LOCAL_POWERTOOLS, "AWS_ENDPOINT_URL": self.endpoint})
        import boto3

        from local.aws_resources import provision

        provisioned = provision(boto3.session.Session(region_name=REGION), template_path=TEMPLATE,
                                parameters=self.parameters, http_api_auth=self.http_api_auth)
        # The CLI's `relaydesk login` session of this stack lives with its state, never in the user's home.
        session_file = {"RELAYDESK_SESSION_FILE": str(self.state_dir / "session.json")}
        self._set_env({**provisioned, **self.extra_env, **session_file})
        self.env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, **provisioned, **LOCAL_POWERTOOLS,
                    **self.extra_env, **session_file}
        self._write_env_files()
        clear_relaydesk_caches()
        return self

    def stop(self) -> None:
        if self._server is not None:
            try:
                self._reset()
            finally:
                self._server.stop()
                self._server._server.server_close()
                self._connections.close_all()
                self._server = None
                from local import fair_queues

                fair_queues.uninstall()
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        clear_relaydesk_caches()

    def add_env(self, values: dict[str, str]) -> None:
        """More of the environment (what the local stand-ins add, such as the APIs' URLs), in the env files too."""
        self._set_env(values)
        self.env.update(values)
        self._write_env_files()

    def session(self):
        import boto3

        return boto3.session.Session(region_name=REGION)

    def _reset(self) -> None:
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")  # noqa: S310 (loopback)
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def _set_env(self, values: dict[str, str]) -> None:
        for name in CLEARED:
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ.pop(name, None)
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _write_env_files(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        (self.state_dir / "env.json").write_text(json.dumps(self.env, indent=2, sort_keys=True) + "\n")
        lines = ["# Written by the local stack: `source` it to point the relaydesk CLI and boto3 at it. It also puts",
                 "# `relaydesk` and `acme-admin` (acme.test's mail server and DNS) on your PATH.",
                 *(f"unset {name}" for name in CLEARED),
                 *(f"export {name}={shlex.quote(value)}" for name, value in sorted(self.env.items())),
                 f"export RELAYDESK_LOCAL_STATE={shlex.quote(str(self.state_dir))}",
                 f'export PATH={shlex.quote(str(LOCAL_BIN))}:"$PATH"']
        (self.state_dir / "env.sh").write_text("\n".join(lines) + "\n")


class _Connections:
    """The moto server's open client connections and the threads serving them."""

    def __init__(self, serve_one) -> None:
        self._serve_one = serve_one
        self._lock = threading.Lock()
        self._open: dict[threading.Thread, socket.socket] = {}

    def accept(self, request: socket.socket, client_address) -> None:
        # Registered here, in the accept loop, not in the new thread: once the server has stopped accepting,
        # every connection it ever took is in `_open` or already finished.
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True)
        with self._lock:
            self._open[thread] = request
        thread.start()

    def _serve(self, request: socket.socket, client_address) -> None:
        try:
            self._serve_one(request, client_address)
        finally:
            with self._lock:
                self._open.pop(threading.current_thread(), None)

    def close_all(self, timeout: float = 10.0) -> None:
        # werkzeug serves each connection in a daemon thread that server_close() does not wait for, and a boto3
        # client keeps its connection alive, so the thread would idle in readline() after the stack stopped.
        # Shutting the socket ends that read; joining makes "stopped" mean no thread is left.
        with self._lock:
            open_now = list(self._open.items())
        for _thread, request in open_now:
            try:
                request.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client closed it first
        for thread, _request in open_now:
            thread.join(timeout)


def _track_connections(server) -> _Connections:
    """Serve each connection in a thread this module knows about (werkzeug's ThreadingMixIn forgets them)."""
    connections = _Connections(server.process_request_thread)
    server.process_request = connections.accept
    return connections
