"""Transactions signed before the clock starts, and cut into JSON-RPC batch bodies.

- `sign_transfer`: one EIP-1559 transaction from a dev account (a value transfer unless call
  data is given); `sign_transfers`: plain value transfers to distinct random recipients from
  the dev accounts, each with its own nonce sequence. coincurve signs, off any timed section.
- `Stream`: the transfers of a disjoint set of senders, in nonce order, cut into pre-serialized
  JSON-RPC batch bodies; one stream is sent over one connection, one batch at a time, so a
  sender's transactions always arrive in nonce order.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
from coincurve import PrivateKey

from benchmarks.common import BenchError
from rollup import rlp
from rollup.crypto import keccak
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from services.rpcclient import request

__all__ = [
    "GWEI",
    "MAX_FEE",
    "SENDERS",
    "TIP",
    "TRANSFER_GAS",
    "SignedTx",
    "Stream",
    "batch_body",
    "interleave",
    "sender_addresses",
    "sign_raw",
    "sign_transfer",
    "sign_transfers",
    "split_senders",
]

SENDERS = tuple(range(len(DEV_KEYS)))  # the dev accounts, by index
GWEI = 10**9
MAX_FEE = 1_000 * GWEI  # a high cap: Anvil's base fee climbs 12.5% a full block (ours stays 1 gwei)
TIP = 1 * GWEI
TRANSFER_GAS = 21_000

_KEYS = [PrivateKey(bytes.fromhex(key[2:])) for key in DEV_KEYS]


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw_hex: str  # "0x..." as eth_sendRawTransaction takes it
    hash_hex: str  # "0x..." as the node answers it
    sender: int  # index into DEV_KEYS
    nonce: int


def sign_raw(
    key: PrivateKey,
    chain_id: int,
    nonce: int,
    to: bytes,
    value: int,
    data: bytes = b"",
    gas: int = TRANSFER_GAS,
    *,
    tip: int = TIP,
    max_fee: int = MAX_FEE,
) -> bytes:
    """One EIP-1559 transaction signed by `key`, as raw bytes (coincurve signs with low s, as
    Ethereum needs); `to` empty creates a contract."""
    enc = rlp.encode_int
    fields: list[rlp.RLPItem] = [
        enc(chain_id),
        enc(nonce),
        enc(tip),
        enc(max_fee),
        enc(gas),
        to,
        enc(value),
        data,
        [],
    ]
    signature = key.sign_recoverable(keccak(b"\x02" + rlp.encode(fields)), hasher=None)
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:64], "big")
    return b"\x02" + rlp.encode([*fields, enc(signature[64]), enc(r), enc(s)])


def sign_transfer(
    sender: int,
    chain_id: int,
    nonce: int,
    to: bytes,
    value: int,
    data: bytes = b"",
    gas: int = TRANSFER_GAS,
    *,
    tip: int = TIP,
    max_fee: int = MAX_FEE,
) -> SignedTx:
    """One EIP-1559 transaction of dev account `sender` (a value transfer unless `data` is
    given), signed."""
    raw = sign_raw(_KEYS[sender], chain_id, nonce, to, value, data, gas, tip=tip, max_fee=max_fee)
    return SignedTx("0x" + raw.hex(), "0x" + keccak(raw).hex(), sender, nonce)


def sign_transfers(
    chain_id: int, plan: dict[int, tuple[int, int]], threads: int = 2
) -> dict[int, list[SignedTx]]:
    """For each sender index: `count` transfers from nonce `first`, plan = {sender: (first,
    count)}, each to a fresh random address with a small random value."""

    def one_sender(item: tuple[int, tuple[int, int]]) -> tuple[int, list[SignedTx]]:
        sender, (first, count) = item
        return sender, [
            sign_transfer(
                sender, chain_id, first + i, secrets.token_bytes(20), 1 + secrets.randbelow(10**15)
            )
            for i in range(count)
        ]

    with ThreadPoolExecutor(threads) as pool:  # coincurve drops the GIL while it signs
        return dict(pool.map(one_sender, plan.items()))


def split_senders(senders: Sequence[int], groups: int) -> list[list[int]]:
    """`senders` dealt round-robin into `groups` disjoint, non-empty groups."""
    if not 1 <= groups <= len(senders):
        raise BenchError(f"need 1..{len(senders)} groups of senders, got {groups}")
    return [list(senders[g::groups]) for g in range(groups)]


def sender_addresses(indexes: Sequence[int]) -> list[bytes]:
    return [DEV_ADDRESSES[i] for i in indexes]


def interleave(lists: Sequence[Sequence[SignedTx]]) -> list[SignedTx]:
    """The first of each list, then the second of each, ...: every list keeps its order."""
    out: list[SignedTx] = []
    for i in range(max((len(x) for x in lists), default=0)):
        out += [x[i] for x in lists if i < len(x)]
    return out


def batch_body(txs: Sequence[SignedTx], first_id: int = 0) -> bytes:
    """A JSON-RPC batch of eth_sendRawTransaction, one a transaction, ids from `first_id`."""
    return orjson.dumps(
        [request("eth_sendRawTransaction", [tx.raw_hex], first_id + i) for i, tx in enumerate(txs)]
    )


@dataclass
class Stream:
    """The transfers of some senders, interleaved so that each keeps nonce order, in batches."""

    txs: list[SignedTx]
    batch: int
    bodies: list[bytes] = field(default_factory=list)
    tails: list[list[str]] = field(default_factory=list)

    @classmethod
    def build(cls, signed: dict[int, list[SignedTx]], senders: Sequence[int], batch: int) -> Stream:
        stream = cls(interleave([signed[s] for s in senders]), batch)
        for i in range(0, len(stream.txs), batch):
            part = stream.txs[i : i + batch]
            stream.bodies.append(batch_body(part, i))
            stream.tails.append([tx.hash_hex for tx in _last_per_sender(part)])
        return stream

    def chunks(self) -> Iterator[tuple[list[SignedTx], bytes, int, list[str]]]:
        """(transactions, request body, JSON-RPC id of the first, hashes of each sender's last
        transaction) of each batch."""
        for index, body in enumerate(self.bodies):
            first = index * self.batch
            yield self.txs[first : first + self.batch], body, first, self.tails[index]

    def last_per_sender(self) -> list[SignedTx]:
        return _last_per_sender(self.txs)


def _last_per_sender(txs: Sequence[SignedTx]) -> list[SignedTx]:
    last: dict[int, SignedTx] = {}
    for tx in txs:
        last[tx.sender] = tx
    return list(last.values())
