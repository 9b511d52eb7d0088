"""Runs the `relaydesk` admin CLI as a subprocess, the way an admin would, against the local stack's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    argv: list[str]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def cli_command() -> list[str]:
    """The installed `relaydesk` entry point of this virtualenv (what `make` installs), else the module's main."""
    script = Path(sys.executable).parent / "relaydesk"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from relaydesk.cli import main; sys.exit(main())"]


def run_cli(args: list[str], *, env: dict[str, str], stdin: str | None = None, timeout: float = 180,
            on_progress: Callable[[str], None] | None = None, log_path: Path | None = None) -> CliResult:
    """Run `relaydesk <args>`; stderr lines (the CLI's progress) go to `on_progress` as they come.

    `stdin` carries secrets (a password); it is written to the pipe and never echoed, logged or kept.
    """
    argv = [*cli_command(), *args]
    process = subprocess.Popen(argv, cwd=ROOT, env={**os.environ, **env}, text=True,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err_lines: list[str] = []
    out_chunks: list[str] = []

    def pump_progress() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            err_lines.append(line)
            if on_progress:
                on_progress(line.rstrip("\n"))

    def pump_output() -> None:
        assert process.stdout is not None
        out_chunks.append(process.stdout.read())

    # One reader per pipe: `communicate()` would read stderr too, racing the progress reader and splitting lines.
    readers = [threading.Thread(target=pump, daemon=True) for pump in (pump_progress, pump_output)]
    for reader in readers:
        reader.start()
    assert process.stdin is not None
    try:
        process.stdin.write(stdin or "")
        process.stdin.close()
    except BrokenPipeError:
        pass  # the CLI exited before reading its input; its exit code and stderr say why
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    for reader in readers:
        reader.join(timeout=5)
    stdout = "".join(out_chunks)
    result = CliResult(argv=["relaydesk", *args], code=process.returncode, stdout=stdout, stderr="".join(err_lines))
    if log_path is not None:
        with log_path.open("a") as log:
            log.write(f"$ {' '.join(result.argv)}\n[exit {result.code}]\n{result.stdout}{result.stderr}\n")
    return result
