"""The layering ARCHITECTURE.md asks for: domain code talks to small interfaces; only the adapters know boto3."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "relaydesk" / "relaydesk"
# The adapters: store/ implements the ports, wiring.py builds them, cli/context.py reads a deployed stack's outputs.
ADAPTERS = ("store/", "wiring.py", "cli/context.py")
AWS_SDK = {"boto3", "botocore"}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_domain_code_never_imports_the_aws_sdk():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(ADAPTERS):
            continue
        if imported_packages(path) & AWS_SDK:
            offenders.append(relative)
    assert offenders == []


def test_handlers_stay_thin():
    for handler in sorted((PACKAGE.parents[2] / "functions").glob("*/app.py")):
        code = [line for line in handler.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(code) <= 60, f"{handler.parent.name}: {len(code)} lines; move the logic into relaydesk/"
