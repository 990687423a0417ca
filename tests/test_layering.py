"""The layering rules of ARCHITECTURE.md, checked on the source.

1. `rollup/` and `vm/` do no I/O: they import no I/O library (sockets, files, clocks, randomness,
   environment, databases, HTTP, processes, threads) and do not call the builtin `open`.
   In-memory streams are fine: `from io import BytesIO`.
2. Imports of our own packages point down the table only:
   rollup -> none; vm, bridge and storage -> rollup; sequencer and da -> never services;
   services -> never benchmarks (`rollup bench` loads them by name, at the command line's edge).
3. The app templates under `services/templates/T/` are app code, copied out by `rollup new`:
   their `app.py` imports the SDK (`vm.native`) and none of our other packages.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "services" / "templates"

OURS = frozenset({"rollup", "vm", "storage", "sequencer", "da", "bridge", "services", "benchmarks"})

# Packages that must stay pure, and the modules that would make them impure.
PURE = ("rollup", "vm")
IO_MODULES = frozenset(
    {
        "sqlalchemy",
        "fastapi",
        "starlette",
        "uvicorn",
        "httpx",
        "requests",
        "aiohttp",
        "web3",
        "asyncio",
        "socket",
        "subprocess",
        "threading",
        "multiprocessing",
        "nats",
        "os",
        "io",
        "pathlib",
        "shutil",
        "tempfile",
        "time",
        "random",
        "secrets",
        "urllib",
        "http",
        "select",
        "selectors",
        "signal",
        "sqlite3",
        "psycopg",
    }
)
IO_IN_MEMORY = frozenset({"BytesIO", "StringIO"})  # the only names `io` may give pure code

# Which of our packages each package may import (itself always).
ALLOWED_OURS = {
    "rollup": frozenset(),
    "vm": frozenset({"rollup"}),
    "bridge": frozenset({"rollup"}),
    "storage": frozenset({"rollup"}),
    "sequencer": OURS - {"services", "benchmarks"},
    "da": OURS - {"services", "benchmarks"},
    "services": OURS - {"benchmarks"},
}
# The one import against the table: `rollup bench` hands its arguments to the benchmarks.
EXCEPTIONS = frozenset({("services/cli.py", "benchmarks.cli")})


@dataclass(frozen=True, slots=True)
class Violation:
    path: str
    line: int
    module: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.module}: {self.reason}"


def imported_modules(tree: ast.AST, module_name: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for each import in the tree.

    `module_name` is the dotted name of the file (`rollup.codec`, `vm.native`) and resolves
    relative imports. `__import__("x")` and `importlib.import_module("x")` count as imports.
    """
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = resolve_relative(module_name, node.level, node.module)
            found.append((node.lineno, base, [alias.name for alias in node.names]))
        elif isinstance(node, ast.Call) and is_dynamic_import(node):
            arg = node.args[0]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.append((node.lineno, arg.value, []))
    return found


def resolve_relative(module_name: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    # `pkg.mod` and `pkg.__init__` alike: one dot is `pkg`, each further dot one package up.
    parts = module_name.split(".")
    base = parts[: len(parts) - level]
    return ".".join(base + ([module] if module else []))


def is_dynamic_import(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id == "__import__"
    return isinstance(func, ast.Attribute) and func.attr == "import_module" and bool(node.args)


def is_io_import(module: str, names: list[str]) -> bool:
    if module == "io" and names and set(names) <= IO_IN_MEMORY:
        return False
    return module.split(".")[0] in IO_MODULES


def check_source(source: str, path: str) -> list[Violation]:
    """Every layering violation in one file; `path` is relative to the repo, like `vm/x.py`."""
    module_name = path.removesuffix(".py").replace("/", ".")
    package = module_name.split(".")[0]
    tree = ast.parse(source, filename=path)
    violations: list[Violation] = []
    for line, module, names in imported_modules(tree, module_name):
        top = module.split(".")[0]
        if package in PURE and is_io_import(module, names):
            violations.append(Violation(path, line, module, f"{package}/ does no I/O"))
        allowed = ALLOWED_OURS.get(package)
        if (path, module) in EXCEPTIONS:
            continue
        if allowed is not None and top in OURS and top != package and top not in allowed:
            rule = ", ".join(sorted(allowed)) or "none of our packages"
            violations.append(Violation(path, line, module, f"{package}/ may import {rule}"))
    if package in PURE:
        violations += [
            Violation(path, node.lineno, "open", f"{package}/ does no I/O (builtin open)")
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "open"
        ]
    return violations


def package_files(package: str) -> list[Path]:
    """The package's own modules; app templates (`services/templates/T/`) are app code, checked
    on their own."""
    root = REPO / package
    return sorted(
        path
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts and not is_template_tree(path)
    )


def is_template_tree(path: Path) -> bool:
    return path.parent.is_relative_to(TEMPLATES) and path.parent != TEMPLATES


@pytest.mark.parametrize("package", sorted(ALLOWED_OURS))
def test_package_respects_layering(package: str) -> None:
    violations: list[Violation] = []
    for path in package_files(package):
        relative = path.relative_to(REPO).as_posix()
        violations += check_source(path.read_text(encoding="utf-8"), relative)
    assert not violations, "layering violations:\n" + "\n".join(map(str, violations))


def template_app_violations(source: str, path: str) -> list[Violation]:
    """An app's code may import the SDK, `vm.native`, and none of our other packages."""
    tree = ast.parse(source, filename=path)
    return [
        Violation(path, line, module, "app code imports only the SDK (vm.native)")
        for line, module, _ in imported_modules(tree, "app")
        if module.split(".")[0] in OURS and module != "vm.native"
    ]


def test_template_apps_import_only_the_sdk() -> None:
    apps = sorted(TEMPLATES.glob("*/app.py"))
    assert len(apps) >= 3
    violations: list[Violation] = []
    for path in apps:
        relative = path.relative_to(REPO).as_posix()
        violations += template_app_violations(path.read_text(encoding="utf-8"), relative)
    assert not violations, "\n".join(map(str, violations))
    bad = "from vm.native import App\nfrom sequencer import store\n"
    assert [v.module for v in template_app_violations(bad, "x/app.py")] == ["sequencer"]


# The checker itself: it must be able to fail.


def test_checker_flags_io_and_upward_imports() -> None:
    source = (
        "import os.path\n"
        "from sqlalchemy import select\n"
        "from services import cli\n"
        "import vm\n"
        "data = open('x').read()\n"
        "mod = __import__('socket')\n"
    )
    found = [(v.line, v.module) for v in check_source(source, "rollup/codec.py")]
    assert found == [
        (1, "os.path"),
        (2, "sqlalchemy"),
        (3, "services"),
        (4, "vm"),
        (6, "socket"),
        (5, "open"),
    ]
    assert str(check_source("import time\n", "vm/native/gas.py")[0]) == (
        "vm/native/gas.py:1: time: vm/ does no I/O"
    )


def test_checker_accepts_allowed_imports() -> None:
    source = (
        "from __future__ import annotations\n"
        "import hashlib\n"
        "from io import BytesIO\n"
        "from . import rlp\n"
        "from .errors import RollupError\n"
        "from rollup.types import Block\n"
    )
    assert check_source(source, "vm/native/loader.py") == []
    assert check_source("from . import rlp\n", "rollup/__init__.py") == []
    assert resolve_relative("vm.native.__init__", 2, "state") == "vm.state"
    assert resolve_relative("vm.native.loader", 2, None) == "vm"


def test_checker_direction_rules_outside_the_pure_packages() -> None:
    assert check_source("import os\nfrom sequencer import store\n", "da/poster.py") == []
    assert [v.module for v in check_source("from services import rpc\n", "da/x.py")] == ["services"]
    assert [v.module for v in check_source("from sequencer import x\n", "bridge/y.py")] == [
        "sequencer"
    ]
    assert check_source("import web3\nfrom rollup import types\n", "bridge/l1.py") == []
