"""Unit tests open no sockets: an internet or loopback connection (or a listening port) in a unit test fails it.
Servers, moto's and SMTP ones, belong to tests/integration; asyncio's own socket pair (AF_UNIX) is not affected."""

from __future__ import annotations

import socket

import pytest

NETWORK_FAMILIES = (socket.AF_INET, socket.AF_INET6)


class SocketInUnitTest(RuntimeError):
    """A unit test tried to connect or listen on a network socket."""


def _refuse(original):
    def guarded(sock: socket.socket, *args, **kwargs):
        if sock.family in NETWORK_FAMILIES:
            raise SocketInUnitTest(f"unit tests open no sockets (tried {original.__name__} {args[:1]}); "
                                   "move the test to tests/integration")
        return original(sock, *args, **kwargs)

    return guarded


@pytest.fixture(autouse=True)
def no_network_sockets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, _refuse(getattr(socket.socket, name)))
