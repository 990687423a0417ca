"""Turns app source text into an `App` class, through the determinism sandbox.

    source -> ast.parse -> sandbox.check_source (rejections name line and rule)
           -> sandbox.instrument (metering) -> compile                 = prepare(): no app code runs
           -> exec with the app builtins, under a meter and the app limits   = run_module()
           -> exactly one App subclass; nothing module code leaves behind may change later
              (no list, dict or app object at module or class level, no mutable default or
              closure, no module object anywhere)
Module code runs under a gas budget: LOAD_GAS when a node loads installed code, the
transaction's remaining gas when an upgrade request checks new code. `static_load_gas` tells
what that load will charge without running anything, for the module code whose work is
known from the text alone (declarations, constants, SDK calls): simulations answer with it.
"""

from __future__ import annotations

import ast
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from rollup.crypto import keccak
from rollup.errors import AppLoadError
from vm.native import sdk
from vm.native.gas import GasMeter, Halt, scrub
from vm.native.sandbox import (
    METER_NAME,
    SDK_NAMES,
    BuiltinType,
    analyze,
    app_builtins,
    app_limits,
    check_source,
    instrument,
)
from vm.native.sdk import App

__all__ = [
    "load_app_class",
    "prepare",
    "run_module",
    "static_load_gas",
    "check_sdk_exports",
    "Prepared",
    "LOAD_GAS",
]

LOAD_GAS = 50_000_000  # what module code may spend at most, wherever it is loaded


@dataclass(frozen=True, slots=True)
class Prepared:
    """Checked, instrumented and compiled app source; nothing of it has run."""

    source: str
    filename: str
    tree: ast.Module  # instrumented
    code: types.CodeType
    module_name: str


def _parse(source: str, filename: str) -> ast.Module:
    try:
        return ast.parse(source, filename)
    except SyntaxError as exc:
        raise AppLoadError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    except (ValueError, MemoryError):  # a null byte; the parser's own stack limit (3.11)
        raise AppLoadError(f"{filename}: the source cannot be parsed") from None


def _reject(filename: str, problems: list[str]) -> AppLoadError:
    lines = "\n".join(f"  {filename}:{p}" for p in problems)
    return AppLoadError(f"{filename}: app code rejected by the sandbox:\n{lines}")


def prepare(source: str, filename: str = "app.py", metered: bool = True) -> Prepared:
    """Everything that can be known about `source` without running it; raises AppLoadError.
    Parsing, checking and compiling recurse as deep as the source nests: under the app limits
    (a deeply nested source would otherwise overflow the C stack), and a RecursionError is
    a rejection like any other."""
    with app_limits():
        try:
            return _prepare(source, filename, metered)
        except RecursionError:
            raise AppLoadError(f"{filename}: the source is nested too deeply") from None


def _prepare(source: str, filename: str, metered: bool) -> Prepared:
    tree = _parse(source, filename)
    analysis = analyze(tree)
    violations = check_source(tree, analysis)
    if violations:
        raise _reject(filename, [str(v) for v in violations])
    if metered:
        tree = instrument(tree, analysis)
    try:
        code = compile(tree, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:  # what only the compiler sees: `return` outside a function...
        raise AppLoadError(f"{filename}:{exc.lineno}: syntax error: {exc.msg}") from None
    # A name unique to the source, so typing can resolve the app's hints from sys.modules.
    module_name = f"rollup_app_{keccak(source.encode()).hex()[:16]}{'' if metered else '_raw'}"
    return Prepared(source, filename, tree, code, module_name)


def run_module(
    prepared: Prepared, meter: GasMeter, class_name: str | None = None, register: bool = True
) -> type[App]:
    """Run the module code under `meter`. A `Halt` (out of gas, a bound) propagates as it is;
    any other failure is an AppLoadError. `register=False` leaves sys.modules as it was."""
    filename = prepared.filename
    module = types.ModuleType(prepared.module_name)
    module.__file__ = filename
    namespace = module.__dict__
    namespace["__builtins__"] = app_builtins(namespace)
    namespace[METER_NAME] = meter
    previous = sys.modules.get(prepared.module_name)
    sys.modules[prepared.module_name] = module
    try:
        with app_limits():
            exec(prepared.code, namespace)  # noqa: S102 - checked and instrumented app code
        app_class = _pick_class(namespace, prepared.module_name, filename, class_name)
        _check_frozen(namespace, prepared.module_name, filename)
    except (Halt, AppLoadError):
        raise
    except RecursionError:
        raise AppLoadError(f"{filename}: failed to load: nesting too deep") from None
    except Exception as exc:
        raise AppLoadError(
            scrub(f"{filename}: failed to load: {type(exc).__name__}: {exc}")
        ) from None
    finally:
        if not register:
            if previous is None:
                sys.modules.pop(prepared.module_name, None)
            else:
                sys.modules[prepared.module_name] = previous
    return app_class


def load_app_class(
    source: str, filename: str = "app.py", class_name: str | None = None, metered: bool = True
) -> type[App]:
    """Check, instrument and run app source with LOAD_GAS; `metered=False` exists only so
    benchmarks can measure what metering costs."""
    prepared = prepare(source, filename, metered)
    try:
        return run_module(prepared, GasMeter(LOAD_GAS), class_name)
    except Halt as exc:
        raise AppLoadError(f"{filename}: module code halted: {exc.reason}") from None


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


# ---- nothing module code leaves may change, or be a module ------------------------------------

_FROZEN = (type(None), bool, int, str, bytes, range, type(Ellipsis), type(NotImplemented))
_DEFINITIONS = (
    type,
    BuiltinType,
    types.BuiltinFunctionType,
    types.GenericAlias,
    types.UnionType,
    sdk.Value,
    sdk.Map,
)


def _problem(value: Any, module_name: str, seen: set[int]) -> str | None:
    """Why `value` could carry state from one call to the next (or escape), or None."""
    if isinstance(value, types.ModuleType):
        return "is a module"
    if isinstance(value, (*_FROZEN, *_DEFINITIONS)):
        return None
    if id(value) in seen:
        return None
    seen.add(id(value))
    if isinstance(value, tuple):
        return next(filter(None, (_problem(v, module_name, seen) for v in value)), None)
    if isinstance(value, types.FunctionType):
        parts = [*(value.__defaults__ or ()), *(value.__kwdefaults__ or {}).values()]
        parts += [cell.cell_contents for cell in value.__closure__ or () if _filled(cell)]
        inner = next(filter(None, (_problem(v, module_name, seen) for v in parts)), None)
        return inner and f"has a default or closure value that {inner}"
    if isinstance(value, property):
        parts = [value.fget, value.fset, value.fdel]
        return next(filter(None, (_problem(v, module_name, seen) for v in parts if v)), None)
    if type(value).__module__ == "__future__":  # `from __future__ import annotations`
        return None
    return f"is a mutable {type(value).__name__}"


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _app_classes(namespace: dict[str, Any], module_name: str) -> Iterator[type]:
    todo = [v for v in namespace.values() if isinstance(v, type) and v.__module__ == module_name]
    seen: set[type] = set()
    while todo:
        cls = todo.pop()
        if cls in seen:
            continue
        seen.add(cls)
        yield cls
        todo += [
            v for v in vars(cls).values() if isinstance(v, type) and v.__module__ == module_name
        ]


def _check_frozen(namespace: dict[str, Any], module_name: str, filename: str) -> None:
    """State outside storage would differ between a node that restarted and one that did not;
    a module object would be a way out of the sandbox."""
    seen: set[int] = set()
    problems = [
        f"[global] module-level {name!r} {problem}; keep state in storage fields (Map, Value)"
        for name, value in namespace.items()
        if not name.startswith("__")
        for problem in [_problem(value, module_name, seen)]
        if problem
    ]
    for cls in _app_classes(namespace, module_name):
        problems += [
            f"[global] class attribute {cls.__name__}.{name} {problem}; keep state in storage "
            "fields (Map, Value)"
            for name, value in vars(cls).items()
            if not name.startswith("__")
            for problem in [_problem(value, module_name, set())]
            if problem
        ]
    if problems:
        raise _reject(filename, problems)


def check_sdk_exports() -> None:
    """What `from vm.native import ...` gives apps holds no module (vm/native/__init__ checks
    it once, when the package is complete)."""
    import vm.native as package

    for name in SDK_NAMES:
        if isinstance(getattr(package, name, None), types.ModuleType):
            raise RuntimeError(f"vm.native.{name} is a module: apps must never get one")


# ---- what a load will charge, known from the text alone -----------------------------------------


class _Opaque:
    """A value the estimate does not need to know (an SDK object, a class, a function)."""


_OPAQUE = _Opaque()


class _Unknown(Exception):  # noqa: N818 - a signal: this module's load cost is not static
    pass


def static_load_gas(prepared: Prepared) -> int | None:
    """The gas `run_module(prepared, ...)` will use, when the module code at top level (and in
    class bodies) only declares: imports, classes, functions, constants made of literals,
    calls of SDK names and `bytes(n)`. None when it does more (calls its own functions, loops,
    branches...): then only running it tells. Nothing of the app runs here: the meter's own
    hooks are called with literal values."""
    meter = GasMeter(2**62)
    builtins_table = app_builtins({"__name__": prepared.module_name, METER_NAME: meter})
    sdk_names = _imported_sdk_names(prepared.tree)
    try:
        with app_limits():
            _Estimate(meter, builtins_table, sdk_names).block(prepared.tree.body, {})
    except (_Unknown, Halt, Exception):
        return None
    return meter.used


def _imported_sdk_names(tree: ast.Module) -> frozenset[str]:
    return frozenset(
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "vm.native"
        for alias in node.names
    )


class _Estimate:
    def __init__(self, meter: GasMeter, table: dict[str, Any], sdk_names: frozenset[str]) -> None:
        self.meter, self.table, self.sdk_names = meter, table, sdk_names

    def block(self, body: list[ast.stmt], env: dict[str, Any]) -> None:
        for stmt in body:
            self.statement(stmt, env)

    def statement(self, stmt: ast.stmt, env: dict[str, Any]) -> None:
        if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Pass)):
            return
        if isinstance(stmt, ast.Expr):
            value = stmt.value
            if isinstance(value, ast.Constant):  # a docstring
                return
            if _is_meter_call(value, "charge"):
                self.value(value, env)
                return
            raise _Unknown()
        if isinstance(stmt, ast.Assign):
            value = self.value(stmt.value, env)
            for target in stmt.targets:
                if not isinstance(target, ast.Name):
                    raise _Unknown()
                env[target.id] = value
            return
        if isinstance(stmt, ast.AnnAssign):
            if not isinstance(stmt.target, ast.Name):
                raise _Unknown()
            self.annotation(stmt.annotation, env)
            env[stmt.target.id] = _OPAQUE if stmt.value is None else self.value(stmt.value, env)
            return
        if isinstance(stmt, ast.FunctionDef):
            self.function(stmt, env)
            return
        if isinstance(stmt, ast.ClassDef):
            self.decorators(stmt.decorator_list, env)
            for expr in stmt.bases:
                self.value(expr, env)
            self.block(stmt.body, dict(env))  # class bodies see module names, not vice versa
            env[stmt.name] = _OPAQUE
            return
        raise _Unknown()

    def function(self, node: ast.FunctionDef, env: dict[str, Any]) -> None:
        arguments = node.args
        self.decorators(node.decorator_list, env)
        for expr in [*arguments.defaults, *arguments.kw_defaults]:
            if expr is not None:
                self.value(expr, env)
        for arg in [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            arguments.vararg,
            arguments.kwarg,
        ]:
            if arg is not None and arg.annotation is not None:
                self.annotation(arg.annotation, env)
        if node.returns is not None:
            self.annotation(node.returns, env)
        env[node.name] = _OPAQUE

    def decorators(self, decorators: list[ast.expr], env: dict[str, Any]) -> None:
        """SDK decorators (@method, @view...) and `property` run no app code; others might."""
        for expr in decorators:
            if not (
                isinstance(expr, ast.Name)
                and expr.id not in env
                and (expr.id in self.sdk_names or expr.id in self.table)
            ):
                raise _Unknown()

    def annotation(self, node: ast.expr, env: dict[str, Any]) -> None:
        """Hints are not instrumented (the checker keeps them to names and SDK calls)."""
        for item in ast.walk(node):
            if isinstance(item, ast.Call) and not (
                isinstance(item.func, ast.Name) and item.func.id in self.sdk_names
            ):
                raise _Unknown()

    def value(self, node: ast.expr, env: dict[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            if node.id in env:
                return env[node.id]
            if node.id in self.sdk_names or node.id in self.table:
                return _OPAQUE
            raise _Unknown()
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.value(e, env) for e in node.elts]
            return tuple(items) if isinstance(node, ast.Tuple) else items
        if isinstance(node, ast.UnaryOp):
            operand = self.value(node.operand, env)
            if isinstance(operand, _Opaque) or isinstance(node.op, ast.Not):
                raise _Unknown()
            if isinstance(node.op, ast.USub):
                return -operand
            return +operand if isinstance(node.op, ast.UAdd) else ~operand
        if isinstance(node, ast.Attribute):
            self.value(node.value, env)
            return _OPAQUE
        if isinstance(node, ast.Subscript):  # hints: tuple[uint64, address]
            self.value(node.value, env)
            self.value(node.slice, env)  # a key hook in it is not estimated: unknown
            return _OPAQUE
        if isinstance(node, ast.Call):
            return self.call(node, env)
        raise _Unknown()

    def call(self, node: ast.Call, env: dict[str, Any]) -> Any:
        if node.keywords and any(k.arg is None for k in node.keywords):
            raise _Unknown()
        args = [self.value(a, env) for a in node.args if not isinstance(a, ast.Starred)]
        if len(args) != len(node.args):
            raise _Unknown()
        kwargs = {k.arg: self.value(k.value, env) for k in node.keywords if k.arg}
        func = node.func
        if _is_meter_call(node, func.attr if isinstance(func, ast.Attribute) else ""):
            assert isinstance(func, ast.Attribute)  # a hook of the meter, on literal values
            literal = not any(isinstance(v, (_Opaque, list)) for v in [*args, *kwargs.values()])
            if func.attr not in _ESTIMATED_HOOKS or not literal:
                raise _Unknown()
            return getattr(self.meter, func.attr)(*args, **kwargs)
        if not isinstance(func, ast.Name) or func.id in env:
            raise _Unknown()
        if func.id in self.sdk_names:
            return _OPAQUE  # SDK declarations (Map, Value, indexed...) charge nothing
        sized = len(args) <= 1 and all(isinstance(a, int) for a in args) and not kwargs
        if func.id in ("bytes", "bytearray") and sized:
            return self.table[func.id](*args)
        raise _Unknown()


_ESTIMATED_HOOKS = frozenset(
    {"charge", "add", "sub", "mul", "floordiv", "mod", "pow", "lshift", "bitor", "bitand", "bitxor"}
)


def _is_meter_call(node: ast.expr, name: str) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == name
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == METER_NAME
    )
