"""Cold start: import time of each Lambda handler module, each in a fresh interpreter, against `import boto3` alone.

What is timed is the import statement only (`perf_counter` around it, inside the child), not the interpreter's own
start-up, which Lambda pays whatever the code. Each child gets the environment a deployed function has (function
name, region, X-Ray on), so powertools' Tracer builds its X-Ray recorder as it does in Lambda. Rounds interleave the
baseline and the handlers so that drift on a noisy machine hits them alike; the first round only warms the
bytecode cache. Target (issue 7): each handler's import at most 1.5x `import boto3`.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HANDLERS = ("inbound", "relay", "rotation", "addresses_api", "attachments", "hold_alerts", "ses_feedback")
TARGET_RATIO = 1.5
BASELINE = "import boto3"

_CHILD = """
import importlib, json, sys, time
sys.path.insert(0, {path!r})
started = time.perf_counter()
{prelude}
importlib.import_module({module!r})
print(json.dumps(time.perf_counter() - started))
"""


_TEMPLATE_SWITCH = re.compile(r'^ +(PYDANTIC_[A-Z_]+): *"?([^"\s#]+)"? *$', re.MULTILINE)


def template_switches() -> dict[str, str]:
    """The variables template.yaml gives every function that change what an import does (pydantic's), so that the
    figures are those of the deployed functions."""
    return dict(_TEMPLATE_SWITCH.findall((ROOT / "template.yaml").read_text()))


def lambda_env(function: str) -> dict[str, str]:
    """The environment a deployed handler imports under (no credentials are needed to import; fake ones here)."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("AWS_", "POWERTOOLS_", "RELAYDESK_", "LAMBDA_", "PYTHON", "PYDANTIC_"))}
    env.update(template_switches())
    env.update({
        "AWS_LAMBDA_FUNCTION_NAME": f"relaydesk-{function}", "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR", "POWERTOOLS_SERVICE_NAME": f"relaydesk-{function}",
        # LAMBDA_TASK_ROOT makes the X-Ray SDK behave as in Lambda (local sampler, no X-Ray client built at
        # import; it touches /tmp/.aws-xray/initialized as it does there).
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / function) if function in HANDLERS else str(ROOT),
    })
    env["PYTHONPATH"] = str(ROOT / "layers" / "relaydesk")
    return env


NO_TRACER = "without X-Ray tracing (what-if)"
WITH_SDK = "after `import boto3` (SDK counted for every handler)"


def _child(path: str, module: str, env: dict[str, str], *flags: str, prelude: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", _CHILD.format(path=path, module=module, prelude=prelude)],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def import_seconds(function: str | None, prelude: str = "", *, tracing: bool = True) -> float:
    """One fresh interpreter: seconds to import the handler module (`None` = boto3 alone), `prelude` first;
    `tracing=False` imports it as powertools does with POWERTOOLS_TRACE_DISABLED (no X-Ray SDK at all)."""
    if function is None:
        completed = _child(str(ROOT), "boto3", lambda_env("baseline"))
    else:
        env = lambda_env(function)
        if not tracing:
            env["POWERTOOLS_TRACE_DISABLED"] = "true"
        completed = _child(str(ROOT / "functions" / function), "app", env, prelude=prelude)
    if completed.returncode != 0:
        raise RuntimeError(f"importing {function or 'boto3'} failed:\n{completed.stderr[-2000:]}")
    return float(completed.stdout.strip().splitlines()[-1])


_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|\s*(\S+)")


def _self_times(function: str | None) -> dict[str, float]:
    """`-X importtime` once: every module imported and its own (self) milliseconds."""
    if function is None:
        completed = _child(str(ROOT), "boto3", lambda_env("baseline"), "-X", "importtime")
    else:
        completed = _child(str(ROOT / "functions" / function), "app", lambda_env(function), "-X", "importtime")
    return {match.group(3): int(match.group(1)) / 1000
            for match in map(_IMPORTTIME.match, completed.stderr.splitlines()) if match}


def heaviest_imports(function: str, top: int = 8, *, within: str | None = None) -> list[tuple[str, float]]:
    """What the handler imports beyond boto3, by top-level package, in self milliseconds (module bodies included:
    a package that builds clients or models at import time shows it here); with `within`, that package's own
    modules one by one instead."""
    baseline = _self_times(None)
    packages: dict[str, float] = {}
    for module, ms in _self_times(function).items():
        if within is not None:
            if module.split(".")[0] == within:
                packages[module] = ms
            continue
        if module not in baseline:
            package = module.split(".")[0]
            packages[package] = packages.get(package, 0.0) + ms
    return sorted(packages.items(), key=lambda row: row[1], reverse=True)[:top]


@dataclass
class Series:
    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass
class ColdStartResult:
    runs: int
    baseline: Series
    handlers: dict[str, Series]
    missing: list[str]
    profiles: dict[str, list[tuple[str, float]]]
    failed: dict[str, str] = field(default_factory=dict)  # handler -> why its import failed
    no_tracer: dict[str, Series] = field(default_factory=dict)  # handler -> the same import, tracing disabled
    with_sdk: dict[str, Series] = field(default_factory=dict)  # handler -> `import boto3`, then the handler

    def ratio(self, function: str) -> float:
        return self.handlers[function].median / self.baseline.median


def measure(runs: int = 7, warmup: int = 1, handlers: tuple[str, ...] = HANDLERS,
            profile_misses: bool = True) -> ColdStartResult:
    present = [name for name in handlers if (ROOT / "functions" / name / "app.py").is_file()]
    missing = [name for name in handlers if name not in present]
    baseline = Series(BASELINE)
    series = {name: Series(f"functions/{name}/app.py") for name in present}
    traced = [name for name in present if "Tracer(" in (ROOT / "functions" / name / "app.py").read_text()]
    no_tracer = {name: Series(f"functions/{name}/app.py {NO_TRACER}") for name in traced}
    with_sdk = {name: Series(f"functions/{name}/app.py {WITH_SDK}") for name in present}
    failed: dict[str, str] = {}
    for round_number in range(warmup + runs):
        timings = [(baseline, import_seconds(None))]
        for name in [n for n in present if n not in failed]:
            try:
                timings.append((series[name], import_seconds(name)))
                if name in no_tracer:
                    timings.append((no_tracer[name], import_seconds(name, tracing=False)))
                timings.append((with_sdk[name], import_seconds(name, prelude=BASELINE)))
            except RuntimeError as error:  # a handler mid-edit must not sink the other figures
                failed[name] = str(error).strip().splitlines()[-1]
        if round_number >= warmup:
            for target, seconds in timings:
                target.seconds.append(seconds)
    for name in failed:
        del series[name]
        no_tracer.pop(name, None)
        with_sdk.pop(name, None)
    result = ColdStartResult(runs, baseline, series, missing, {}, failed, no_tracer, with_sdk)
    if profile_misses:
        result.profiles = {name: heaviest_imports(name) for name in series if result.ratio(name) > TARGET_RATIO}
    return result


NAME = "coldstart"
TITLE = "Cold start: handler module import against `import boto3` alone"

# What the profile showed and what would fix it, per package the handler adds beyond boto3.
FIXES = {
    "aws_xray_sdk": "powertools' `Tracer` imports the X-Ray SDK (its recorder and wrapt, about 10 ms), with tracing "
                    "on or off. With `patch_modules=[\"botocore\"]` (X-Ray's `patch_all` would also import requests, "
                    "sqlite3 and more) it patches botocore at import, which imports botocore's client machinery: "
                    "boto3's own modules, so not in this list, but in the handler's figure (see the what-if row and "
                    "the rows after `import boto3`). The first invocation imports them anyway to build its clients, "
                    "so deferring the patch would move that cost, not save it.",
    "requests": "imported only by X-Ray's `patch_all` (see aws_xray_sdk).",
    "charset_normalizer": "imported only by requests, itself only by X-Ray's `patch_all` (see aws_xray_sdk).",
    "http": "http.cookiejar/cookies come with requests, imported only by X-Ray's `patch_all` (see aws_xray_sdk).",
    "wrapt": "X-Ray's patching machinery (see aws_xray_sdk). Pinned to 1.17.3 in the layer: wrapt 2 also imports "
             "asyncio at import (`wrapt.synchronization`).",
    "sqlite3": "imported only so that X-Ray's `patch_all` can patch it (see aws_xray_sdk).",
    "pydantic": "pydantic (with pydantic_core, annotated_types, typing_inspection) is the models' contract; its "
                "import is a floor every handler pays. Its entry-point scan for plugins is off "
                "(`PYDANTIC_DISABLE_PLUGINS` in template.yaml) and pydantic-settings is not imported "
                "(`relaydesk.config` reads the environment itself).",
    "pydantic_core": "see pydantic.",
    "annotated_types": "imported by pydantic: see pydantic.",
    "asyncio": "imported by aiosmtplib (the relay's SMTP client, its main path) and by powertools' event handler "
               "package (addresses_api); the live check imports aiosmtplib only when a check runs "
               "(`relaydesk.addresses.live_check_smtp`) and wrapt 1.17 does not import asyncio, so another "
               "handler that shows it imports one of these at module level.",
    "aiosmtplib": "the relay's SMTP client (its main path); the live check imports it only when a check runs.",
    "cryptography": "imported with the first DKIM key loaded (`relaydesk.dkim.keys`, `relaydesk.dkim.signer`), so "
                    "a handler that shows it at import imports cryptography at module level somewhere.",
    "dns": "dnspython, imported by dkimpy's package init. The signer imports dkimpy only on its rare fallback "
           "path (`relaydesk/dkim/canonical.py`), so a handler that still shows it imports `dkim` at module level "
           "somewhere: find it with `python -X importtime`.",
    "nacl": "pynacl, imported by dkimpy's package init for Ed25519 (we sign Ed25519 with cryptography): see dns.",
    "aiodns": "imported by dkimpy's package init: see dns.",
    "dotenv": "python-dotenv comes with pydantic_settings, which `relaydesk.config` no longer imports: find who "
              "imports pydantic_settings again.",
    "relaydesk": "pydantic builds each model's validator when its class is defined: about 1 ms a model, and the "
                 "first model of the process also pays pydantic's lazily imported schema machinery (about 20 ms), "
                 "so whichever module defines it (relaydesk.accounts, relaydesk.inbound.outcome) looks heavy. "
                 "Owners of those modules: import the rarely used paths inside the function that needs them "
                 "(lazy imports); `model_config = ConfigDict(defer_build=True)` only moves the cost into the first "
                 "call, which a cold start pays all the same.",
    "aws_lambda_powertools": "Logger, Metrics and Tracer (issue 3) are a few ms in every handler. In addresses_api "
                             "the event handler package also imports every resolver (AppSync's brings asyncio), and "
                             "`relaydesk.api.routes` imports `openapi.params` (Path, Query) and enables validation, "
                             "which builds the OpenAPI/validation machinery at import; validating with our own "
                             "models instead would drop it.",
}


def run(config):
    from bench.harness import Ratio, Result, Row

    runs, warmup = (1, 0) if config.quick else (config.timed_runs, config.warmup_runs)
    result = measure(runs=runs, warmup=warmup, profile_misses=not config.quick)
    rows = [Row(f"`{BASELINE}` (baseline)", *(s * 1000 for s in _stats(result.baseline)), "ms")]
    ratios = []
    for name, series in result.handlers.items():
        rows.append(Row(f"`{series.name}`", *(s * 1000 for s in _stats(series)), "ms"))
        ratios.append(Ratio(f"{series.name} / boto3", f"`{series.name}`", rows[0].label, TARGET_RATIO, "<="))
        for variant, label, note, target in (
                (result.no_tracer, NO_TRACER, "POWERTOOLS_TRACE_DISABLED=true", TARGET_RATIO),
                (result.with_sdk, WITH_SDK, "the first invocation imports boto3 anyway", None)):
            if name in variant:
                rows.append(Row(f"`functions/{name}/app.py` {label}", *(s * 1000 for s in _stats(variant[name])),
                                "ms", note))
                ratios.append(Ratio(f"functions/{name}/app.py {label} / boto3", rows[-1].label, rows[0].label,
                                    target, "<="))
    notes = [
        "Each figure is one `import` in a fresh interpreter (timed inside it, interpreter start-up excluded) with a "
        "deployed function's environment: `AWS_LAMBDA_FUNCTION_NAME`, `LAMBDA_TASK_ROOT` (so X-Ray's SDK takes "
        "its Lambda path), region, `POWERTOOLS_SERVICE_NAME`, and template.yaml's `PYDANTIC_*` switches. Baseline "
        "and handlers alternate in every round.",
        "The what-if rows import the same handler with `POWERTOOLS_TRACE_DISABLED=true`: powertools still imports "
        "the X-Ray SDK but patches nothing, and the botocore patch is what imports botocore's client machinery at "
        "import, most of the difference. So a traced handler's figure holds most of boto3's import, which the "
        "untraced handlers (rotation, addresses_api) leave to their first invocation (`relaydesk.wiring` imports "
        "boto3 when it builds the clients): their figures leave the SDK out.",
        "The rows after `import boto3` put every handler on that same footing: `import boto3`, then the handler, "
        "in one interpreter, timed together: every module a cold start imports before its first invocation's own "
        "work. Their ratio to the baseline is what the handler adds to the SDK it needs anyway (no target: the "
        "issue's target reads the rows above).",
    ]
    notes += [f"`functions/{name}/app.py` is not in this tree yet: not measured." for name in result.missing]
    notes += [f"`functions/{name}/app.py` failed to import in this run ({why}): not measured."
              for name, why in result.failed.items()]
    for name, packages in result.profiles.items():
        listed = ", ".join(f"{package} {ms:.0f} ms" for package, ms in packages)
        notes.append(f"`functions/{name}/app.py` misses the target; what it imports beyond boto3 (`-X importtime` "
                     f"self time by package, one run): {listed}.")
        for package, _ in packages:
            if package in FIXES:
                notes.append(f"{name}, {package}: {FIXES[package]}")
            if package == "relaydesk":
                ours = ", ".join(f"{module} {ms:.0f} ms" for module, ms in heaviest_imports(name, 6, within=package))
                notes.append(f"{name}, relaydesk's heaviest modules (self time, one run): {ours}.")
    return Result(name=NAME, title=TITLE, rows=rows, ratios=ratios, notes=notes,
                  parameters={"runs": runs, "warm-up rounds": warmup})


def _stats(series: Series) -> tuple[float, float, float]:
    return series.median, min(series.seconds), max(series.seconds)
