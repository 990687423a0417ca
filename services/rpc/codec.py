"""Wire values of Ethereum JSON-RPC: quantities, data, addresses, hashes and block tags.

Quantities go out as minimal lowercase hex ("0x0", "0x1a"); on the way in, zero-padded hex is
accepted as MetaMask's filters send it. Every parse error is `InvalidParams` naming the value.
"""

from __future__ import annotations

import re
from typing import Any

from rollup.errors import InvalidParams

__all__ = [
    "quantity",
    "data",
    "parse_quantity",
    "parse_data",
    "parse_address",
    "parse_hash",
    "parse_optional_address",
    "parse_storage_slot",
]


def quantity(value: int) -> str:
    return hex(value)


def data(value: bytes) -> str:
    return "0x" + value.hex()


_HEX = re.compile(r"[0-9a-fA-F]*")


def _hex_body(value: Any, what: str) -> str:
    """The digits after 0x; int() and bytes.fromhex() would also take signs, spaces and _."""
    if not isinstance(value, str) or not value.startswith(("0x", "0X")):
        raise InvalidParams(
            f"invalid argument: {what} must be a 0x-prefixed hex string, got {value!r}"
        )
    body = value[2:]
    if not _HEX.fullmatch(body):
        raise InvalidParams(f"invalid argument: {what} {value!r} is not hex")
    return body


def parse_quantity(value: Any, what: str = "quantity") -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value  # lenient: some clients send JSON numbers
    body = _hex_body(value, what)
    if not body or len(body) > 64:
        raise InvalidParams(f"invalid argument: {what} {value!r} is not a hex quantity")
    try:
        return int(body, 16)
    except ValueError:
        raise InvalidParams(f"invalid argument: {what} {value!r} is not a hex quantity") from None


def parse_data(value: Any, what: str = "data") -> bytes:
    body = _hex_body(value, what)
    if len(body) % 2:
        raise InvalidParams(f"invalid argument: {what} has an odd number of hex digits")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise InvalidParams(f"invalid argument: {what} is not hex") from None


def parse_address(value: Any, what: str = "address") -> bytes:
    raw = parse_data(value, what)
    if len(raw) != 20:
        raise InvalidParams(f"invalid argument: {what} must be 20 bytes, got {len(raw)}")
    return raw


def parse_optional_address(value: Any, what: str = "address") -> bytes | None:
    return None if value is None else parse_address(value, what)


def parse_hash(value: Any, what: str = "hash") -> bytes:
    raw = parse_data(value, what)
    if len(raw) != 32:
        raise InvalidParams(f"invalid argument: {what} must be 32 bytes, got {len(raw)}")
    return raw


def parse_storage_slot(value: Any) -> bytes:
    """A storage key: hex of at most 32 bytes (geth pads shorter ones on the left)."""
    body = _hex_body(value, "storage slot")
    if len(body) > 64 or not body:
        raise InvalidParams("invalid argument 1: hex string too long, want at most 32 bytes")
    try:
        return int(body, 16).to_bytes(32, "big")
    except ValueError:
        raise InvalidParams(f"invalid argument 1: storage slot {value!r} is not hex") from None
