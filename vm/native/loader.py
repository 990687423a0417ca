"""Turns app source text into an `App` class, through the determinism sandbox.

    source -> ast.parse -> sandbox.check_source (rejections name line and rule)
           -> sandbox.instrument (metering) -> compile -> exec with the app builtins
           -> exactly one App subclass, no mutable module-level state
Module code runs under a load-time gas budget, so an endless loop at import fails the load.
"""

from __future__ import annotations

import ast
import sys
import types
from typing import Any

from rollup.crypto import keccak
from rollup.errors import AppLoadError
from vm.native.gas import GasMeter, Halt
from vm.native.sandbox import METER_NAME, check_source, instrument, safe_builtins
from vm.native.sdk import App

__all__ = ["load_app_class", "LOAD_GAS"]

LOAD_GAS = 50_000_000
_MUTABLE = (list, dict, bytearray)


def _parse(source: str, filename: str) -> ast.Module:
    try:
        return ast.parse(source, filename)
    except SyntaxError as exc:
        raise AppLoadError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}") from None


def _reject(filename: str, problems: list[str]) -> AppLoadError:
    lines = "\n".join(f"  {filename}:{p}" for p in problems)
    return AppLoadError(f"{filename}: app code rejected by the sandbox:\n{lines}")


def load_app_class(
    source: str, filename: str = "app.py", class_name: str | None = None, metered: bool = True
) -> type[App]:
    """Check, instrument and run app source; `metered=False` exists only so benchmarks can
    measure what metering costs."""
    tree = _parse(source, filename)
    violations = check_source(tree)
    if violations:
        raise _reject(filename, [str(v) for v in violations])
    code = compile(instrument(tree) if metered else tree, filename, "exec", dont_inherit=True)
    # A unique module name, registered so typing can resolve the app's string annotations.
    module_name = f"rollup_app_{keccak(source.encode()).hex()[:16]}{'' if metered else '_raw'}"
    module = types.ModuleType(module_name)
    module.__file__ = filename
    namespace = module.__dict__
    namespace["__builtins__"] = safe_builtins(namespace)
    namespace[METER_NAME] = GasMeter(LOAD_GAS)
    sys.modules[module_name] = module
    try:
        exec(code, namespace)  # noqa: S102 - checked and instrumented app code
    except Halt as exc:
        raise AppLoadError(f"{filename}: module code halted: {exc.reason}") from None
    except Exception as exc:
        raise AppLoadError(f"{filename}: failed to load: {type(exc).__name__}: {exc}") from None
    app_class = _pick_class(namespace, module_name, filename, class_name)
    _check_no_mutable_state(namespace, app_class, filename)
    return app_class


def _pick_class(
    namespace: dict[str, Any], module_name: str, filename: str, class_name: str | None
) -> type[App]:
    classes = [
        value
        for value in namespace.values()
        if isinstance(value, type) and issubclass(value, App) and value.__module__ == module_name
    ]
    if class_name is not None:
        classes = [c for c in classes if c.__name__ == class_name]
        if not classes:
            raise AppLoadError(f"{filename}: no App subclass named {class_name}")
    if len(classes) != 1:
        names = ", ".join(c.__name__ for c in classes) or "none"
        raise AppLoadError(f"{filename}: expected exactly one App subclass, found {names}")
    return classes[0]


def _check_no_mutable_state(namespace: dict[str, Any], app_class: type, filename: str) -> None:
    """State outside storage would differ between a node that restarted and one that did not."""
    problems = [
        f"[global] module-level {name!r} is a mutable {type(value).__name__}; "
        "keep state in storage fields (Map, Value)"
        for name, value in namespace.items()
        if isinstance(value, _MUTABLE) and not name.startswith("__")
    ]
    problems += [
        f"[global] class attribute {app_class.__name__}.{name} is a mutable "
        f"{type(value).__name__}; keep state in storage fields (Map, Value)"
        for name, value in vars(app_class).items()
        if isinstance(value, _MUTABLE) and not name.startswith("__")
    ]
    if problems:
        raise _reject(filename, problems)
