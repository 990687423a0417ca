"""The determinism sandbox for native apps: check the source, then instrument it for metering.

`check_source` walks the AST and rejects, naming the line and the rule:
    import        only `vm.native` (its public SDK names), `typing` and `__future__`
    name          builtins that reach outside the app or are not deterministic (eval, exec,
                  open, __import__, getattr, globals, id, hash, print, input, ...)
    dunder        any `__name__` or `.__attr__`: the usual walk out of a sandbox
    frame         `.gi_frame`, `.f_globals`, `.tb_frame`, ... (frames lead to the runtime)
    private       `._ctx` and `_rollup*`: the runtime's state handle stays private
    format        `.format` / `.format_map` (their `{0.__class__}` fields escape the dunder rule)
    float         float and complex literals, `/` (use `//`), float() and complex()
    set           set literals, comprehensions, set() and frozenset(): their iteration order
                  over str/bytes follows per-process hash seeds, so two nodes would disagree
    global        `global` / `nonlocal`: app state lives in storage fields only
    except        bare `except:` or `except BaseException`: they would swallow the meter's halt
    async         `async` / `await`: there is no event loop in a transaction
    augassign     `*=`, `**=`, `<<=` on an item or attribute (write `x = x * y`)
`instrument` then rewrites the tree so that work is counted deterministically (the same
count on every machine, unlike time): each loop iteration and each comprehension item costs
`STEP_GAS`; each function call costs `CALL_STEP_GAS` and counts toward `MAX_DEPTH`; `*`,
`**`, `<<`, `bytes(n)`, `bytearray(n)`, `range(n)` and the padding methods (`ljust`,
`to_bytes`, ...) check the size of what they would build first and charge for it, so
memory per transaction is bounded by gas. Process isolation (one app per process) remains
the security boundary; this sandbox keeps honest apps deterministic and stops the obvious
escapes.
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vm.native import sdk, types

__all__ = [
    "SandboxViolation",
    "Violation",
    "check_source",
    "instrument",
    "safe_builtins",
    "METER_NAME",
    "ALLOWED_MODULES",
]

METER_NAME = "__meter__"
ALLOWED_MODULES = ("vm.native", "typing", "__future__")
# What `from vm.native import ...` may name: the SDK, not the runtime behind it.
SDK_NAMES = frozenset(sdk.__all__ + types.__all__) - {
    "Msg", "CallContext", "MethodSpec", "abi_type_of",
}  # fmt: skip
FORBIDDEN_NAMES = frozenset(
    [
        "eval",
        "exec",
        "compile",
        "open",
        "__import__",
        "globals",
        "locals",
        "vars",
        "getattr",
        "setattr",
        "delattr",
        "hasattr",
        "input",
        "print",
        "breakpoint",
        "memoryview",
        "id",
        "hash",
        "help",
        "exit",
        "quit",
        "float",
        "complex",
        "set",
        "frozenset",
        "type",
        "object",
        "classmethod",
        "staticmethod",
        "super",
    ]
)
FRAME_PREFIXES = ("gi_", "f_", "tb_", "cr_", "ag_", "co_", "func_")
SIZED_METHODS = frozenset({"to_bytes", "ljust", "rjust", "center", "zfill", "expandtabs"})
_SIZE_OPS: dict[type[ast.operator], str] = {ast.Mult: "mul", ast.Pow: "pow", ast.LShift: "lshift"}


@dataclass(frozen=True, slots=True)
class Violation:
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


class SandboxViolation(Exception):
    def __init__(self, filename: str, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  {filename}:{v}" for v in violations)
        super().__init__(f"{filename}: app code rejected by the sandbox:\n{lines}")


class _Checker(ast.NodeVisitor):
    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def _flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", 0), rule, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name not in ("typing", "__future__"):
                self._flag(node, "import", f"import of {alias.name!r} is not allowed "
                           f"(allowed: {', '.join(ALLOWED_MODULES)})")  # fmt: skip

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module not in ALLOWED_MODULES:
            self._flag(node, "import", f"import from {module or '.'!r} is not allowed "
                       f"(allowed: {', '.join(ALLOWED_MODULES)})")  # fmt: skip
        elif module == "vm.native":
            for alias in node.names:
                if alias.name != "*" and alias.name not in SDK_NAMES:
                    self._flag(node, "import", f"{alias.name!r} is not part of the app SDK")
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            self._flag(node, "dunder", f"name {node.id!r} is not allowed")
        elif node.id in FORBIDDEN_NAMES:
            self._flag(node, "name", f"{node.id!r} is not available to apps")
        elif node.id.startswith("_rollup"):
            self._flag(node, "private", f"name {node.id!r} is reserved for the runtime")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        attr = node.attr
        if attr.startswith("__"):
            self._flag(node, "dunder", f"attribute {attr!r} is not allowed")
        elif attr.startswith(FRAME_PREFIXES):
            self._flag(node, "frame", f"attribute {attr!r} reaches interpreter frames")
        elif attr == "_ctx" or attr.startswith("_rollup"):
            self._flag(node, "private", f"attribute {attr!r} belongs to the runtime")
        elif attr in ("format", "format_map"):
            self._flag(node, "format", "str.format can read attributes by name; use an f-string")
        self.generic_visit(node)

    def _check_def_name(self, node: ast.FunctionDef | ast.ClassDef) -> None:
        if node.name.startswith("__"):
            self._flag(node, "dunder", f"definition {node.name!r} is not allowed (use init())")

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._check_def_name(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_def_name(node)
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._flag(node, "async", "async functions are not allowed")

    def visit_Await(self, node: ast.Await) -> None:
        self._flag(node, "async", "await is not allowed")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (float, complex)):
            self._flag(node, "float", "float and complex numbers are not deterministic state")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):
            self._flag(node, "float", "'/' makes a float; use '//' for integer division")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Div):
            self._flag(node, "float", "'/=' makes a float; use '//='")
        if type(node.op) in _SIZE_OPS and not isinstance(node.target, ast.Name):
            self._flag(node, "augassign", "write 'x = x * y' for items and attributes")
        self.generic_visit(node)

    def visit_Set(self, node: ast.Set) -> None:
        self._flag(node, "set", "sets iterate in a per-process order; use a dict or a list")
        self.generic_visit(node)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._flag(node, "set", "sets iterate in a per-process order; use a dict or a list")
        self.generic_visit(node)

    def visit_Global(self, node: ast.Global) -> None:
        self._flag(node, "global", "app state lives in storage fields, not in globals")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._flag(node, "global", "nonlocal state is not allowed")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        catches_all = isinstance(node.type, ast.Name) and node.type.id == "BaseException"
        if node.type is None or catches_all:
            self._flag(node, "except", "catch Exception (or narrower), not everything")
        self.generic_visit(node)


def check_source(tree: ast.Module) -> list[Violation]:
    checker = _Checker()
    checker.visit(tree)
    return sorted(checker.violations, key=lambda v: v.line)


def _meter_call(method: str, args: list[ast.expr], node: ast.AST) -> ast.Call:
    func = ast.Attribute(ast.Name(METER_NAME, ast.Load()), method, ast.Load())
    return ast.copy_location(ast.Call(func, args, []), node)


def _meter_stmt(method: str, node: ast.AST) -> ast.Expr:
    return ast.copy_location(ast.Expr(_meter_call(method, [], node)), node)


class _Instrumenter(ast.NodeTransformer):
    def _function(self, node: ast.FunctionDef) -> ast.FunctionDef:
        self.generic_visit(node)
        body = node.body
        guarded = ast.Try(body=body, handlers=[], orelse=[], finalbody=[_meter_stmt("leave", node)])
        node.body = [_meter_stmt("enter", node), ast.copy_location(guarded, node)]
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        return self._function(node)

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        self.generic_visit(node)
        node.body = _meter_call("value", [node.body], node)
        return node

    def _loop(self, node: ast.For | ast.While) -> ast.For | ast.While:
        self.generic_visit(node)
        node.body.insert(0, _meter_stmt("step", node))
        return node

    def visit_For(self, node: ast.For) -> ast.For | ast.While:
        return self._loop(node)

    def visit_While(self, node: ast.While) -> ast.For | ast.While:
        return self._loop(node)

    def visit_comprehension(self, node: ast.comprehension) -> ast.comprehension:
        self.generic_visit(node)
        node.iter = _meter_call("each", [node.iter], node.iter)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        method = _SIZE_OPS.get(type(node.op))
        if method is None:
            return node
        return _meter_call(method, [node.left, node.right], node)

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt:
        self.generic_visit(node)
        method = _SIZE_OPS.get(type(node.op))
        if method is None or not isinstance(node.target, ast.Name):
            return node
        value = _meter_call(method, [ast.Name(node.target.id, ast.Load()), node.value], node)
        return ast.copy_location(ast.Assign([node.target], value), node)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in SIZED_METHODS and not node.keywords:
            target = ast.Constant(func.attr)
            return _meter_call("sized", [func.value, target, *node.args], node)
        return node


def instrument(tree: ast.Module) -> ast.Module:
    tree = _Instrumenter().visit(tree)
    return ast.fix_missing_locations(tree)


# ---- the builtins an app sees ------------------------------------------------------------------

_PLAIN_BUILTINS = [
    "abs",
    "all",
    "any",
    "bool",
    "chr",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "ord",
    "property",
    "reversed",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "Exception",
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "ZeroDivisionError",
    "ArithmeticError",
    "AssertionError",
    "RuntimeError",
    "StopIteration",
    "LookupError",
    "OverflowError",
    "NotImplementedError",
    "True",
    "False",
    "None",
    "NotImplemented",
]


def safe_builtins(module_globals: dict[str, Any]) -> dict[str, Any]:
    """The builtins of an app module; allocation by size goes through the current meter."""
    table: dict[str, Any] = {name: getattr(builtins, name) for name in _PLAIN_BUILTINS}

    def meter() -> Any:
        return module_globals[METER_NAME]

    def sized_bytes(*args: Any) -> bytes:
        meter().check_size(args[0] if args and isinstance(args[0], int) else 0)
        return bytes(*args)

    # `bytes` in app code is this function: it must still work as the ABI type in hints
    sized_bytes.__abi__ = "bytes"  # type: ignore[attr-defined]

    def sized_bytearray(*args: Any) -> bytearray:
        meter().check_size(args[0] if args and isinstance(args[0], int) else 0)
        return bytearray(*args)

    def sized_range(*args: int) -> range:
        span = range(*args)
        meter().check_range(len(span))
        return span

    def guarded_pow(base: int, exp: int, mod: int | None = None) -> int:
        return meter().pow(base, exp, mod) if mod is None else pow(base, exp, mod)

    def guarded_import(name: str, globals: Any = None, locals: Any = None,
                       fromlist: Sequence[str] = (), level: int = 0) -> Any:  # fmt: skip
        if level or name not in ALLOWED_MODULES:
            raise ImportError(f"import of {name!r} is not allowed")
        return builtins.__import__(name, globals, locals, fromlist, level)

    table.update(
        bytes=sized_bytes,
        bytearray=sized_bytearray,
        range=sized_range,
        pow=guarded_pow,
        __import__=guarded_import,
        __build_class__=builtins.__build_class__,
        __name__="builtins",
    )
    return table


def iterate_metered(meter: Any, iterable: Iterable[Any]) -> Iterator[Any]:
    for item in iterable:
        meter.step()
        yield item
