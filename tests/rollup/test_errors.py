"""The one error tree: every exception of the project derives from RollupError, says what its
caller must do, is drawn in rollup/errors.py, and keeps its JSON-RPC code and HTTP status."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import rollup.errors as errors
from bridge.l1 import L1BadData, L1Rejected, L1Unavailable
from da.derive import Divergence, SourceNotPosted
from da.errors import CodecError, CorruptData, TemporaryDAError
from rollup.errors import Action, RollupError, action_of, http_status, rpc_code
from rollup.rlp import RLPError
from services.bus.transport import BusConfigError
from services.keys import KeyFileError
from services.rpc.isolation import ForwardedError
from vm.native.sdk import Revert
from vm.stf import BlockFull, InvalidTransaction

ROOT = Path(__file__).resolve().parents[2]
# every package of the project (a new one is covered once it has an __init__.py)
PACKAGES = sorted(
    p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"
)
# Not errors: what the gas meter throws through app code (a BaseException, so that app code
# cannot catch it), and signals that never leave the module raising them.
SIGNALS = {"Halt", "NeedsIsolation", "_Deferred", "_Grouped", "_Unknown"}


def _project_exceptions() -> list[type[BaseException]]:
    for package in PACKAGES:
        module = importlib.import_module(package)
        for info in pkgutil.walk_packages(module.__path__, package + "."):
            if ".templates" not in info.name:  # app code, rendered by `rollup new`
                importlib.import_module(info.name)

    def below(cls: type[BaseException]) -> Iterator[type[BaseException]]:
        for sub in cls.__subclasses__():
            yield sub
            yield from below(sub)

    return sorted(
        {c for c in below(BaseException) if c.__module__.split(".")[0] in PACKAGES},
        key=lambda c: (c.__module__, c.__name__),
    )


def _is_signal(cls: type[BaseException]) -> bool:
    return any(base.__name__ in SIGNALS for base in cls.__mro__)


def test_every_exception_of_the_project_is_a_rollup_error_or_a_named_signal() -> None:
    strays = [
        f"{c.__module__}.{c.__name__}"
        for c in _project_exceptions()
        if not issubclass(c, RollupError) and not _is_signal(c)
    ]
    assert strays == []


def test_every_error_of_the_project_is_drawn_in_the_tree() -> None:
    tree = errors.__doc__ or ""
    ours = [c for c in _project_exceptions() if issubclass(c, RollupError)]
    # subclasses defined by app code (the SDK's Error) and by tests are not the project's
    missing = [c.__name__ for c in ours if c.__name__ not in tree and c.__module__ != "vm.native"]
    assert missing == []


@pytest.mark.parametrize(
    ("error", "action"),
    [
        (errors.NonceTooLow("0x00", 1, 2), Action.FIX_INPUT),
        (errors.TxPoolFull(), Action.RETRY),
        (errors.TxDropped("outbid"), Action.RETRY),
        (errors.Busy("DA backlog full"), Action.RETRY),
        (errors.LimitExceeded("block range too large"), Action.FIX_INPUT),
        (errors.InternalError("bug"), Action.STOP),
        (errors.InvalidBlock("state_root mismatch"), Action.STOP),
        (errors.ManifestError("app.chainid: unknown key"), Action.FIX_INPUT),
        (BusConfigError("bad url"), Action.FIX_INPUT),
        (KeyFileError("mode 0644"), Action.FIX_INPUT),
        (RLPError("rlp: non-canonical size information"), Action.FIX_INPUT),
        (Revert(b"", None), Action.FIX_INPUT),
        (InvalidTransaction("nonce mismatch"), Action.FIX_INPUT),
        (BlockFull(), Action.RETRY),
        (CodecError("bad frame"), Action.FIX_INPUT),
        (TemporaryDAError("busy"), Action.RETRY),
        (SourceNotPosted(7, 3, "not posted"), Action.RETRY),
        (CorruptData("hash mismatch"), Action.STOP),
        (Divergence(5, "bad root"), Action.STOP),
        (L1Unavailable("down"), Action.RETRY),
        (L1Rejected("reverted"), Action.FIX_INPUT),
        (L1BadData("lying RPC"), Action.STOP),
        (ForwardedError(-32000, "nonce too low"), Action.FIX_INPUT),
        (ValueError("not ours"), Action.STOP),
    ],
)
def test_each_error_says_what_the_caller_must_do(error: BaseException, action: Action) -> None:
    assert action_of(error) is action


def test_every_rollup_error_has_an_action() -> None:
    for cls in _project_exceptions():
        if issubclass(cls, RollupError):
            assert isinstance(cls.action, Action), cls


@pytest.mark.parametrize(
    ("error", "code", "status"),
    [
        (errors.ParseError("x"), -32700, 400),
        (errors.InvalidRequest("x"), -32600, 400),
        (errors.MethodNotFound("eth_foo"), -32601, 404),
        (errors.InvalidParams("x"), -32602, 422),
        (errors.NonceTooLow("0x00", 1, 2), -32000, 422),
        (errors.TxPoolFull(), -32000, 422),
        (errors.StateUnavailable("x"), -32000, 404),
        (errors.BlockNotFound("header not found"), -32000, 404),
        (errors.ExecutionReverted(None, b""), 3, 422),
        (errors.CallFailed("out of gas"), -32000, 422),
        (errors.LimitExceeded("x"), -32005, 429),
        (errors.Busy("x"), -32005, 429),
        (errors.MalformedMessage("x"), -32602, 422),
        (errors.ManifestError("x"), -32000, 422),
        (errors.AppLoadError("x"), -32000, 422),
        (errors.InvalidBlock("x"), -32000, 409),
        (errors.InternalError("x"), -32603, 500),
        (L1Unavailable("x"), -32603, 500),
        (ValueError("x"), -32603, 500),
    ],
)
def test_the_table_gives_each_error_its_json_rpc_code_and_http_status(
    error: BaseException, code: int, status: int
) -> None:
    assert (rpc_code(error), http_status(error)) == (code, status)


def test_no_handler_decides_by_an_exceptions_text() -> None:
    """`if str(exc) == "gas limit reached"` is how a case is lost when a message changes: a
    case a caller must tell apart is a class."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for handler in ast.walk(tree):
                if isinstance(handler, ast.ExceptHandler) and handler.name:
                    found += [
                        f"{path.relative_to(ROOT)}:{node.lineno}"
                        for node in ast.walk(handler)
                        if isinstance(node, ast.Compare)
                        and any(_text_of(n, handler.name) for n in (node.left, *node.comparators))
                    ]
    assert found == []


def _text_of(node: ast.expr, name: str) -> bool:
    """`str(name)`, `name.message` or `name.args`."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "str":
        return any(isinstance(a, ast.Name) and a.id == name for a in node.args)
    return (
        isinstance(node, ast.Attribute)
        and node.attr in ("message", "args")
        and isinstance(node.value, ast.Name)
        and node.value.id == name
    )
