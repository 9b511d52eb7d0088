"""The loopback HTTP(S) stand-ins' shared lifecycle: serve in a daemon thread, stop and wait for it."""

from __future__ import annotations

import socketserver
import threading
from typing import Any

POLL_SECONDS = 0.05  # how soon `shutdown` is noticed


def with_tls(server: socketserver.TCPServer, certificate: Any) -> socketserver.TCPServer:
    """The listening socket wrapped in the local CA's certificate. The handshake happens in the request's thread (on
    first read), so a stalled client cannot block the accept loop."""
    server.socket = certificate.server_context().wrap_socket(server.socket, server_side=True,
                                                             do_handshake_on_connect=False)
    return server


def serve(server: socketserver.BaseServer, name: str) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name=name,
                              daemon=True)
    thread.start()
    return thread


def stop(server: socketserver.BaseServer | None, thread: threading.Thread | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
    if thread is not None:
        thread.join(5)
