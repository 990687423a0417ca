"""A strict RLP codec (Ethereum yellow paper, appendix B) tuned for transaction decoding.

    item   = string | list
    string = 0x00..0x7f                        (a single byte is its own encoding)
           | (0x80 + len) ++ bytes             (len <= 55)
           | (0xb7 + len_of_len) ++ len ++ bytes
    list   = (0xc0 + len) ++ items | (0xf7 + len_of_len) ++ len ++ items

Decoding is canonical only: a single byte below 0x80 wrapped in a string header, a long form
used for a short payload, or a length with leading zeros is rejected, as geth does.
`decode_list_with_offsets` also returns where each top-level item starts and ends, so a
transaction's signing payload can be sliced out of the raw bytes instead of re-encoded.
"""

from __future__ import annotations

from typing import TypeAlias

from rollup.errors import DecodeError

RLPItem: TypeAlias = "bytes | list[RLPItem]"

__all__ = [
    "RLPError",
    "RLPItem",
    "decode",
    "decode_list_with_offsets",
    "encode",
    "encode_int",
    "decode_int",
    "list_header",
    "as_bytes",
    "as_list",
]


class RLPError(DecodeError, ValueError):
    """Malformed RLP; the message follows geth's `rlp:` wording."""


def as_bytes(item: RLPItem) -> bytes:
    if not isinstance(item, bytes):
        raise RLPError("rlp: expected input string or byte")
    return item


def as_list(item: RLPItem, length: int | None = None) -> list[RLPItem]:
    if not isinstance(item, list):
        raise RLPError("rlp: expected input list")
    if length is not None and len(item) != length:
        raise RLPError(f"rlp: expected a list of {length} items, got {len(item)}")
    return item


def _length_prefix(length: int, offset: int) -> bytes:
    if length <= 55:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def list_header(payload_length: int) -> bytes:
    return _length_prefix(payload_length, 0xC0)


def encode(item: RLPItem) -> bytes:
    if type(item) is bytes:  # the common case first, checked the cheapest way
        size = len(item)
        if size == 1 and item[0] < 0x80:
            return item
        if size <= 55:
            return bytes((0x80 + size,)) + item
        return _length_prefix(size, 0x80) + item
    if isinstance(item, (bytes, bytearray)):
        return encode(bytes(item))
    payload = b"".join([encode(child) for child in item])
    size = len(payload)
    if size <= 55:
        return bytes((0xC0 + size,)) + payload
    return _length_prefix(size, 0xC0) + payload


def encode_int(value: int) -> bytes:
    """Minimal big-endian bytes of a non-negative integer (empty for zero)."""
    return value.to_bytes((value.bit_length() + 7) // 8, "big") if value else b""


def decode_int(data: bytes) -> int:
    if data[:1] == b"\x00":
        raise RLPError("rlp: non-canonical integer (leading zero bytes)")
    return int.from_bytes(data, "big")


def _read_header(data: bytes, pos: int, end: int) -> tuple[bool, int, int]:
    """(is_list, payload_start, payload_end) of the item at `pos`."""
    if pos >= end:
        raise RLPError("rlp: value size exceeds available input length")
    prefix = data[pos]
    if prefix < 0x80:
        return False, pos, pos + 1
    if prefix <= 0xB7:
        start, length = pos + 1, prefix - 0x80
        if length == 1 and start < end and data[start] < 0x80:
            raise RLPError("rlp: non-canonical size information")
        is_list = False
    elif prefix < 0xC0:
        start, length = _long_length(data, pos, prefix - 0xB7, end)
        is_list = False
    elif prefix <= 0xF7:
        start, length = pos + 1, prefix - 0xC0
        is_list = True
    else:
        start, length = _long_length(data, pos, prefix - 0xF7, end)
        is_list = True
    if start + length > end:
        raise RLPError("rlp: value size exceeds available input length")
    return is_list, start, start + length


def _long_length(data: bytes, pos: int, size_len: int, end: int) -> tuple[int, int]:
    start = pos + 1 + size_len
    if start > end:
        raise RLPError("rlp: value size exceeds available input length")
    size = data[pos + 1 : start]
    if size[0] == 0:
        raise RLPError("rlp: non-canonical size information")
    length = int.from_bytes(size, "big")
    if length <= 55:
        raise RLPError("rlp: non-canonical size information")
    return start, length


def _decode_at(data: bytes, pos: int, end: int, depth: int) -> tuple[RLPItem, int]:
    if depth > 64:
        raise RLPError("rlp: nesting too deep")
    is_list, start, stop = _read_header(data, pos, end)
    if not is_list:
        return data[start:stop], stop
    items: list[RLPItem] = []
    cursor = start
    while cursor < stop:
        child, cursor = _decode_at(data, cursor, stop, depth + 1)
        items.append(child)
    return items, stop


def decode(data: bytes) -> RLPItem:
    item, end = _decode_at(data, 0, len(data), 0)
    if end != len(data):
        raise RLPError("rlp: input contains more than one value")
    return item


def decode_list_with_offsets(data: bytes, pos: int = 0) -> tuple[list[RLPItem], list[int]]:
    """Decode the list at `pos` that must span to the end of `data`.

    Returns the items and the offsets in `data` where each item starts, plus the end offset.
    """
    is_list, start, stop = _read_header(data, pos, len(data))
    if not is_list:
        raise RLPError("rlp: expected input list for transaction")
    if stop != len(data):
        raise RLPError("rlp: input contains more than one value")
    items: list[RLPItem] = []
    offsets = [start]
    cursor = start
    while cursor < stop:
        child, cursor = _decode_at(data, cursor, stop, 1)
        items.append(child)
        offsets.append(cursor)
    return items, offsets
