"""Random faults for the local smarthost: at each command a fault is drawn with its chance (a seeded generator), on
top of the server's scripted ones (local/smarthost.py's `Faults`)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

from local.smarthost import COMMANDS, Faults, _Fault


@dataclass(frozen=True)
class SmtpFault:
    """At `command` ("CONNECT", "EHLO", "MAIL", "RCPT", "DATA"), with `chance`: a reply (e.g. "451 4.3.0 ..."; a
    421 also closes the connection), a stall of `stall` seconds, or (DATA) the connection dropped after the final
    dot."""

    command: str
    chance: float
    reply: str | None = None
    stall: float = 0.0
    drop: bool = False

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"no such command {self.command}")


class RandomFaults(Faults):
    def __init__(self, faults: list[SmtpFault], seed: int) -> None:
        super().__init__()
        self.plan = faults
        self._random = random.Random(seed)
        self._draw_lock = threading.Lock()
        self.drawn: dict[str, int] = {}

    def take(self, command: str, *, recipient: str | None = None) -> list[_Fault]:
        taken = super().take(command, recipient=recipient)
        for fault in self.plan:
            if fault.command != command:
                continue
            with self._draw_lock:
                hit = self._random.random() < fault.chance
                if hit:
                    key = f"{command} {fault.reply[:3] if fault.reply else 'drop' if fault.drop else 'stall'}"
                    self.drawn[key] = self.drawn.get(key, 0) + 1
            if hit:
                taken.append(_Fault(command, reply=fault.reply, stall=fault.stall, drop=fault.drop))
                break
        return taken
