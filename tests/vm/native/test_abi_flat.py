"""The fast decoder for static words plus top-level bytes/string agrees with eth-abi, on valid
encodings and on corrupted ones (same values, same refusals)."""

from __future__ import annotations

import random
from typing import Any

from eth_abi import decode, encode

from vm.native.abi import AbiError, decode_args

SHAPES = [
    ["bytes32", "bool", "bytes"],  # a callback's arguments
    ["string"],
    ["uint256", "string", "address"],
    ["bytes", "bytes"],
    ["uint8", "bytes"],
]


def _value(rng: random.Random, abi_type: str) -> Any:
    return {
        "bytes32": lambda: rng.randbytes(32),
        "bool": lambda: rng.random() < 0.5,
        "bytes": lambda: rng.randbytes(rng.randint(0, 70)),
        "string": lambda: "x" * rng.randint(0, 40) + "é",
        "uint256": lambda: rng.getrandbits(256),
        "address": lambda: "0x" + rng.randbytes(20).hex(),
        "uint8": lambda: rng.randint(0, 255),
    }[abi_type]()


def _corrupt(rng: random.Random, data: bytearray) -> bytes:
    op = rng.randint(0, 3)
    if op == 0 and data:
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif op == 1:
        data = data[: rng.randrange(len(data) + 1)]
    elif op == 2:
        data += rng.randbytes(rng.randint(1, 40))
    elif data:
        data[rng.randrange(len(data))] = rng.randrange(256)
    return bytes(data)


def test_flat_decoder_matches_eth_abi() -> None:
    rng = random.Random(1)
    refused = 0
    for _ in range(2_000):
        types = rng.choice(SHAPES)
        data = bytearray(encode(types, [_value(rng, t) for t in types]))
        raw = _corrupt(rng, data) if rng.random() < 0.6 else bytes(data)
        try:
            expected = tuple(
                bytes.fromhex(v[2:]) if t == "address" else v
                for t, v in zip(types, decode(types, raw), strict=True)
            )
        except Exception:  # noqa: BLE001 - eth-abi's error classes vary; refusal is what counts
            expected = None
        try:
            got = decode_args(types, raw)
        except AbiError:
            got = None
        assert got == expected, (types, raw.hex())
        refused += got is None
    assert 200 < refused < 1_500  # both outcomes were exercised
