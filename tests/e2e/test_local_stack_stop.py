"""Stopping the local stack leaves nothing behind: no listening port, no thread, no changed environment.

(A module of its own: another module's running stack would start threads while this one is watching.)"""

from __future__ import annotations

import os
import socket
import threading

import pytest

from local.stack import LocalStack

pytestmark = pytest.mark.e2e


def test_stopping_the_stack_closes_every_port_and_thread_and_restores_the_environment(tmp_path):
    before_threads = {t.ident for t in threading.enumerate()}
    before_endpoint = os.environ.get("AWS_ENDPOINT_URL")

    with LocalStack(tmp_path) as running:
        ports = [running.inbound_mx.port, running.customer.mx.port, running.customer.submission.port,
                 int(running.moto.endpoint.rsplit(":", 1)[1])]

    leftover = [t for t in threading.enumerate() if t.ident not in before_threads and t.is_alive()
                and not t.name.startswith("ThreadPoolExecutor")]
    assert leftover == []
    for port in ports:
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    assert os.environ.get("AWS_ENDPOINT_URL") == before_endpoint
