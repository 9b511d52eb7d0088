"""`make build`'s check of .aws-sam/build for the architecture template.yaml names (arm64):

1. every compiled module (`*.so`) of the layer and the functions is an ELF for that machine, so Lambda can load it;
2. every handler imports with the built layer alone on its path (`-S`: no site-packages), as in Lambda. On another
   machine than the target, that needs an emulator: `qemu-aarch64-static` with an arm64 Python 3.11 root
   (`make arm64-root` builds one from Debian's packages). Without them, the handlers are imported against the same
   pinned requirements built for this machine instead, and the output says so: the code and the requirement set
   are checked, the arm64 binaries only by (1).

    python -m bench.build_check .aws-sam/build
"""

from __future__ import annotations

import platform
import shutil
import subprocess
import sys
from pathlib import Path

from local.aws_resources import load_template

ROOT = Path(__file__).resolve().parent.parent
ARM64_ROOT = ROOT / ".arm64-root"
ELF_MACHINE = {"x86_64": 62, "arm64": 183}  # e_machine: EM_X86_64, EM_AARCH64
HOST = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
IMPORT_ENV = {"POWERTOOLS_TRACE_DISABLED": "true", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
              "PYDANTIC_DISABLE_PLUGINS": "__all__"}


def architecture() -> str:
    (arch,) = load_template(ROOT / "template.yaml")["Globals"]["Function"]["Architectures"]
    return arch


def elf_machine(path: Path) -> int:
    header = path.read_bytes()[:20]
    if header[:4] != b"\x7fELF":
        raise ValueError(f"{path} is not an ELF file")
    return int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")


def wrong_machine(build: Path, arch: str) -> list[str]:
    return [str(so.relative_to(build)) for so in sorted(build.rglob("*.so")) if elf_machine(so) != ELF_MACHINE[arch]]


def emulator(arch: str) -> list[str] | None:
    """The command that runs the target's Python here, or None."""
    if arch == HOST:
        return [sys.executable]
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    python = ARM64_ROOT / "usr" / "bin" / "python3.11"
    if arch == "arm64" and qemu and python.exists():
        return [qemu, "-L", str(ARM64_ROOT), str(python)]
    return None


def host_dependencies(build: Path) -> Path:
    """The layer's pinned requirements as wheels for this machine, beside the arm64 build (reused when present)."""
    target = build.parent / "host-layer"
    if not (target / ".installed").exists():
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--prefer-binary", "--target",
                        str(target), "-r", str(ROOT / "layers" / "relaydesk" / "requirements.txt")], check=True)
        (target / ".installed").touch()
    return target


def handler_modules() -> dict[str, str]:
    """Each function's handler module as template.yaml names it (Globals' app.handler unless the function says;
    the console's publisher has its handler in the layer and the built console as its package)."""
    from local.aws_resources import load_template

    template = load_template(Path(__file__).resolve().parents[1] / "template.yaml")
    default = template["Globals"]["Function"]["Handler"]
    return {name: resource["Properties"].get("Handler", default).rsplit(".", 1)[0]
            for name, resource in template["Resources"].items() if resource["Type"] == "AWS::Serverless::Function"}


def import_handlers(build: Path, python: list[str], layer_path: list[Path]) -> list[str]:
    failures = []
    modules = handler_modules()
    for function in sorted(p for p in build.iterdir() if p.name.endswith("Function")):
        paths = [str(function), *(str(p) for p in layer_path)]
        code = f"import sys; sys.path[:0] = {paths!r}; import {modules.get(function.name, 'app')}"
        completed = subprocess.run([*python, "-S", "-c", code], env=IMPORT_ENV, capture_output=True, text=True,
                                   timeout=600, check=False)
        if completed.returncode != 0:
            failures.append(f"{function.name}: {completed.stderr.strip().splitlines()[-1:]}")
    return failures


def main(argv: list[str]) -> int:
    build = Path(argv[0] if argv else ".aws-sam/build")
    arch = architecture()
    wrong = wrong_machine(build, arch)
    if wrong:
        print(f"compiled modules not built for {arch}: {', '.join(wrong)}")
        return 1
    print(f"every compiled module in {build} is an ELF for {arch}")
    layer = build / "RelaydeskLayer" / "python"
    python = emulator(arch)
    if python is not None:
        how = "natively" if arch == HOST else "under qemu-user"
        failures = import_handlers(build, python, [layer])
    else:
        how = (f"against the same requirements built for {HOST} (no qemu-aarch64 and arm64 Python here: "
               "`make arm64-root` sets them up)")
        failures = import_handlers(build, [sys.executable], [host_dependencies(build), layer])
    if failures:
        print("handlers that do not import from the build:\n  " + "\n  ".join(failures))
        return 1
    print(f"every handler imports from {build} with the built layer alone, {how}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
