"""The determinism sandbox for native apps: what app source may say, how it is rewritten so
that every costly operation goes through the meter, and what names and limits it runs with.

`check_source` walks the AST and rejects, naming the line and the rule:
    import      only `from vm.native import <SDK names>` and `from __future__ import
                annotations`: no module object is ever bound in app code
    name        a name that is neither defined by the app nor one of the app builtins below
    dunder      any `__name__` or `.__attr__`: the usual walk out of a sandbox
    attribute   an attribute outside the allowlist: the reviewed and priced methods of builtin
                values (gas.PRICED_NAMES), the SDK's API (SDK_ATTRIBUTES), and names the app
                defines itself (fields, methods, classes, attributes it assigns, arguments)
    escape      names that lead out of any object even when the app defines them (`mro`, `sys`,
                `modules`, `builtins`, `obj`...); `frame` (`gi_`, `f_`, `tb_`, `co_`...),
                `private` (`_ctx`, `_rollup*`) and `format` (`.format` reads attributes by
                name) are the same kind of rule
    annotation  a type hint that is a string, or more than names, subscripts, `X | Y` and
                calls like `indexed(address)` (hints are evaluated by the SDK, unmetered)
    float       float and complex literals, `/` (use `//`)
    set         set literals and comprehensions: sets iterate in a per-process order
    size        an integer literal above gas.MAX_INT_BITS bits
    global      `global` / `nonlocal`: app state lives in storage fields only
    except      bare `except:`, `except BaseException`, `except*`
    async       `async` / `await`
    with        `with` (apps have no context managers)
    match       `match` (class patterns read attributes by name)
    class       class keywords such as `metaclass=`
    generator   `finally` in a generator (it would run whenever the collector finds it),
                `yield` in a lambda
    finally     `return`, `break` or `continue` in a `finally` (they drop the exception in
                flight: a halt; the meter keeps the first halt anyway)
    slice       slices inside tuples; slice assignment other than `x[a:b] = value`
    star        a starred target anywhere but the top of a plain assignment
`instrument` then rewrites the checked tree so that work is counted deterministically (gas.py
has the prices): each block charges its size as it starts; `+ - * // % ** << | & ^`, the
comparisons, subscripts, slices, `*x`/`**x`, f-string fields and `%` formatting go through
the meter; attribute reads and calls whose name is a builtin method go through
`__meter__.attr`/`__meter__.method`, which price the reviewed methods of builtin values and
refuse the rest; attribute writes go through `__guard__`, which allows them only on objects of
classes the app defines (never on classes, functions or SDK objects, so nothing outlives a
call); and an `except` clause hands what it caught to the meter first (a RecursionError stays a
failure, library messages lose memory addresses).

The app builtins (`app_builtins`) are plain where a call is O(1) and metered otherwise;
`int`, `str`, `bytes`, `bytearray`, `list`, `tuple` and `dict` are `BuiltinType` proxies that
behave as the types in `isinstance`, hints and `list[uint256]`, and price their calls. There is
no `repr`, and text conversions refuse values without a deterministic text (functions, app
objects, iterators...). `app_limits` sets the recursion limit and CPython's int/str digit limit
while app code runs. Process isolation (one app per process) remains the security boundary.
"""

from __future__ import annotations

import ast
import builtins
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from rollup.errors import AppLoadError
from vm.native import sdk, types
from vm.native.gas import (
    MAX_INT_BITS,
    MAX_STR_DIGITS,
    NODE_GAS,
    PRICED_NAMES,
    ROUTED_NAMES,
    GasMeter,
)

__all__ = [
    "SandboxViolation",
    "Violation",
    "BuiltinType",
    "check_source",
    "instrument",
    "block_cost",
    "analyze",
    "Analysis",
    "app_builtins",
    "app_limits",
    "enter_app_limits",
    "leave_app_limits",
    "METER_NAME",
    "GUARD_NAME",
    "SDK_NAMES",
    "SDK_ATTRIBUTES",
    "APP_RECURSION",
]

METER_NAME = "__meter__"
GUARD_NAME = "__guard__"
# What `from vm.native import ...` may name: the SDK, not the runtime behind it.
SDK_NAMES = frozenset(sdk.__all__ + types.__all__) - {
    "Msg",
    "CallContext",
    "MethodSpec",
    "abi_type_of",
}
# Attributes of the SDK's objects that apps read: App, Msg, BlockEnv, Revert/Panic, exceptions.
SDK_ATTRIBUTES = frozenset(
    {
        "msg",
        "block",
        "address",
        "emit",
        "send",
        "init",
        "withdraw",
        "withdraw_token",
        "sender",
        "value",
        "data",
        "origin",
        "number",
        "timestamp",
        "coinbase",
        "base_fee",
        "gas_limit",
        "chain_id",
        "prev_randao",
        "reason",
        "code",
        "args",
        "values",
    }
)
# Never allowed, whatever the app defines: these lead to the interpreter on some object.
ESCAPE_ATTRIBUTES = frozenset(
    {"mro", "sys", "modules", "os", "builtins", "globals", "locals", "obj", "subclasses"}
)
FRAME_PREFIXES = ("gi_", "f_", "tb_", "cr_", "ag_", "co_", "func_", "im_")
APP_RECURSION = 1_000  # interpreter recursion levels app code gets above its entry
_FUTURE_NAMES = frozenset({"annotations"})
_HOOKED_OPS: dict[type[ast.operator], str] = {
    ast.Add: "add",
    ast.Sub: "sub",
    ast.Mult: "mul",
    ast.FloorDiv: "floordiv",
    ast.Mod: "mod",
    ast.Pow: "pow",
    ast.LShift: "lshift",
    ast.BitOr: "bitor",
    ast.BitAnd: "bitand",
    ast.BitXor: "bitxor",
}
_COMPARE_HOOKS: dict[type[ast.cmpop], str] = {
    ast.Eq: "eq",
    ast.NotEq: "ne",
    ast.Lt: "lt",
    ast.LtE: "le",
    ast.Gt: "gt",
    ast.GtE: "ge",
    ast.In: "contains",
    ast.NotIn: "not_contains",
}


@dataclass(frozen=True, slots=True)
class Violation:
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


class SandboxViolation(AppLoadError):
    def __init__(self, filename: str, violations: list[Violation]) -> None:
        self.violations = violations
        lines = "\n".join(f"  {filename}:{v}" for v in violations)
        super().__init__(f"{filename}: app code rejected by the sandbox:\n{lines}")


# ---- the checker -------------------------------------------------------------------------------


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)


@dataclass(frozen=True, slots=True)
class Analysis:
    """What the checker and the instrumenter need to know about the whole module, found in
    one walk: how often each name is bound (defined names unlock attributes), which functions
    are generators, which attribute names are only ever SDK `Map` fields."""

    bindings: dict[str, int]
    generators: frozenset[int]  # id() of the function nodes that yield
    map_fields: frozenset[str]


def analyze(tree: ast.Module) -> Analysis:
    map_names = {
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "vm.native"
        for alias in node.names
        if alias.name == "Map"
    }
    bindings: dict[str, int] = {}
    generators: set[int] = set()
    fields: set[str] = set()
    todo: list[tuple[ast.AST, ast.AST | None]] = [(tree, None)]
    while todo:
        node, function = todo.pop()
        name = _bound_name(node)
        if name is not None:
            bindings[name] = bindings.get(name, 0) + 1
        if isinstance(node, (ast.Yield, ast.YieldFrom)) and function is not None:
            generators.add(id(function))
        if isinstance(node, ast.ClassDef):
            fields.update(_map_assignments(node, map_names))
        todo += _scoped_children(node, function)
    unique = frozenset(f for f in fields if bindings.get(f) == 1)
    return Analysis(bindings, frozenset(generators), unique)


def _bound_name(node: ast.AST) -> str | None:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return node.name
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        return node.id
    if isinstance(node, ast.Attribute) and not isinstance(node.ctx, ast.Load):
        return node.attr
    if isinstance(node, ast.alias):
        return node.asname or node.name
    if isinstance(node, ast.ExceptHandler):
        return node.name
    return None


def _scoped_children(
    node: ast.AST, function: ast.AST | None
) -> list[tuple[ast.AST, ast.AST | None]]:
    """The children of `node`, each with the function whose body it runs in (decorators and
    defaults run outside the function they belong to; a class body is not a function's)."""
    if isinstance(node, _FUNCTIONS):
        arguments = node.args
        outside: list[ast.AST] = [*arguments.defaults, *filter(None, arguments.kw_defaults)]
        outside += [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
        outside += filter(None, (arguments.vararg, arguments.kwarg))
        if not isinstance(node, ast.Lambda):
            outside += [*node.decorator_list, *filter(None, [node.returns])]
        body = node.body if isinstance(node.body, list) else [node.body]
        return [(c, function) for c in outside] + [(c, node) for c in body]
    inner = None if isinstance(node, ast.ClassDef) else function
    return [(child, inner) for child in ast.iter_child_nodes(node)]


def _map_assignments(node: ast.ClassDef, map_names: set[str]) -> list[str]:
    found = []
    for stmt in node.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
            call, target = stmt.value, stmt.targets[0]
            if (
                isinstance(call, ast.Call)
                and isinstance(call.func, ast.Name)
                and call.func.id in map_names
                and isinstance(target, ast.Name)
            ):
                found.append(target.id)
    return found


_ANNOTATION_NODES = (
    ast.Name,
    ast.Attribute,
    ast.Subscript,
    ast.Tuple,
    ast.List,
    ast.Call,
    ast.BinOp,
    ast.Load,
    ast.BitOr,
    ast.Constant,
)


class _Checker(ast.NodeVisitor):
    def __init__(self, analysis: Analysis) -> None:
        self.violations: list[Violation] = []
        defined = frozenset(analysis.bindings)
        self.attributes = PRICED_NAMES | SDK_ATTRIBUTES | defined
        self.names = defined | APP_BUILTIN_NAMES
        self.generator_nodes = analysis.generators
        self.generators: list[bool] = []

    def _flag(self, node: ast.AST, rule: str, message: str) -> None:
        self.violations.append(Violation(getattr(node, "lineno", 0), rule, message))

    # imports: no module object is ever bound

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._flag(
                node,
                "import",
                f"import of {alias.name!r} is not allowed (write: from vm.native import ...)",
            )

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        allowed = {"vm.native": SDK_NAMES, "__future__": _FUTURE_NAMES}.get(module)
        if node.level or allowed is None:
            self._flag(
                node,
                "import",
                f"import from {module or '.'!r} is not allowed (allowed: vm.native, __future__)",
            )
            return
        for alias in node.names:
            if alias.name not in allowed:
                what = "the app SDK" if module == "vm.native" else "allowed"
                self._flag(node, "import", f"{alias.name!r} is not part of {what}")
            elif alias.asname and alias.asname.startswith("__"):
                self._flag(node, "dunder", f"name {alias.asname!r} is not allowed")

    # names and attributes: an allowlist

    def visit_Name(self, node: ast.Name) -> None:
        if node.id.startswith("__"):
            self._flag(node, "dunder", f"name {node.id!r} is not allowed")
        elif node.id.startswith("_rollup"):
            self._flag(node, "private", f"name {node.id!r} is reserved for the runtime")
        elif isinstance(node.ctx, ast.Load) and node.id not in self.names:
            self._flag(node, "name", f"{node.id!r} is not available to apps")

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
        elif attr in ESCAPE_ATTRIBUTES:
            self._flag(node, "escape", f"attribute {attr!r} leads out of the sandbox")
        elif attr not in self.attributes:
            self._flag(
                node,
                "attribute",
                f"attribute {attr!r} is not in the allowlist (methods "
                "of builtin values, the SDK's API, names this app defines)",
            )
        self.generic_visit(node)

    # definitions

    def _check_def_name(self, node: ast.FunctionDef | ast.ClassDef) -> None:
        if node.name.startswith("__"):
            self._flag(node, "dunder", f"definition {node.name!r} is not allowed (use init())")

    def _annotation(self, node: ast.expr | None) -> None:
        if node is None:
            return
        for item in ast.walk(node):
            if isinstance(item, ast.Constant) and item.value not in (None, Ellipsis):
                self._flag(item, "annotation", "annotations are expressions, not strings")
                return
            if not isinstance(item, _ANNOTATION_NODES) or (
                isinstance(item, ast.BinOp) and not isinstance(item.op, ast.BitOr)
            ):
                self._flag(
                    item,
                    "annotation",
                    "annotations are names, subscripts, 'X | Y' and calls like indexed(address)",
                )
                return
            if isinstance(item, ast.Call) and item.keywords:
                self._flag(item, "annotation", "annotation calls take no keywords")
                return
        self.visit(node)

    def _function(self, node: ast.FunctionDef) -> None:
        self._check_def_name(node)
        arguments = node.args
        every = [
            *arguments.posonlyargs,
            *arguments.args,
            *arguments.kwonlyargs,
            arguments.vararg,
            arguments.kwarg,
        ]
        for arg in every:
            if arg is not None:
                self._annotation(arg.annotation)
        self._annotation(node.returns)
        for expr in [*node.decorator_list, *arguments.defaults, *arguments.kw_defaults]:
            if expr is not None:
                self.visit(expr)
        self.generators.append(id(node) in self.generator_nodes)
        for stmt in node.body:
            self.visit(stmt)
        self.generators.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._function(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._check_def_name(node)
        if node.keywords:
            self._flag(node, "class", "class keywords (metaclass=...) are not allowed")
        self.generators.append(False)
        self.generic_visit(node)
        self.generators.pop()

    def visit_Lambda(self, node: ast.Lambda) -> None:
        if id(node) in self.generator_nodes:
            self._flag(node, "generator", "yield in a lambda is not allowed")
        self.generators.append(False)
        self.generic_visit(node)
        self.generators.pop()

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._annotation(node.annotation)
        self.visit(node.target)
        if node.value is not None:
            self.visit(node.value)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._flag(node, "async", "async functions are not allowed")

    def visit_Await(self, node: ast.Await) -> None:
        self._flag(node, "async", "await is not allowed")

    def visit_With(self, node: ast.With) -> None:
        self._flag(node, "with", "with is not available (apps have no context managers)")

    def visit_AsyncWith(self, node: ast.AsyncWith) -> None:
        self._flag(node, "async", "async with is not allowed")

    def visit_AsyncFor(self, node: ast.AsyncFor) -> None:
        self._flag(node, "async", "async for is not allowed")

    def visit_Match(self, node: ast.Match) -> None:
        self._flag(node, "match", "match is not available (class patterns read attributes)")

    # values

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (float, complex)):
            self._flag(node, "float", "float and complex numbers are not deterministic state")
        elif isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            self._flag(node, "size", f"integer literal above {MAX_INT_BITS} bits")

    def visit_BinOp(self, node: ast.BinOp) -> None:
        if isinstance(node.op, ast.Div):
            self._flag(node, "float", "'/' makes a float; use '//' for integer division")
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        if isinstance(node.op, ast.Div):
            self._flag(node, "float", "'/=' makes a float; use '//='")
        if isinstance(node.target, ast.Subscript) and isinstance(node.target.slice, ast.Slice):
            self._flag(node, "slice", "augmented assignment to a slice is not available")
        self.generic_visit(node)

    def visit_Set(self, node: ast.Set) -> None:
        self._flag(node, "set", "sets iterate in a per-process order; use a dict or a list")
        self.generic_visit(node)

    def visit_SetComp(self, node: ast.SetComp) -> None:
        self._flag(node, "set", "sets iterate in a per-process order; use a dict or a list")
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if isinstance(node.slice, ast.Tuple) and any(
            isinstance(e, ast.Slice) for e in node.slice.elts
        ):
            self._flag(node, "slice", "extended slices (a[1:2, 3]) are not available")
        self.generic_visit(node)

    def _targets(self, targets: Iterable[ast.expr], plain: bool) -> None:
        """Slices are written only by `x[a:b] = value`; starred targets only at the top of
        a plain assignment (C code would consume whatever they unpack)."""
        for target in targets:
            for item in ast.walk(target):
                sliced = isinstance(item, ast.Subscript) and isinstance(item.slice, ast.Slice)
                if sliced and not (plain and item is target):
                    self._flag(item, "slice", "assign to a slice only as `x[a:b] = value`")
                if isinstance(item, ast.Starred):
                    top = isinstance(target, (ast.Tuple, ast.List)) and item in target.elts
                    if not (plain and top):
                        self._flag(item, "star", "starred targets only at the top of `a, *b = x`")

    def visit_Assign(self, node: ast.Assign) -> None:
        plain = len(node.targets) == 1
        self._targets(node.targets, plain)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        self._targets([node.target], False)
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        self._targets([node.target], False)
        self.generic_visit(node)

    # control flow

    def visit_Global(self, node: ast.Global) -> None:
        self._flag(node, "global", "app state lives in storage fields, not in globals")

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self._flag(node, "global", "nonlocal state is not allowed")

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        catches_all = isinstance(node.type, ast.Name) and node.type.id == "BaseException"
        if node.type is None or catches_all:
            self._flag(node, "except", "catch Exception (or narrower), not everything")
        self.generic_visit(node)

    def visit_TryStar(self, node: ast.AST) -> None:
        self._flag(node, "except", "except* is not allowed")

    def visit_Try(self, node: ast.Try) -> None:
        if node.finalbody and self.generators and self.generators[-1]:
            self._flag(
                node,
                "generator",
                "finally in a generator would run when the collector finds it, in another call",
            )
        for jump in _jumps_out(node.finalbody):
            self._flag(
                jump,
                "finally",
                "return, break or continue in finally would drop the "
                "exception in flight (a halt of the meter among them)",
            )
        self.generic_visit(node)


def _jumps_out(body: list[ast.stmt]) -> list[ast.stmt]:
    """`return` anywhere in `body`, and `break`/`continue` outside any loop inside it."""
    found: list[ast.stmt] = []
    todo: list[tuple[ast.AST, bool]] = [(stmt, False) for stmt in body]
    while todo:
        node, in_loop = todo.pop()
        if isinstance(node, ast.Return) or (
            isinstance(node, (ast.Break, ast.Continue)) and not in_loop
        ):
            found.append(node)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        if isinstance(node, (ast.For, ast.While)):  # a loop's `else` belongs to the outside
            todo += [(child, True) for child in node.body]
            todo += [(child, in_loop) for child in node.orelse]
            continue
        todo += [(child, in_loop) for child in ast.iter_child_nodes(node)]
    return found


def check_source(tree: ast.Module, analysis: Analysis | None = None) -> list[Violation]:
    checker = _Checker(analysis or analyze(tree))
    checker.visit(tree)
    return sorted(checker.violations, key=lambda v: v.line)


# ---- block sizes: what a block charges as it starts ---------------------------------------------


def _executed(node: ast.AST) -> list[ast.AST]:
    """The children that run when `node` runs once (nested blocks charge for themselves)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        decorators = [] if isinstance(node, ast.Lambda) else node.decorator_list
        defaults = [d for d in node.args.kw_defaults if d is not None]
        return [*decorators, *node.args.defaults, *defaults]
    if isinstance(node, ast.ClassDef):
        return [*node.bases, *(k.value for k in node.keywords), *node.decorator_list]
    if isinstance(node, ast.For):
        return [node.iter, *node.orelse]
    if isinstance(node, ast.While):
        return [node.test, *node.orelse]
    if isinstance(node, (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)):
        return [node.generators[0].iter]
    return list(ast.iter_child_nodes(node))


def _size(nodes: Iterable[ast.AST]) -> int:
    todo = list(nodes)
    count = 0
    while todo:
        node = todo.pop()
        count += 1
        todo.extend(_executed(node))
    return count


def block_cost(body: Sequence[ast.AST]) -> int:
    return NODE_GAS * _size(body)


def _item_costs(node: ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp) -> list[int]:
    """What each item of each `for` of a comprehension runs: its target and conditions, the
    next `for`'s iterable, and for the innermost, the element."""
    element = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    costs = []
    for index, gen in enumerate(node.generators):
        runs: list[ast.AST] = [gen.target, *gen.ifs]
        if index + 1 < len(node.generators):
            runs.append(node.generators[index + 1].iter)
        else:
            runs += element
        costs.append(NODE_GAS * _size(runs))
    return costs


# ---- the instrumenter --------------------------------------------------------------------------


def _name(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _meter_call(method: str, args: list[ast.expr], node: ast.AST) -> ast.Call:
    func = ast.Attribute(_name(METER_NAME), method, ast.Load())
    return ast.copy_location(ast.Call(func, args, []), node)


def _meter_stmt(method: str, args: list[ast.expr], node: ast.AST) -> ast.Expr:
    return ast.copy_location(ast.Expr(_meter_call(method, args, node)), node)


def _constant(value: Any) -> ast.Constant:
    return ast.Constant(value)


def _small_constant(node: ast.expr) -> bool:
    """A literal whose comparison or hash costs no more than its own node."""
    if not isinstance(node, ast.Constant):
        return False
    value = node.value
    if isinstance(value, int):
        return value.bit_length() <= 256
    if isinstance(value, (str, bytes)):
        return len(value) <= 64
    return value is None or value is Ellipsis


def _docstring_end(body: list[ast.stmt]) -> int:
    """How many leading statements must stay first: a docstring, `from __future__` imports."""
    index = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        index = 1 if isinstance(body[0].value.value, str) else 0
    while index < len(body) and isinstance(body[index], ast.ImportFrom):
        if body[index].module != "__future__":  # type: ignore[attr-defined]
            break
        index += 1
    return index


class _Instrumenter(ast.NodeTransformer):
    def __init__(self, analysis: Analysis) -> None:
        self.scopes: list[str] = ["module"]
        self.temps = 0
        self.map_fields = analysis.map_fields
        self.generator_nodes = analysis.generators

    def _stmts(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            result = self.visit(stmt)
            if isinstance(result, list):
                out.extend(result)
            elif result is not None:
                out.append(result)
        return out

    def _expr(self, node: ast.expr | None) -> Any:
        return None if node is None else self.visit(node)

    # ---- blocks

    def visit_Module(self, node: ast.Module) -> ast.Module:
        cost = block_cost(node.body)
        node.body = self._stmts(node.body)
        at = _docstring_end(node.body)
        node.body.insert(at, _meter_stmt("charge", [_constant(cost)], node))
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.ClassDef:
        cost = block_cost(node.body)
        node.bases = [self.visit(b) for b in node.bases]
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        self.scopes.append("class")
        node.body = self._stmts(node.body)
        self.scopes.pop()
        at = _docstring_end(node.body[:1])
        node.body.insert(at, _meter_stmt("charge", [_constant(cost)], node))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        cost = block_cost(node.body)
        generator = id(node) in self.generator_nodes
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [self._expr(d) for d in node.args.kw_defaults]
        self.scopes.append("function")
        body = self._stmts(node.body)
        self.scopes.pop()
        doc = body[: _docstring_end(body[:1])]
        body = body[len(doc) :]
        if generator:
            node.body = [*doc, _meter_stmt("start", [_constant(cost)], node), *body]
        else:
            guarded = ast.Try(
                body=body or [ast.Pass()],
                handlers=[],
                orelse=[],
                finalbody=[_meter_stmt("leave", [], node)],
            )
            enter = _meter_stmt("enter", [_constant(cost)], node)
            node.body = [*doc, enter, ast.copy_location(guarded, node)]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.Lambda:
        cost = NODE_GAS * _size([node.body])
        node.args.defaults = [self.visit(d) for d in node.args.defaults]
        node.args.kw_defaults = [self._expr(d) for d in node.args.kw_defaults]
        self.scopes.append("function")
        body = self.visit(node.body)
        self.scopes.pop()
        thunk = ast.Lambda(ast.arguments([], [], None, [], [], None, []), body)
        node.body = _meter_call("run", [_constant(cost), thunk], node)
        return node

    def _loop(self, node: ast.For | ast.While, runs: list[ast.AST]) -> ast.For | ast.While:
        cost = block_cost([*node.body, *runs])
        self.generic_visit(node)
        node.body.insert(0, _meter_stmt("step", [_constant(cost)], node))
        return node

    def visit_For(self, node: ast.For) -> ast.For | ast.While:
        return self._loop(node, [node.target])

    def visit_While(self, node: ast.While) -> ast.For | ast.While:
        return self._loop(node, [node.test])

    def _comprehension(self, node: ast.ListComp | ast.GeneratorExp | ast.DictComp) -> ast.expr:
        costs = _item_costs(node)
        self.scopes.append("function")
        self.generic_visit(node)
        self.scopes.pop()
        for gen, cost in zip(node.generators, costs, strict=True):
            gen.iter = _meter_call("each", [gen.iter, _constant(cost)], gen.iter)
        return node

    def visit_ListComp(self, node: ast.ListComp) -> ast.expr:
        return self._comprehension(node)

    def visit_GeneratorExp(self, node: ast.GeneratorExp) -> ast.expr:
        return self._comprehension(node)

    def visit_DictComp(self, node: ast.DictComp) -> ast.expr:
        self._comprehension(node)
        if not _small_constant(node.key):
            node.key = _meter_call("key", [node.key], node.key)
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.ExceptHandler:
        self.generic_visit(node)
        if node.name is None:
            node.name = "__caught__"
        node.body.insert(0, _meter_stmt("caught", [_name(node.name)], node))
        return node

    # ---- operators

    def visit_BinOp(self, node: ast.BinOp) -> ast.expr:
        self.generic_visit(node)
        method = _HOOKED_OPS.get(type(node.op))
        if method is None:
            return node
        return _meter_call(method, [node.left, node.right], node)

    def visit_Compare(self, node: ast.Compare) -> ast.expr:
        self.generic_visit(node)
        if len(node.ops) == 1:
            op, right = node.ops[0], node.comparators[0]
            method = _COMPARE_HOOKS.get(type(op))
            if method is None:  # `is`, `is not`
                return node
            contains = isinstance(op, (ast.In, ast.NotIn))
            if _small_constant(right) or (not contains and _small_constant(node.left)):
                return node
            return _meter_call(method, [node.left, right], node)
        if not _small_constant(node.left):
            node.left = _meter_call("operand", [node.left], node.left)
        comparators = []
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, (ast.In, ast.NotIn)):
                right = _meter_call("container", [right], right)
            elif not _small_constant(right):
                right = _meter_call("operand", [right], right)
            comparators.append(right)
        node.comparators = comparators
        return node

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.stmt | list[ast.stmt]:
        method = _HOOKED_OPS.get(type(node.op))
        target = node.target
        value = self.visit(node.value)
        if method is None:  # `>>=`, `@=`: no hook, but the target is still guarded
            node.target = self.visit(target)
            node.value = value
            return node
        hook = "i" + method
        if isinstance(target, ast.Name):
            load = _name(target.id)
            assign = ast.Assign([target], _meter_call(hook, [load, value], node))
            return ast.copy_location(assign, node)
        holder = self._temp()
        stmts: list[ast.stmt] = [
            ast.Assign([ast.Name(holder, ast.Store())], self.visit(target.value))
        ]
        if isinstance(target, ast.Attribute):
            read: ast.expr = ast.Attribute(_name(holder), target.attr, ast.Load())
            read = self.visit(read)
            write: ast.expr = ast.Attribute(self._guarded(_name(holder)), target.attr, ast.Store())
        else:
            assert isinstance(target, ast.Subscript)
            key = self._temp()
            index = self.visit(target.slice)
            mapped = (
                isinstance(target.value, ast.Attribute) and target.value.attr in self.map_fields
            )
            stmts.append(
                ast.Assign([ast.Name(key, ast.Store())], index if mapped else self._key(index))
            )
            read = ast.Subscript(_name(holder), _name(key), ast.Load())
            write = ast.Subscript(_name(holder), _name(key), ast.Store())
        stmts.append(ast.Assign([write], _meter_call(hook, [read, value], node)))
        if self.scopes[-1] != "function":  # no temporaries left in a module or class
            stmts.append(ast.Delete([ast.Name(n, ast.Del()) for n in self._temps_of(stmts)]))
        return [ast.copy_location(s, node) for s in stmts]

    def _temp(self) -> str:
        self.temps += 1
        return f"__aug{self.temps}__"

    @staticmethod
    def _temps_of(stmts: list[ast.stmt]) -> list[str]:
        return [
            t.id
            for s in stmts
            if isinstance(s, ast.Assign)
            for t in s.targets
            if isinstance(t, ast.Name) and t.id.startswith("__aug")
        ]

    # ---- subscripts, attributes, calls

    @staticmethod
    def _key(node: ast.expr) -> ast.expr:
        return node if _small_constant(node) else _meter_call("key", [node], node)

    @staticmethod
    def _slice_args(node: ast.Slice) -> list[ast.expr]:
        return [
            part if part is not None else _constant(None)
            for part in (node.lower, node.upper, node.step)
        ]

    def visit_Subscript(self, node: ast.Subscript) -> ast.expr:
        node.value = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            sliced = self.visit(node.slice)
            node.slice = sliced
            if isinstance(node.ctx, ast.Load):
                args = [node.value, *self._slice_args(sliced)]
                return _meter_call("getslice", args, node)
            return node  # a plain `x[a:b] = v` or `del x[a:b]`: the statement is rewritten
        node.slice = self.visit(node.slice)
        value = node.value
        if not (isinstance(value, ast.Attribute) and value.attr in self.map_fields):
            node.slice = self._key(node.slice)
        return node

    @staticmethod
    def _guarded(node: ast.expr) -> ast.expr:
        return ast.copy_location(ast.Call(_name(GUARD_NAME), [node], []), node)

    def visit_Attribute(self, node: ast.Attribute) -> ast.expr:
        node.value = self.visit(node.value)
        if not isinstance(node.ctx, ast.Load):
            node.value = self._guarded(node.value)
            return node
        if node.attr in ROUTED_NAMES:
            return _meter_call("attr", [node.value, _constant(node.attr)], node)
        return node

    def _call_args(self, node: ast.Call) -> None:
        args: list[ast.expr] = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                value = _meter_call("spread", [self.visit(arg.value)], arg)
                args.append(ast.copy_location(ast.Starred(value, ast.Load()), arg))
            else:
                args.append(self.visit(arg))
        node.args = args
        for keyword in node.keywords:
            keyword.value = self.visit(keyword.value)
            if keyword.arg is None:
                keyword.value = _meter_call("spread_map", [keyword.value], keyword.value)

    def visit_Call(self, node: ast.Call) -> ast.expr:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ROUTED_NAMES:
            target = self.visit(func.value)
            self._call_args(node)
            call = ast.Call(
                ast.Attribute(_name(METER_NAME), "method", ast.Load()),
                [target, _constant(func.attr), *node.args],
                node.keywords,
            )
            return ast.copy_location(call, node)
        node.func = self.visit(func)
        self._call_args(node)
        return node

    def _displays(self, node: ast.List | ast.Tuple) -> ast.expr:
        elts: list[ast.expr] = []
        for elt in node.elts:
            if isinstance(elt, ast.Starred) and isinstance(node.ctx, ast.Load):
                value = _meter_call("spread", [self.visit(elt.value)], elt)
                elts.append(ast.copy_location(ast.Starred(value, ast.Load()), elt))
            else:
                elts.append(self.visit(elt))
        node.elts = elts
        return node

    def visit_List(self, node: ast.List) -> ast.expr:
        return self._displays(node)

    def visit_Tuple(self, node: ast.Tuple) -> ast.expr:
        return self._displays(node)

    def visit_Dict(self, node: ast.Dict) -> ast.expr:
        keys: list[ast.expr | None] = []
        values = []
        for key, value in zip(node.keys, node.values, strict=True):
            value = self.visit(value)
            if key is None:
                value = _meter_call("spread_map", [value], value)
            else:
                key = self._key(self.visit(key))
            keys.append(key)
            values.append(value)
        node.keys, node.values = keys, values
        return node

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.expr:
        parts: list[ast.expr] = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue):
                spec = self.visit(part.format_spec) if part.format_spec else _constant("")
                args = [self.visit(part.value), _constant(part.conversion), spec]
                text = _meter_call("text", args, part)
                parts.append(ast.copy_location(ast.FormattedValue(text, -1, None), part))
            else:
                parts.append(part)
        node.values = parts
        return node

    # ---- statements whose targets need rewriting

    def visit_Assign(self, node: ast.Assign) -> ast.stmt:
        value = self.visit(node.value)
        target = node.targets[0]
        if (
            len(node.targets) == 1
            and isinstance(target, ast.Subscript)
            and isinstance(target.slice, ast.Slice)
        ):
            args = [self.visit(target.value), *self._slice_args(self.visit(target.slice)), value]
            return _meter_stmt("setslice", args, node)
        if any(_starred(t) for t in node.targets):
            value = _meter_call("spread", [value], node.value)
        node.targets = [self.visit(t) for t in node.targets]
        node.value = value
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.stmt:
        node.target = self.visit(node.target)
        node.value = self._expr(node.value)
        return node  # the annotation is left as written: hints are evaluated unmetered

    def visit_Delete(self, node: ast.Delete) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                obj = self.visit(target.value)
                if isinstance(target.slice, ast.Slice):
                    args = [obj, *self._slice_args(self.visit(target.slice))]
                    out.append(_meter_stmt("delslice", args, node))
                else:
                    out.append(_meter_stmt("delitem", [obj, self.visit(target.slice)], node))
            else:
                out.append(ast.copy_location(ast.Delete([self.visit(target)]), node))
        return out

    def visit_arguments(self, node: ast.arguments) -> ast.arguments:
        return node  # annotations and defaults are handled by the function's visitor


def _starred(target: ast.expr) -> bool:
    return isinstance(target, (ast.Tuple, ast.List)) and any(
        isinstance(e, ast.Starred) for e in target.elts
    )


def instrument(tree: ast.Module, analysis: Analysis | None = None) -> ast.Module:
    """Rewrite a checked tree in place (and return it); `analysis` must be of this tree."""
    tree = _Instrumenter(analysis or analyze(tree)).visit(tree)
    return ast.fix_missing_locations(tree)


# ---- the builtins an app sees ------------------------------------------------------------------

_PLAIN_BUILTINS = [
    "abs",
    "bool",
    "chr",
    "enumerate",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "map",
    "next",
    "ord",
    "property",
    "range",
    "reversed",
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
_METERED_BUILTINS = [
    "int",
    "str",
    "bytes",
    "bytearray",
    "list",
    "tuple",
    "dict",
    "sum",
    "min",
    "max",
    "sorted",
    "any",
    "all",
    "filter",
    "divmod",
    "pow",
]
APP_BUILTIN_NAMES = frozenset(_PLAIN_BUILTINS + _METERED_BUILTINS)
_CLASS_METHODS = {
    int: ("from_bytes",),
    bytes: ("fromhex",),
    bytearray: ("fromhex",),
    dict: ("fromkeys",),
}


class BuiltinType:
    """What app code sees as `int`, `str`, `bytes`, ...: the type in `isinstance`, in hints and
    in `list[uint256]`, with its calls priced by the meter. It cannot be subclassed."""

    def __init__(
        self,
        base: type,
        build: Callable[..., Any],
        meter: Callable[[], GasMeter],
        abi: str | None = None,
    ) -> None:
        # `_rollup_` names: app code can never read them (the real type would be unpriced)
        self._rollup_base, self._rollup_build, self._rollup_meter = base, build, meter
        if abi is not None:
            self.__abi__ = abi

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._rollup_build(*args, **kwargs)

    def __instancecheck__(self, obj: Any) -> bool:
        return isinstance(obj, self._rollup_base)

    def __subclasscheck__(self, cls: Any) -> bool:
        return issubclass(_real(cls), self._rollup_base)

    def __getitem__(self, item: Any) -> Any:
        return self._rollup_base[item]  # type: ignore[index]

    def __or__(self, other: Any) -> Any:
        return self._rollup_base | _real(other)

    def __ror__(self, other: Any) -> Any:
        return _real(other) | self._rollup_base

    def __mro_entries__(self, bases: tuple[Any, ...]) -> tuple[type, ...]:
        raise TypeError(f"apps cannot subclass {self._rollup_base.__name__}")

    def __getattr__(self, name: str) -> Any:
        base = self._rollup_base
        if name.startswith("_") or name not in _CLASS_METHODS.get(base, ()):
            raise AttributeError(
                f"{base.__name__}.{name} is not available to apps "
                "(call methods on values: x.name(...))"
            )
        meter = self._rollup_meter

        def method(*args: Any, **kwargs: Any) -> Any:
            return meter().class_call(base, name, args, kwargs)

        return method


def _real(value: Any) -> Any:
    return value._rollup_base if isinstance(value, BuiltinType) else value


def app_builtins(namespace: dict[str, Any]) -> dict[str, Any]:
    """The builtins of an app module; whatever can cost more than a step goes through the
    module's current meter (`namespace[METER_NAME]`)."""
    table: dict[str, Any] = {name: getattr(builtins, name) for name in _PLAIN_BUILTINS}
    module_name = namespace.get("__name__")

    def meter() -> GasMeter:
        current: GasMeter = namespace[METER_NAME]
        return current

    def kind(base: type, build: Callable[..., Any], abi: str | None = None) -> BuiltinType:
        return BuiltinType(base, build, meter, abi)

    def guard(obj: Any) -> Any:
        if isinstance(obj, type) or type(obj).__module__ != module_name:
            raise TypeError(
                f"cannot set attributes of {type(obj).__name__} objects: apps set "
                "attributes only on objects of their own classes"
            )
        return obj

    def guarded_import(
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Sequence[str] = (),
        level: int = 0,
    ) -> Any:
        if level or name not in ("vm.native", "__future__") or not fromlist:
            raise ImportError(f"import of {name!r} is not allowed")
        return builtins.__import__(name, globals, locals, fromlist, level)

    table.update(
        int=kind(int, lambda *a, **k: meter().to_int(*a, **k), "int256"),
        str=kind(str, lambda *a, **k: meter().to_str(*a, **k), "string"),
        bytes=kind(bytes, lambda *a, **k: meter().to_bytes(bytes, a, k), "bytes"),
        bytearray=kind(bytearray, lambda *a, **k: meter().to_bytes(bytearray, a, k)),
        list=kind(list, lambda *a: meter().to_list(list, a)),
        tuple=kind(tuple, lambda *a: meter().to_list(tuple, a)),
        dict=kind(dict, lambda *a, **k: meter().to_dict(a, k)),
        sum=lambda iterable, /, start=0: meter().sum(iterable, start),
        min=lambda *a, **k: meter().min(*a, **k),
        max=lambda *a, **k: meter().max(*a, **k),
        sorted=lambda iterable, /, **k: meter().sorted(iterable, **k),
        any=lambda iterable, /: meter().any(iterable),
        all=lambda iterable, /: meter().all(iterable),
        filter=lambda function, iterable, /: meter().filter(function, iterable),
        divmod=lambda a, b, /: meter().divmod(a, b),
        pow=lambda base, exp, mod=None: meter().pow(base, exp, mod),
        __import__=guarded_import,
        __build_class__=builtins.__build_class__,
        __name__="builtins",
    )
    table[GUARD_NAME] = guard
    return table


# ---- the interpreter's limits while app code runs ----------------------------------------------


def _message_layout() -> tuple[int, int]:
    """Where the depth sits in CPython's "cannot set the recursion limit to 1 at the
    recursion depth N: the limit is too low" (read once; `_depth` checks it every time)."""
    try:
        sys.setrecursionlimit(1)
    except RecursionError as exc:
        text = str(exc)
        start = text.rindex("depth ") + len("depth ")
        return start, len(text) - text.index(":", start)
    raise RuntimeError("cannot read the interpreter's recursion depth")  # pragma: no cover


_DEPTH_AT, _DEPTH_TAIL = _message_layout()


def _depth(text: str) -> int:
    """The depth in CPython's "cannot set the recursion limit to 1 at the recursion depth N:
    the limit is too low"."""
    digits = text[_DEPTH_AT:-_DEPTH_TAIL]
    if digits.isdigit():
        return int(digits)
    return int(text.rsplit("depth ", 1)[1].split(":", 1)[0])  # another wording


def enter_app_limits() -> tuple[int, int]:
    """Set the limits app code runs under; returns what `leave_app_limits` restores.

    The entry's recursion depth, as the interpreter counts it (Python frames and the C calls
    between them: a thread, an event loop or `map` calling back add some, so counting frames
    would not do), is read exactly: setting a limit at or below it fails, naming it."""
    saved = sys.getrecursionlimit(), sys.get_int_max_str_digits()
    try:
        sys.setrecursionlimit(1)
    except RecursionError as exc:
        sys.setrecursionlimit(_depth(str(exc)) + APP_RECURSION)
    else:  # pragma: no cover - a depth of 0 cannot be: this code runs in a frame
        raise RuntimeError("cannot read the interpreter's recursion depth")
    if saved[1] != MAX_STR_DIGITS:
        sys.set_int_max_str_digits(MAX_STR_DIGITS)
    return saved


def leave_app_limits(saved: tuple[int, int]) -> None:
    sys.setrecursionlimit(saved[0])
    if saved[1] != MAX_STR_DIGITS:
        sys.set_int_max_str_digits(saved[1])


class app_limits:  # noqa: N801 - used as `with app_limits():`
    """While app code runs, the recursion limit is APP_RECURSION levels above the entry (so a
    RecursionError, mapped to a failed call, comes at the same app depth on every node, from
    the sequencer, a verifier or a simulation alike, and C recursion on nested values stays far
    from the stack's end), and int <-> str conversions stop at MAX_STR_DIGITS digits. Both
    are process-wide: app code runs one call at a time per process. (The runtime's hot path
    calls `enter_app_limits`/`leave_app_limits` itself.)"""

    __slots__ = ("_saved",)

    def __enter__(self) -> None:
        self._saved = enter_app_limits()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        leave_app_limits(self._saved)
