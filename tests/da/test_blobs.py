"""OP's blob encoding: round trips up to the maximum, strict rejection of anything else."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from da.blobs import (
    BLOB_SIZE,
    MAX_BLOB_DATA,
    BlobError,
    decode_blob,
    decode_blobs,
    encode_blob,
    encode_blobs,
)


@pytest.mark.parametrize("size", [0, 1, 27, 28, 127, 128, 1000, MAX_BLOB_DATA - 1, MAX_BLOB_DATA])
def test_round_trip_at_the_edges(size: int) -> None:
    data = os.urandom(size)
    blob = encode_blob(data)
    assert len(blob) == BLOB_SIZE
    assert all(blob[at] < 0x40 for at in range(0, BLOB_SIZE, 32))  # below the BLS modulus
    assert decode_blob(blob) == data


@given(st.binary(max_size=3000))
@settings(max_examples=100, deadline=None)
def test_round_trip(data: bytes) -> None:
    assert decode_blob(encode_blob(data)) == data


def test_the_layout_is_op_stack_s() -> None:
    blob = encode_blob(b"\xff" * 127)
    assert blob[1] == 0 and blob[2:5] == (127).to_bytes(3, "big")  # version, u24 length
    assert blob[5:32] == b"\xff" * 27  # the first element's data after the header
    assert blob[0] == 0x3F and blob[32] == 0x3F and blob[96] == 0x3F  # 6-bit pieces


def test_too_much_data_is_refused() -> None:
    with pytest.raises(BlobError, match="do not fit"):
        encode_blob(bytes(MAX_BLOB_DATA + 1))


def test_malformed_blobs_are_rejected() -> None:
    good = bytearray(encode_blob(b"hello"))
    cases = {
        "is 131072 bytes": bytes(good[:-1]),
        "version": bytes(good[:1]) + b"\x01" + bytes(good[2:]),
        "exceeds": bytes(good[:2]) + b"\xff\xff\xff" + bytes(good[5:]),
        "top bits": bytes(good[:64]) + b"\x40" + bytes(good[65:]),
        "nonzero bytes after": bytes(good[:5000]) + b"\x01" + bytes(good[5001:]),
    }
    for reason, blob in cases.items():
        with pytest.raises(BlobError, match=reason):
            decode_blob(blob)


def test_data_over_several_blobs() -> None:
    data = os.urandom(2 * MAX_BLOB_DATA + 10)
    blobs = encode_blobs(data)
    assert len(blobs) == 3 and decode_blobs(blobs) == data
    assert encode_blobs(b"") == [encode_blob(b"")]
    with pytest.raises(BlobError, match="not full"):
        decode_blobs([encode_blob(b"short"), blobs[0]])
