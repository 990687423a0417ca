"""Ethereum's 2048-bit logs bloom (yellow paper 4.3.1): 3 bits per address and topic."""

from __future__ import annotations

from collections.abc import Iterable

from rollup.crypto import keccak
from rollup.types import Log

__all__ = ["EMPTY_BLOOM", "bloom_add", "logs_bloom", "bloom_bits", "bloom_contains"]

EMPTY_BLOOM = bytes(256)


def bloom_bits(value: bytes) -> int:
    digest = keccak(value)
    bits = 0
    for i in (0, 2, 4):
        bits |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return bits


def bloom_add(bloom: int, log: Log) -> int:
    bloom |= bloom_bits(log.address)
    for topic in log.topics:
        bloom |= bloom_bits(topic)
    return bloom


def logs_bloom(logs: Iterable[Log]) -> bytes:
    bloom = 0
    for log in logs:
        bloom = bloom_add(bloom, log)
    return bloom.to_bytes(256, "big")


def bloom_contains(bloom: bytes, value: bytes) -> bool:
    bits = bloom_bits(value)
    return int.from_bytes(bloom, "big") & bits == bits
