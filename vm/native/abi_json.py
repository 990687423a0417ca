"""The JSON ABI of a native app, the same shape solc emits, so ethers, web3.py and wallets can
call the app like a contract.

    [{"type": "function", "name": "transfer", "inputs": [{"name": "to", "type": "address"}, ...],
      "outputs": [{"name": "", "type": "bool"}], "stateMutability": "nonpayable"},
     {"type": "event", "name": "Transfer", "inputs": [{"name": "from", "type": "address",
      "indexed": true}, ...], "anonymous": false},
     {"type": "error", "name": "ERC20InvalidReceiver", "inputs": [...]}]

Functions come from `App.__methods__` in declaration order; events and errors are the `Event`
and `Error` subclasses defined in the app's module, in definition order. A tuple type such as
`(uint256,address)[]` becomes `"type": "tuple[]"` with `components`, as in Solidity's ABI.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, TypeVar

from vm.native.sdk import App, Error, Event, MethodSpec

__all__ = ["app_abi", "abi_param"]

_D = TypeVar("_D")


def app_abi(app_class: type[App], module: ModuleType) -> list[dict[str, Any]]:
    """Functions, then events, then errors of the app defined by `app_class` in `module`."""
    functions = [_function_entry(spec) for spec in app_class.__methods__.values()]
    events = [_event_entry(cls) for cls in _declared_in(module, Event)]
    errors = [_error_entry(cls) for cls in _declared_in(module, Error)]
    return functions + events + errors


def abi_param(name: str, abi_type: str) -> dict[str, Any]:
    """One ABI parameter; tuples carry their members as unnamed `components`."""
    base, suffix = _split_array_suffix(abi_type)
    if not base.startswith("("):
        return {"name": name, "type": abi_type}
    members = _split_top_level(base[1:-1])
    return {
        "name": name,
        "type": "tuple" + suffix,
        "components": [abi_param("", member) for member in members],
    }


def _function_entry(spec: MethodSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "name": spec.name,
        "inputs": [abi_param(n, t) for n, t in zip(spec.arg_names, spec.arg_types, strict=True)],
        "outputs": [abi_param("", t) for t in spec.return_types],
        # a callback is an ordinary function to wallets; the runtime guards who may call it
        "stateMutability": "nonpayable" if spec.mutability == "callback" else spec.mutability,
    }


def _event_entry(cls: type[Event]) -> dict[str, Any]:
    inputs = [abi_param(n, t) | {"indexed": indexed} for n, t, indexed in cls._fields]
    return {"type": "event", "name": cls.__name__, "inputs": inputs, "anonymous": False}


def _error_entry(cls: type[Error]) -> dict[str, Any]:
    inputs = [abi_param(n, t) for n, t, _ in cls._fields]
    return {"type": "error", "name": cls.__name__, "inputs": inputs}


def _declared_in(module: ModuleType, base: type[_D]) -> list[type[_D]]:
    """Subclasses of `base` defined in `module` itself (not imported into it)."""
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
        and value.__module__ == module.__name__
    ]


def _split_array_suffix(abi_type: str) -> tuple[str, str]:
    """`(a,b)[2][]` -> (`(a,b)`, `[2][]`); a type without arrays has an empty suffix."""
    if not abi_type.startswith("("):
        return abi_type, ""
    close = _matching_paren(abi_type)
    return abi_type[: close + 1], abi_type[close + 1 :]


def _matching_paren(text: str) -> int:
    depth = 0
    for index, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return index
    raise ValueError(f"unbalanced parentheses in ABI type {text!r}")


def _split_top_level(members: str) -> list[str]:
    """Split `a,(b,c),d` at the commas outside parentheses."""
    parts: list[str] = []
    depth, start = 0, 0
    for index, char in enumerate(members):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(members[start:index])
            start = index + 1
    if members:
        parts.append(members[start:])
    return parts
