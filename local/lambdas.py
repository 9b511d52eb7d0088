"""Loads `functions/<name>/app.py` by path and calls its handler the way the Lambda runtime does, context included."""

from __future__ import annotations

import importlib.util
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ROOT / "functions"


@dataclass
class LambdaContext:
    """The attributes powertools and the idempotency utility read from the real context."""

    function_name: str
    timeout_seconds: float = 30.0
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    region: str = "us-east-1"
    account_id: str = "123456789012"
    _started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.function_name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    @property
    def log_stream_name(self) -> str:
        return f"local/{self.aws_request_id}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self._started)) * 1000))


class FunctionNotFound(LookupError):
    """functions/<name>/app.py does not exist (yet)."""


def load(name: str) -> ModuleType:
    """Import functions/<name>/app.py once, under a name of its own (every function's module is called `app`)."""
    module_name = f"relaydesk_local_fn_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    path = FUNCTIONS / name / "app.py"
    if not path.exists():
        raise FunctionNotFound(f"{path.relative_to(ROOT)} does not exist")
    spec = importlib.util.spec_from_file_location(module_name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def unload_all() -> None:
    """Forget loaded handlers, so the next stack loads them against its own environment."""
    for module_name in [m for m in sys.modules if m.startswith("relaydesk_local_fn_")]:
        del sys.modules[module_name]


def template_settings(name: str) -> dict[str, Any]:
    """Timeout, MemorySize and MaximumRetryAttempts of functions/<name> as template.yaml declares them."""
    from local.aws_resources import function_settings

    return function_settings(ROOT / "template.yaml").get(name, {})


def invoke(name: str, event: dict, *, stack_name: str = "relaydesk-local", timeout_seconds: float | None = None,
           memory_mb: int | None = None) -> Any:
    """Call `handler(event, context)` of functions/<name>/app.py with a fresh context, as one invocation.

    Timeout and memory default to template.yaml's; the remaining time counts down as Lambda's does.
    """
    handler = load(name).handler
    settings = template_settings(name) if timeout_seconds is None or memory_mb is None else {}
    context = LambdaContext(function_name=f"{stack_name}-{name.replace('_', '-')}-function",
                            timeout_seconds=timeout_seconds or settings.get("Timeout", 3),
                            memory_limit_in_mb=memory_mb or settings.get("MemorySize", 128))
    return handler(event, context)
