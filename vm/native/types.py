"""ABI type markers for app code: `address`, `uint8`..`uint256`, `int8`..`int256`,
`bytes1`..`bytes32`, plus `bool`, `str` (string) and `bytes`.

They are used in type hints only; at run time apps handle plain `int`, `bytes` (20 bytes for an
address), `bool` and `str` values.
"""

from __future__ import annotations

import typing
from typing import Any

__all__ = ["address", "abi_type_of", "Indexed", "indexed"]


def _hint_only(cls: type, *args: Any, **kwargs: Any) -> Any:
    raise TypeError(f"{cls.__name__} is an ABI type for hints; use plain int and bytes values")


class address(bytes):  # noqa: N801 - named like the Solidity type on purpose
    __abi__ = "address"
    __new__ = _hint_only  # `address(10**9)` would build 1 GB


def _make(name: str, base: type) -> type:
    return type(name, (base,), {"__abi__": name, "__new__": _hint_only})


_GENERATED: dict[str, type] = {}
for _bits in range(8, 257, 8):
    _GENERATED[f"uint{_bits}"] = _make(f"uint{_bits}", int)
    _GENERATED[f"int{_bits}"] = _make(f"int{_bits}", int)
for _size in range(1, 33):
    _GENERATED[f"bytes{_size}"] = _make(f"bytes{_size}", bytes)
globals().update(_GENERATED)
__all__ += list(_GENERATED)


class Indexed:
    """Marks an event field as indexed (a log topic): `owner: indexed(address)`."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner


def indexed(inner: Any) -> Indexed:
    return Indexed(inner)


def abi_type_of(hint: Any) -> str:
    """The ABI type string of a type hint, or TypeError naming what is not supported."""
    abi = getattr(hint, "__abi__", None)
    if isinstance(abi, str):
        return abi
    if hint is bool:
        return "bool"
    if hint is str:
        return "string"
    if hint is bytes:
        return "bytes"
    if hint is int:
        return "int256"
    origin = typing.get_origin(hint)
    if origin is list:
        (inner,) = typing.get_args(hint)
        return abi_type_of(inner) + "[]"
    if origin is tuple:
        args = typing.get_args(hint)
        return "(" + ",".join(abi_type_of(a) for a in args) + ")"
    shown = getattr(hint, "__name__", None) or type(hint).__name__  # never a repr: no address
    raise TypeError(f"type {shown} has no ABI equivalent")
