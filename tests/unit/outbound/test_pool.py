"""The warm connection pool: which idle connection is handed out again, and which is closed instead."""

from __future__ import annotations

import time

from relaydesk.outbound.pool import ConnectionPool
from relaydesk.store.ports import PoolKey


class Conn:
    def __init__(self) -> None:
        self.connected = True

    async def close(self) -> None:
        self.connected = False


KEY = PoolKey("secret-1", "smtp.acme.test", 587, "relay@acme.test", "v1")


def _closed_soon(conn: Conn) -> bool:
    deadline = time.monotonic() + 2
    while conn.connected and time.monotonic() < deadline:
        time.sleep(0.005)
    return not conn.connected


def test_an_idle_connection_is_handed_out_once_for_the_same_smarthost_login_and_version():
    pool, conn = ConnectionPool(), Conn()
    pool.give(KEY, conn)
    assert pool.take(KEY._replace(version_id="v2")) is None  # another version of the secret: never
    assert _closed_soon(conn) and len(pool) == 0  # ... and the old login is closed, not kept


def test_the_same_key_gets_the_connection_back_and_only_once():
    pool, conn = ConnectionPool(), Conn()
    pool.give(KEY, conn)
    assert pool.take(KEY._replace(username="other@acme.test")) is None
    assert pool.take(KEY) is conn and pool.take(KEY) is None


def test_a_connection_idle_too_long_or_closed_by_the_server_is_not_handed_out():
    now = [100.0]
    pool = ConnectionPool(max_idle=60, clock=lambda: now[0])
    old, dead = Conn(), Conn()
    pool.give(KEY, old)
    now[0] += 61
    assert pool.take(KEY) is None and _closed_soon(old)
    pool.give(KEY, dead)
    dead.connected = False
    assert pool.take(KEY) is None and len(pool) == 0


def test_the_pool_is_bounded_and_a_refused_secret_is_forgotten():
    pool = ConnectionPool(max_size=2)
    conns = [Conn() for _ in range(3)]
    for number, conn in enumerate(conns):
        pool.give(KEY._replace(host=f"smtp{number}.acme.test"), conn)
    assert len(pool) == 2 and _closed_soon(conns[0])  # the oldest went
    pool.forget("secret-1")
    assert len(pool) == 0 and all(_closed_soon(c) for c in conns)
