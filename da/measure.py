"""Bytes of DA per transaction on synthetic workloads shaped like the harness's transactions.

    bytes_per_tx("native")                    # compressed column-wise batch, default compressor
    measure(kinds=("native", "erc20"), count=5_000)   # the whole table: encodings x compressors

A workload is `count` EIP-1559 transfers signed (libsecp256k1, deterministic from `seed`) by
`senders` keys taking turns at random, each to a distinct random recipient, in blocks of
`per_block`: "native" moves ether (gas 21,000, no data), "erc20" calls `transfer(address,uint256)`
on one token contract (gas 60,000, 68 bytes of calldata). Amounts are round numbers from a small
set, as people send. Fees are the harness's (tip 0, fee cap 2 gwei).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from coincurve import PrivateKey

from da.batch import Batch, BatchBlock, encode_batch
from da.compress import Compressor
from rollup import rlp
from rollup.crypto import keccak
from rollup.rlp import encode_int
from rollup.types import Address, Hash32

__all__ = ["KINDS", "COMPRESSORS", "Row", "workload", "as_batch", "bytes_per_tx", "measure"]

KINDS = ("native", "erc20")
COMPRESSORS: tuple[Compressor | None, ...] = (
    None,
    Compressor("zlib", 9),
    Compressor("brotli", 9),
    Compressor("brotli", 10),
    Compressor("brotli", 11),
    Compressor("zstd", 3),
    Compressor("zstd", 19),
)
CHAIN_ID = 901001
TOKEN = Address(bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3"))
TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")  # transfer(address,uint256)
GWEI = 10**9


@dataclass(frozen=True, slots=True)
class Row:
    kind: str
    encoding: str  # "columns" (da.batch) or "raw" (concatenated signed transactions)
    compressor: str
    bytes_per_tx: float
    seconds: float  # compression time of the whole workload


def _sign_1559(key: PrivateKey, nonce: int, gas: int, to: bytes, value: int, data: bytes) -> bytes:
    fields: list[rlp.RLPItem] = [
        encode_int(CHAIN_ID),
        encode_int(nonce),
        b"",
        encode_int(2 * GWEI),
        encode_int(gas),
        to,
        encode_int(value),
        data,
        [],
    ]
    signature = key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
    r, s, parity = signature[:32], signature[32:64], signature[64]
    sig_items: list[rlp.RLPItem] = [encode_int(parity), r.lstrip(b"\0"), s.lstrip(b"\0")]
    return b"\x02" + rlp.encode(fields + sig_items)


def workload(kind: str, count: int, senders: int = 8, seed: int = 1) -> list[bytes]:
    """`count` raw signed transfers of `kind` ("native" or "erc20")."""
    if kind not in KINDS:
        raise ValueError(f"unknown workload {kind!r}, one of {KINDS}")
    rng = random.Random(seed)
    keys = [PrivateKey(rng.randbytes(32)) for _ in range(senders)]
    nonces = [rng.randrange(0, 1_000) for _ in range(senders)]
    raws = []
    for _ in range(count):
        who = rng.randrange(senders)
        recipient = rng.randbytes(20)
        amount = rng.choice((1, 2, 5, 10, 20, 50, 100, 250, 500, 1000))
        if kind == "native":
            raw = _sign_1559(keys[who], nonces[who], 21_000, recipient, amount * 10**15, b"")
        else:
            data = TRANSFER_SELECTOR + bytes(12) + recipient + (amount * 10**18).to_bytes(32, "big")
            raw = _sign_1559(keys[who], nonces[who], 60_000, TOKEN, 0, data)
        nonces[who] += 1
        raws.append(raw)
    return raws


def as_batch(raws: Sequence[bytes], per_block: int = 100) -> Batch:
    """A batch carrying `raws` in blocks of `per_block`, 100 ms apart, on a new L1 origin every
    120 blocks; no deposits."""
    coinbase = Address(keccak(b"app-rollup:fee-vault:measure")[12:])
    origins = [20_000_000 + i // 120 for i in range(-(-len(raws) // per_block))]  # one a 12 s
    blocks = tuple(
        BatchBlock(
            1_700_000_000_000 + 100 * i,
            1_700_000_000 + i // 10,
            origins[i],
            coinbase,
            30_000_000,
            GWEI,
            tuple(raws[at : at + per_block]),
            l1_origin_hash=Hash32(keccak(origins[i].to_bytes(8, "big"))),
        )
        for i, at in enumerate(range(0, len(raws), per_block))
    )
    return Batch(
        CHAIN_ID,
        1,
        Hash32(keccak(b"parent")),
        blocks,
        Hash32(keccak(b"state")),
        Hash32(keccak(b"head")),
    )


def _row(kind: str, encoding: str, data: bytes, compressor: Compressor | None, n: int) -> Row:
    started = time.perf_counter()
    size = len(data) if compressor is None else len(compressor.compress(data))
    name = "none" if compressor is None else f"{compressor.algorithm} {compressor.level}"
    return Row(kind, encoding, name, size / n, time.perf_counter() - started)


def measure(
    kinds: Sequence[str] = KINDS,
    count: int = 5_000,
    compressors: Sequence[Compressor | None] = COMPRESSORS,
    per_block: int = 100,
) -> list[Row]:
    """Bytes per transaction of each workload, encoding and compressor."""
    rows = []
    for kind in kinds:
        raws = workload(kind, count)
        encodings = {"columns": encode_batch(as_batch(raws, per_block)), "raw": b"".join(raws)}
        for encoding, data in encodings.items():
            rows += [_row(kind, encoding, data, c, count) for c in compressors]
    return rows


def bytes_per_tx(
    kind: str, count: int = 5_000, compressor: Compressor | None = None, per_block: int = 100
) -> float:
    """DA bytes a transaction of `kind` costs in a compressed column-wise batch."""
    data = encode_batch(as_batch(workload(kind, count), per_block))
    return len((compressor or Compressor()).compress(data)) / count
