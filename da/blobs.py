"""Bytes in and out of EIP-4844 blobs, in OP Stack's blob encoding (version 0).

    blob    = 4096 field elements of 32 bytes (131,072 bytes); each element's top two bits are
              zero, so every element is below the BLS12-381 modulus
    stream  = version(u8 = 0x00) ++ length(u24 BE) ++ data ++ zero padding, 1024 x 127 bytes
    round r = stream[127r : 127r + 127] = a(31) ++ x ++ b(31) ++ y ++ c(31) ++ z ++ d(31)
              -> 4 field elements: [x6] ++ a, [y4 | x2] ++ b, [z6] ++ c, [z2 | y4'] ++ d
The three single bytes of a round are cut into four 6-bit pieces placed in the elements' top
bytes (as op-service/eth/blob.go does), so a blob carries at most MAX_BLOB_DATA = 130,044
bytes. Decoding is strict: a wrong version, a length over the maximum, an element with a top
bit set or nonzero bytes after the data raise `BlobError`, so a blob decodes only if it is
exactly the encoding of what it decodes to.
"""

from __future__ import annotations

from da.errors import CodecError

__all__ = [
    "BLOB_SIZE",
    "MAX_BLOB_DATA",
    "BlobError",
    "encode_blob",
    "decode_blob",
    "encode_blobs",
    "decode_blobs",
]

BLOB_SIZE = 4096 * 32
ROUNDS = 1024
ROUND_DATA = 4 * 31 + 3
MAX_BLOB_DATA = ROUNDS * ROUND_DATA - 4
ENCODING_VERSION = 0x00


class BlobError(CodecError):
    pass


def encode_blob(data: bytes) -> bytes:
    """The blob carrying `data` (at most MAX_BLOB_DATA bytes)."""
    if len(data) > MAX_BLOB_DATA:
        raise BlobError(f"{len(data)} bytes do not fit a blob (at most {MAX_BLOB_DATA})")
    stream = bytes((ENCODING_VERSION,)) + len(data).to_bytes(3, "big") + data
    stream += bytes(ROUNDS * ROUND_DATA - len(stream))
    out = bytearray(BLOB_SIZE)
    for r in range(ROUNDS):
        chunk = stream[127 * r : 127 * r + 127]
        if not any(chunk):
            break  # the rest of the blob stays zero
        x, y, z = chunk[31], chunk[63], chunk[95]
        at = 128 * r
        out[at] = x & 0x3F
        out[at + 1 : at + 32] = chunk[0:31]
        out[at + 32] = (y & 0x0F) | ((x & 0xC0) >> 2)
        out[at + 33 : at + 64] = chunk[32:63]
        out[at + 64] = z & 0x3F
        out[at + 65 : at + 96] = chunk[64:95]
        out[at + 96] = ((z & 0xC0) >> 2) | ((y & 0xF0) >> 4)
        out[at + 97 : at + 128] = chunk[96:127]
    return bytes(out)


def decode_blob(blob: bytes) -> bytes:
    """The data a blob carries; raises `BlobError` unless the blob is its exact encoding."""
    if len(blob) != BLOB_SIZE:
        raise BlobError(f"a blob is {BLOB_SIZE} bytes, not {len(blob)}")
    if blob[1] != ENCODING_VERSION:
        raise BlobError(f"unknown blob encoding version {blob[1]}")
    length = int.from_bytes(blob[2:5], "big")
    if length > MAX_BLOB_DATA:
        raise BlobError(f"blob length {length} exceeds {MAX_BLOB_DATA}")
    for at in range(0, BLOB_SIZE, 32):
        if blob[at] & 0xC0:
            raise BlobError(f"field element {at // 32} has its top bits set")
    # Decode the rounds that hold the data or any nonzero byte; the rest must be zero anyway.
    used = len(blob.rstrip(b"\x00"))
    rounds = max(-(-(4 + length) // 127), -(-used // 128))
    stream = bytearray()
    for r in range(rounds):
        at = 128 * r
        e0, e1, e2, e3 = blob[at], blob[at + 32], blob[at + 64], blob[at + 96]
        x = (e0 & 0x3F) | ((e1 & 0x30) << 2)
        y = (e1 & 0x0F) | ((e3 & 0x0F) << 4)
        z = (e2 & 0x3F) | ((e3 & 0x30) << 2)
        stream += blob[at + 1 : at + 32] + bytes((x,)) + blob[at + 33 : at + 64] + bytes((y,))
        stream += blob[at + 65 : at + 96] + bytes((z,)) + blob[at + 97 : at + 128]
    if any(stream[4 + length :]):
        raise BlobError("nonzero bytes after the blob's data")
    return bytes(stream[4 : 4 + length])


def encode_blobs(data: bytes) -> list[bytes]:
    """`data` spread over as few blobs as hold it (one blob for empty data)."""
    pieces = [data[at : at + MAX_BLOB_DATA] for at in range(0, len(data), MAX_BLOB_DATA)]
    return [encode_blob(piece) for piece in pieces or [b""]]


def decode_blobs(blobs: list[bytes]) -> bytes:
    """The inverse of `encode_blobs`: every blob but the last must be full."""
    parts = [decode_blob(blob) for blob in blobs]
    if any(len(part) != MAX_BLOB_DATA for part in parts[:-1]):
        raise BlobError("a blob before the last is not full")
    return b"".join(parts)
