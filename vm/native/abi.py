"""ABI encoding for native apps: a fast path for static words, eth-abi for everything else.

Static types (uintN, intN, address, bool, bytesN) are the whole of a token transfer's calldata,
so they are decoded by slicing 32-byte words; dynamic types (string, bytes, arrays, tuples) go
through eth-abi. Both reject malformed input with `AbiError`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

from eth_abi import decode as _abi_decode
from eth_abi import encode as _abi_encode

from rollup.crypto import keccak
from rollup.errors import DecodeError

__all__ = ["AbiError", "selector", "decode_args", "encode_values", "is_static_word", "check_value"]


class AbiError(DecodeError, ValueError):
    """Values that do not encode as, or bytes that do not decode to, the ABI types named."""


_UINT = re.compile(r"^uint(\d+)$")
_INT = re.compile(r"^int(\d+)$")
_BYTES_N = re.compile(r"^bytes(\d+)$")


def selector(signature: str) -> bytes:
    return keccak(signature.encode())[:4]


@functools.cache
def is_static_word(abi_type: str) -> bool:
    return abi_type in ("address", "bool") or bool(
        _UINT.match(abi_type) or _INT.match(abi_type) or _BYTES_N.match(abi_type)
    )


def _decode_word(abi_type: str, word: bytes) -> Any:
    if abi_type == "address":
        if word[:12] != bytes(12):
            raise AbiError("invalid address argument")
        return word[12:]
    if abi_type == "bool":
        value = int.from_bytes(word, "big")
        if value > 1:
            raise AbiError("invalid bool argument")
        return value == 1
    if abi_type == "uint256":
        return int.from_bytes(word, "big")
    match = _UINT.match(abi_type)
    if match:
        value = int.from_bytes(word, "big")
        if value >> int(match.group(1)):
            raise AbiError(f"value out of range for {abi_type}")
        return value
    match = _INT.match(abi_type)
    if match:
        value = int.from_bytes(word, "big", signed=True)
        bits = int(match.group(1))
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise AbiError(f"value out of range for {abi_type}")
        return value
    size = int(_BYTES_N.match(abi_type).group(1))  # type: ignore[union-attr]
    if word[size:] != bytes(32 - size):
        raise AbiError(f"invalid {abi_type} argument")
    return word[:size]


def decode_args(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    if all(is_static_word(t) for t in types):
        if len(data) < 32 * len(types):
            raise AbiError("calldata too short for the method's arguments")
        return tuple(_decode_word(t, data[32 * i : 32 * i + 32]) for i, t in enumerate(types))
    if all(t in ("bytes", "string") or is_static_word(t) for t in types):
        return _decode_flat(types, data)  # the common dynamic case, without eth-abi's cost
    try:
        values = _abi_decode(list(types), data)
    except Exception as exc:
        raise AbiError(f"cannot decode arguments: {exc}") from None
    return tuple(_normalize(t, v) for t, v in zip(types, values, strict=True))


def _decode_flat(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """Static words and top-level `bytes`/`string`, checked as strictly as eth-abi: the tail
    in bounds, padded to a whole word with zeros."""
    if len(data) < 32 * len(types):
        raise AbiError("calldata too short for the method's arguments")
    out: list[Any] = []
    for i, abi_type in enumerate(types):
        word = data[32 * i : 32 * i + 32]
        if abi_type not in ("bytes", "string"):
            out.append(_decode_word(abi_type, word))
            continue
        offset = int.from_bytes(word, "big")
        if offset + 32 > len(data):
            raise AbiError(f"cannot decode arguments: {abi_type} offset out of range")
        size = int.from_bytes(data[offset : offset + 32], "big")
        start, end = offset + 32, offset + 32 + size
        padded = end + (-size % 32)
        if padded > len(data) or any(data[end:padded]):
            raise AbiError(f"cannot decode arguments: {abi_type} data out of range or unpadded")
        raw = data[start:end]
        if abi_type == "bytes":
            out.append(raw)
        else:
            try:
                out.append(raw.decode())
            except UnicodeDecodeError as exc:
                raise AbiError(f"cannot decode arguments: {exc}") from None
    return tuple(out)


def _normalize(abi_type: str, value: Any) -> Any:
    """eth-abi returns addresses as checksummed text; apps see 20-byte values everywhere."""
    if abi_type == "address":
        return bytes.fromhex(value[2:])
    if abi_type.endswith("]") and isinstance(value, (list, tuple)):
        inner = abi_type[: abi_type.rindex("[")]
        return [_normalize(inner, v) for v in value]
    return value


@functools.cache
def _word_encoder(abi_type: str) -> Callable[[Any], bytes]:
    """Check and encode one static value; built once per type (this is on every return/log)."""
    if abi_type == "address":
        return _encode_address
    if abi_type == "bool":
        return lambda value: _FALSE_WORD[:31] + (b"\x01" if value else b"\x00")
    if _BYTES_N.match(abi_type):
        return lambda value: bytes(value).ljust(32, b"\x00")
    if _INT.match(abi_type):
        return lambda value: int(value).to_bytes(32, "big", signed=True)
    bits = int(_UINT.match(abi_type).group(1))  # type: ignore[union-attr]

    def encode_uint(value: Any) -> bytes:
        if not (isinstance(value, int) and value >= 0 and value.bit_length() <= bits):
            raise AbiError(f"value {value!r} out of range for {abi_type}")
        return value.to_bytes(32, "big")

    return encode_uint


_FALSE_WORD = bytes(32)


def _encode_address(value: Any) -> bytes:
    if not (isinstance(value, (bytes, bytearray)) and len(value) == 20):
        raise AbiError(f"value {value!r} is not a 20-byte address")
    return _FALSE_WORD[:12] + bytes(value)


def check_value(abi_type: str, value: Any) -> None:
    """Raise AbiError if `value` cannot be encoded as `abi_type` (apps returning bad values)."""
    if is_static_word(abi_type):
        _word_encoder(abi_type)(value)


def encode_values(types: Sequence[str], values: Sequence[Any]) -> bytes:
    if all(is_static_word(t) for t in types):
        return b"".join([_word_encoder(t)(v) for t, v in zip(types, values, strict=True)])
    try:
        return _abi_encode(
            list(types), [_denormalize(t, v) for t, v in zip(types, values, strict=True)]
        )
    except Exception as exc:
        raise AbiError(f"cannot encode values: {exc}") from None


def _denormalize(abi_type: str, value: Any) -> Any:
    if abi_type == "address" and isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if abi_type.endswith("]") and isinstance(value, (list, tuple)):
        inner = abi_type[: abi_type.rindex("[")]
        return [_denormalize(inner, v) for v in value]
    return value
