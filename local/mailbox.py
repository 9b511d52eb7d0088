"""End users' mailboxes on disk: one directory per address, one .eml file per delivered message (what the demo reads).

A delivering MDA adds `Return-Path` and `Delivered-To` on top, as Postfix's local delivery does, so a reader can see
which envelope reached which mailbox. Everything else is the message exactly as received.
"""

from __future__ import annotations

import email
import email.policy
import re
import secrets
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

_SAFE = re.compile(r"[^a-z0-9@._+-]")


@dataclass(frozen=True)
class Delivered:
    address: str
    path: Path

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


class Mailboxes:
    """`root/<address>/<time>-<id>.eml`; `wait_for(address, predicate)` blocks until a matching message lands."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._changed = threading.Condition()

    def folder(self, address: str) -> Path:
        return self.root / _SAFE.sub("_", address.strip().lower())

    def deliver(self, address: str, data: bytes, *, mail_from: str) -> Delivered:
        folder = self.folder(address)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{secrets.token_hex(4)}.eml"
        envelope = f"Return-Path: <{mail_from}>\r\nDelivered-To: {address.strip().lower()}\r\n".encode()
        tmp = folder / f".{name}.tmp"
        tmp.write_bytes(envelope + data)
        tmp.rename(folder / name)  # readers never see half a message (Maildir's tmp -> new)
        with self._changed:
            self._changed.notify_all()
        return Delivered(address, folder / name)

    def messages(self, address: str) -> list[Delivered]:
        folder = self.folder(address)
        if not folder.exists():
            return []
        return [Delivered(address, path) for path in sorted(folder.glob("*.eml"))]

    def wait_for(self, address: str, predicate=lambda message: True, *, timeout: float = 30.0) -> Delivered:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for delivered in self.messages(address):
                    if predicate(delivered.message()):
                        return delivered
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching message in the mailbox of {address} after {timeout:.0f} s")
                self._changed.wait(min(remaining, 0.5))
