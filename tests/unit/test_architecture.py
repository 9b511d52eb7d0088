"""The layering ARCHITECTURE.md asks for: domain code talks to small interfaces (`store/ports.py`); only the adapters
know boto3; `wiring.py` only builds and nothing in the domain imports it; no two modules import each other, even
lazily; unit tests open no sockets."""

from __future__ import annotations

import ast
import socket
from pathlib import Path

import pytest

from tests.unit.conftest import SocketInUnitTest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "relaydesk" / "relaydesk"
UNIT_TESTS = ROOT / "tests" / "unit"
# The adapters: store/ implements the ports, wiring.py builds them, cli/context.py reads a deployed stack's outputs.
ADAPTERS = ("store/", "wiring.py", "cli/context.py")
AWS_SDK = {"boto3", "botocore"}
# Who may import relaydesk.wiring inside the package: the entry points that build their adapters, i.e. the CLI's
# one place that finds and builds the stack, and the console publisher's handler (it lives in the layer). The Lambda
# handlers in functions/ and the local stack do too; they are outside the package.
WIRING_IMPORTERS = {"relaydesk.wiring", "relaydesk.cli.context", "relaydesk.console_site"}
# Modules and fixtures that open a socket: they belong in tests/integration.
SOCKET_MODULES = {"socket", "smtplib", "aiosmtpd", "http.server", "socketserver", "local.smarthost",
                  "local.oauth_server", "local.customer_mail", "local.stack", "local.moto_stack",
                  "bench.smarthost_process", "bench.network_process", "bench.postfix_instances"}
SOCKET_FIXTURES = {"smarthost", "make_smarthost", "token_server", "local_stack"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Nodes under `if TYPE_CHECKING:`: never executed, so not an import at run time."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for statement in node.body for inner in ast.walk(statement))
    return skipped


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports anywhere (module level or inside a function), as dotted names."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_only(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def relaydesk_imports(path: Path) -> set[str]:
    """The package's own modules `path` imports: `from relaydesk.x import y` is relaydesk.x.y when y is a module
    (the package relaydesk.x itself is then only the container every submodule import initialises), else
    relaydesk.x."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = _type_checking_only(tree)
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                names.add(submodule if submodule in MODULES else node.module)
    return {name for name in names if name in MODULES} - {module_name(path), "relaydesk"}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return cycles


def test_domain_code_never_imports_the_aws_sdk():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(ADAPTERS):
            continue
        if {name.split(".")[0] for name in imported_modules(path)} & AWS_SDK:
            offenders.append(relative)
    assert offenders == []


def test_no_module_imports_wiring_but_the_entry_points():
    offenders = sorted(name for name, path in MODULES.items()
                       if "relaydesk.wiring" in imported_modules(path) and name not in WIRING_IMPORTERS)
    assert offenders == [], "import Stores and the ports from relaydesk.store.ports; wiring.py only builds them"


def test_there_is_no_import_cycle_not_even_a_lazy_one():
    graph = {name: relaydesk_imports(path) for name, path in MODULES.items()}
    assert import_cycles(graph) == []


def test_the_relays_parts_never_reach_back_into_the_batch_relay_not_even_for_type_checking():
    """The batch relay hands its smarthost groups, sessions and books their dependencies: none of them imports
    `outbound/relay.py`, so none can read its members (an import under TYPE_CHECKING counts here too)."""
    parts = ("connector", "session", "delivery", "outcomes", "deadline", "prefetch")
    offenders = []
    for name in parts:
        path = PACKAGE / "outbound" / f"{name}.py"
        if not path.exists():
            continue
        tree = ast.parse(path.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        if "relaydesk.outbound.relay" in imported:
            offenders.append(name)
    assert offenders == []


def test_the_cycle_finder_finds_a_lazy_cycle_and_a_long_one():
    assert import_cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []
    lazy = "def f():\n    from relaydesk.wiring import Stores\n"
    tree_names = {n.module for n in ast.walk(ast.parse(lazy)) if isinstance(n, ast.ImportFrom)}
    assert tree_names == {"relaydesk.wiring"}


def test_handlers_stay_thin():
    for handler in sorted((ROOT / "functions").glob("*/app.py")):
        code = [line for line in handler.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
        assert len(code) <= 60, f"{handler.parent.name}: {len(code)} lines; move the logic into relaydesk/"


def _functions(path: Path) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)]


def _fixtures_defined(path: Path) -> set[str]:
    return {node.name for node in _functions(path) if any("fixture" in ast.unparse(d) for d in node.decorator_list)}


def _fixtures_requested(path: Path) -> set[str]:
    """Fixtures a test asks for that neither its own module nor a unit conftest defines (those are fakes)."""
    local = _fixtures_defined(path) | {name for conftest in UNIT_TESTS.rglob("conftest.py")
                                       for name in _fixtures_defined(conftest)}
    tests_and_fixtures = [node for node in _functions(path) if node.name.startswith("test_")
                          or any("fixture" in ast.unparse(d) for d in node.decorator_list)]
    parametrized = {name.strip() for node in tests_and_fixtures for d in node.decorator_list
                    if isinstance(d, ast.Call) and "parametrize" in ast.unparse(d.func) and d.args
                    and isinstance(d.args[0], ast.Constant) and isinstance(d.args[0].value, str)
                    for name in d.args[0].value.split(",")}
    return {arg.arg for node in tests_and_fixtures for arg in node.args.args} - local - parametrized


def test_no_unit_test_imports_a_server_or_asks_for_one():
    offenders = []
    for path in sorted(UNIT_TESTS.rglob("*.py")):
        if path in (UNIT_TESTS / "conftest.py", Path(__file__)):
            continue  # the socket guard, and its test
        relative = path.relative_to(ROOT).as_posix()
        imported = {name for name in imported_modules(path) if name in SOCKET_MODULES}
        fixtures = _fixtures_requested(path) & SOCKET_FIXTURES
        if imported or fixtures:
            offenders.append(f"{relative}: {sorted(imported | fixtures)}")
    assert offenders == [], "unit tests open no sockets: move these to tests/integration"


@pytest.mark.parametrize("family,address", [(socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET6, ("::1", 9))])
def test_a_unit_test_that_opens_a_socket_fails(family, address):
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(SocketInUnitTest):
        sock.connect(address)
    with socket.socket(family, socket.SOCK_STREAM) as sock, pytest.raises(SocketInUnitTest):
        sock.bind((address[0], 0))


def _exception_classes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
            and any(ast.unparse(base).endswith(("Error", "Exception", "Violation", "InProgress", "Unreadable"))
                    for base in node.bases)]


# Not errors but answers raised through a layer: the tenant API gate's HTTP response (status and body).
NOT_ERRORS = {"relaydesk.api.gate: Refused"}


def test_every_error_is_defined_in_errors_py():
    """One home for errors, each a RelaydeskError with its action; private control-flow signals (`_Name`) aside."""
    offenders = sorted(found for name, path in MODULES.items() if name != "relaydesk.errors"
                       for cls in _exception_classes(path) if not cls.startswith("_")
                       if (found := f"{name}: {cls}") not in NOT_ERRORS)
    assert offenders == []


# A support address's state: only relaydesk/addresses/state.py assigns these (the model's defaults aside).
ADDRESS_STATE_FIELDS = {"last_error", "last_error_about", "held_since", "held_version", "credentials_version",
                        "forwarding", "outbound", "events"}
CONNECTOR_FIELDS = {"state", "host", "port", "tls_mode", "auth_kind", "oauth_tenant_id", "oauth_client_id"}


def _state_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    targets = [target for node in ast.walk(tree) if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign)
               for target in (node.targets if isinstance(node, ast.Assign) else [node.target])]
    flat = [element for target in targets
            for element in (target.elts if isinstance(target, ast.Tuple) else [target])]
    return [ast.unparse(t) for t in flat if isinstance(t, ast.Attribute) and (
        t.attr in ADDRESS_STATE_FIELDS
        or (t.attr in CONNECTOR_FIELDS and "connector" in ast.unparse(t.value)))]


def test_only_the_state_machine_writes_an_addresss_state():
    offenders = sorted(f"{name}: {write}" for name, path in MODULES.items()
                       if name != "relaydesk.addresses.state" for write in _state_writes(path))
    assert offenders == [], "change a support address's state through relaydesk.addresses.state"
