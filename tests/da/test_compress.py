"""Channel compression: the tag byte, round trips, and the caps that stop zip bombs."""

from __future__ import annotations

import contextlib
import os
import zlib

import pytest

from da.compress import ALGORITHMS, Compressor, algorithm_of, compress, decompress
from da.errors import CompressionError, DecompressionLimit

DATA = b"".join(os.urandom(20) + b"\x00" * 44 + b"\xa9\x05\x9c\xbb" for _ in range(500))


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_round_trip_and_tag(algorithm: str) -> None:
    packed = compress(DATA, algorithm)
    assert algorithm_of(packed) == algorithm
    assert len(packed) < len(DATA)
    assert decompress(packed) == DATA
    assert decompress(compress(b"", algorithm)) == b""


def test_tags_follow_op_detection_rules() -> None:
    assert compress(DATA, "zlib")[0] & 0x0F == 0x08  # an RFC 1950 header: OP's legacy channel
    assert compress(DATA, "brotli")[0] == 0x01  # OP Fjord's brotli version byte
    assert compress(DATA, "zstd")[0] == 0x02
    for tag in (0x00, 0x03, 0x0F, 0xFF):
        with pytest.raises(CompressionError, match="unknown compression"):
            decompress(bytes((tag,)) + DATA)
    with pytest.raises(CompressionError, match="empty"):
        decompress(b"")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_zip_bomb_stops_at_the_cap(algorithm: str) -> None:
    bomb = compress(b"\x00" * 20_000_000, algorithm, 1)
    assert len(bomb) < 100_000
    with pytest.raises(DecompressionLimit) as caught:
        decompress(bomb, max_size=1_000_000)
    assert caught.value.limit == 1_000_000


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_output_of_exactly_the_cap_is_allowed(algorithm: str) -> None:
    data = os.urandom(1000) * 50
    assert decompress(compress(data, algorithm), max_size=len(data)) == data
    with pytest.raises(DecompressionLimit):
        decompress(compress(data, algorithm), max_size=len(data) - 1)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_truncated_and_trailing_streams_are_rejected(algorithm: str) -> None:
    packed = compress(DATA, algorithm)
    for cut in (len(packed) // 2, len(packed) - 1):
        with pytest.raises(CompressionError):
            decompress(packed[:cut])
    with pytest.raises(CompressionError):
        decompress(packed + b"\x00")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_corrupt_streams_raise_compression_error(algorithm: str) -> None:
    packed = bytearray(compress(DATA, algorithm))
    for at in range(1, len(packed), max(1, len(packed) // 50)):
        corrupt = bytearray(packed)
        corrupt[at] ^= 0xFF
        with contextlib.suppress(CompressionError):  # no other exception may escape
            decompress(bytes(corrupt))


def test_zlib_with_a_preset_dictionary_is_rejected() -> None:
    packer = zlib.compressobj(9, zdict=b"dictionary")
    with pytest.raises(CompressionError, match="zlib"):
        decompress(packer.compress(DATA) + packer.flush())


def test_compressor_checks_its_settings() -> None:
    with pytest.raises(ValueError, match="unknown compression"):
        Compressor("lz4")
    with pytest.raises(ValueError, match="no level"):
        Compressor("brotli", 12)
    assert Compressor().algorithm == "brotli"
