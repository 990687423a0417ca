"""Byte-level helpers of the batch codec: unsigned and zigzag varints, bit lists, a reader.

    uvarint = LEB128: 7 bits a byte, least significant group first, high bit set on all but
              the last byte; minimal (no trailing zero group), as protobuf and Go's `binary`.
    zigzag  = 0, -1, 1, -2, ... as 0, 1, 2, 3, ...
    bitlist = ceil(n / 8) bytes, bit i in byte i // 8 at position i % 8; unused bits are zero.
Every read checks bounds and canonical form and raises the caller's `CodecError` subclass.
"""

from __future__ import annotations

from collections.abc import Sequence

from da.errors import CodecError

__all__ = ["put_uvarint", "put_zigzag", "pack_bits", "Reader"]


def put_uvarint(out: bytearray, value: int) -> None:
    if value < 0:
        raise ValueError("uvarint of a negative number")
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def put_zigzag(out: bytearray, value: int) -> None:
    put_uvarint(out, value * 2 if value >= 0 else -value * 2 - 1)


def pack_bits(bits: Sequence[int]) -> bytes:
    packed = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            packed[i >> 3] |= 1 << (i & 7)
    return bytes(packed)


class Reader:
    """Reads a byte string front to back; every defect raises `error` naming the field."""

    __slots__ = ("data", "pos", "error")

    def __init__(self, data: bytes, error: type[CodecError]) -> None:
        self.data, self.pos, self.error = data, 0, error

    def take(self, size: int, name: str) -> bytes:
        end = self.pos + size
        if end > len(self.data):
            raise self.error(f"truncated {name}: needs {size} bytes, {self.remaining()} left")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def u8(self, name: str) -> int:
        if self.pos >= len(self.data):
            raise self.error(f"truncated {name}")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def uvarint(self, name: str, max_bits: int = 64) -> int:
        data, pos, shift, value = self.data, self.pos, 0, 0
        while True:
            if pos >= len(data):
                raise self.error(f"truncated {name}")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
            if shift >= max_bits:
                raise self.error(f"{name} overflows {max_bits} bits")
        if byte == 0 and shift > 7:
            raise self.error(f"non-canonical uvarint for {name}")
        if value >> max_bits:
            raise self.error(f"{name} overflows {max_bits} bits")
        self.pos = pos
        return value

    def uvarints(self, count: int, name: str, max_bits: int = 64) -> list[int]:
        """`count` uvarints in a row: `uvarint`'s loop inlined for columns (the verifier's
        hot path), with the same checks."""
        data, pos, end = self.data, self.pos, len(self.data)
        out: list[int] = []
        append = out.append
        for _ in range(count):
            if pos < end and data[pos] < 0x80:  # one byte: most values of most columns
                append(data[pos])
                pos += 1
                continue
            value = shift = 0
            while True:
                if pos >= end:
                    raise self.error(f"truncated {name}")
                byte = data[pos]
                pos += 1
                value |= (byte & 0x7F) << shift
                shift += 7
                if byte < 0x80:
                    break
                if shift >= max_bits:
                    raise self.error(f"{name} overflows {max_bits} bits")
            if byte == 0:
                raise self.error(f"non-canonical uvarint for {name}")
            if value >> max_bits:
                raise self.error(f"{name} overflows {max_bits} bits")
            append(value)
        self.pos = pos
        return out

    def zigzag(self, name: str, max_bits: int = 64) -> int:
        raw = self.uvarint(name, max_bits + 1)
        return raw >> 1 if not raw & 1 else -((raw + 1) >> 1)

    def bits(self, count: int, name: str) -> list[int]:
        packed = self.take((count + 7) // 8, name)
        bits = [(packed[i >> 3] >> (i & 7)) & 1 for i in range(count)]
        if count & 7 and packed[-1] >> (count & 7):
            raise self.error(f"{name}: padding bits are not zero")
        return bits

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def expect_end(self, name: str) -> None:
        if self.pos != len(self.data):
            raise self.error(f"{self.remaining()} trailing bytes after {name}")
