"""Turns app source text into an `App` class.

Today it compiles the module and finds the App subclass; the determinism sandbox (import
allowlist, forbidden builtins, compute metering) extends this loader.
"""

from __future__ import annotations

import sys
import types

from rollup.crypto import keccak
from rollup.errors import AppLoadError
from vm.native.sdk import App

__all__ = ["load_app_class"]


def load_app_class(
    source: str, filename: str = "app.py", class_name: str | None = None
) -> type[App]:
    try:
        code = compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        raise AppLoadError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    # A unique module name, registered so typing can resolve the app's string annotations.
    module_name = "rollup_app_" + keccak(source.encode()).hex()[:16]
    module = types.ModuleType(module_name)
    module.__file__ = filename
    sys.modules[module_name] = module
    try:
        exec(code, module.__dict__)  # noqa: S102 - app code is the input of this loader
    except Exception as exc:
        raise AppLoadError(f"{filename}: failed to load: {type(exc).__name__}: {exc}") from None
    classes = [
        value
        for value in module.__dict__.values()
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
