"""The batch codec: round trips, canonical form, and strict rejection of malformed bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from da.batch import (
    MAX_BATCH_BLOCKS,
    Batch,
    BatchBlock,
    decode_batch,
    encode_batch,
)
from da.compress import compress
from da.errors import BatchError
from da.measure import as_batch, workload
from rollup import rlp
from rollup.rlp import encode_int
from rollup.transactions import decode_transaction
from rollup.types import Address, Hash32

CHAIN_ID = 901001
U64 = 2**64 - 1
U256 = 2**256 - 1


@dataclasses.dataclass(frozen=True)
class Fields:
    nonce: int = 1
    gas: int = 21_000
    fee_cap: int = 10**9
    tip: int = 0
    to: bytes = b"\x01" * 20
    value: int = 1
    data: bytes = b""
    access_list: tuple[tuple[bytes, tuple[bytes, ...]], ...] = ()
    parity: int = 1
    r: int = 5
    s: int = 7


def build_tx(kind: int, chain_id: int, f: Fields) -> bytes:
    """A raw transaction from fields, written from the EIPs (not from da.batch)."""
    common: list[rlp.RLPItem] = [encode_int(f.gas), f.to, encode_int(f.value), f.data]
    sig: list[rlp.RLPItem] = [encode_int(f.r), encode_int(f.s)]
    if kind in (0x00, 0x80):
        v = chain_id * 2 + 35 + f.parity if kind == 0 else 27 + f.parity
        return rlp.encode(
            [encode_int(f.nonce), encode_int(f.fee_cap), *common, encode_int(v), *sig]
        )
    head: list[rlp.RLPItem] = [encode_int(chain_id), encode_int(f.nonce)]
    head += [encode_int(f.tip), encode_int(f.fee_cap)] if kind == 2 else [encode_int(f.fee_cap)]
    access: list[rlp.RLPItem] = [[a, list(keys)] for a, keys in f.access_list]
    return bytes((kind,)) + rlp.encode([*head, *common, access, encode_int(f.parity), *sig])


ADDRESSES = st.binary(min_size=20, max_size=20)
ACCESS_LISTS = st.lists(
    st.tuples(ADDRESSES, st.lists(st.binary(min_size=32, max_size=32), max_size=2).map(tuple)),
    max_size=2,
).map(tuple)


@st.composite
def raw_txs(draw: st.DrawFn, chain_id: int = CHAIN_ID) -> bytes:
    kind = draw(st.sampled_from([0x00, 0x01, 0x02, 0x80]))
    fields = Fields(
        nonce=draw(st.integers(0, U64)),
        gas=draw(st.integers(0, U64)),
        fee_cap=draw(st.integers(0, U256)),
        tip=draw(st.integers(0, U256)),
        to=draw(st.sampled_from([b"", b"\x00" * 20]) | ADDRESSES),
        value=draw(st.integers(0, U256)),
        data=draw(st.binary(max_size=100)),
        access_list=draw(ACCESS_LISTS) if kind in (1, 2) else (),
        parity=draw(st.integers(0, 1)),
        r=draw(st.integers(0, U256)),
        s=draw(st.integers(0, U256)),
    )
    return build_tx(kind, chain_id, fields)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    chain_id = draw(st.integers(0, U64))
    count = draw(st.integers(1, 4))
    coinbases = [Address(draw(st.binary(min_size=20, max_size=20))) for _ in range(2)]
    blocks = []
    ms = draw(st.integers(0, 2**50))
    origin = draw(st.integers(0, 2**40))
    for _ in range(count):
        ms += draw(st.integers(0, 5_000))
        origin += draw(st.integers(0, 3))
        blocks.append(BatchBlock(
            timestamp_ms=ms,
            timestamp=max(0, ms // 1000 + draw(st.integers(-2, 2))),
            l1_origin=origin,
            coinbase=draw(st.sampled_from(coinbases)),
            gas_limit=draw(st.sampled_from([30_000_000, 60_000_000])),
            base_fee=draw(st.integers(0, U64)),
            transactions=tuple(draw(st.lists(raw_txs(chain_id), max_size=4))),
        ))  # fmt: skip
    hashes = [Hash32(draw(st.binary(min_size=32, max_size=32))) for _ in range(3)]
    first = draw(st.integers(0, 2**40))
    return Batch(chain_id, first, hashes[0], tuple(blocks), hashes[1], hashes[2])


@given(batches())
@settings(max_examples=300, deadline=None)
def test_round_trip(batch: Batch) -> None:
    data = encode_batch(batch)
    assert decode_batch(data) == batch


def test_round_trip_of_signed_transfers_keeps_hashes_and_senders() -> None:
    raws = workload("erc20", 50) + workload("native", 50, seed=2)
    batch = as_batch(raws, per_block=7)
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    again = [raw for block in decoded.blocks for raw in block.transactions]
    senders = [decode_transaction(raw, CHAIN_ID).sender for raw in raws]
    assert [decode_transaction(raw, CHAIN_ID).sender for raw in again] == senders


def test_columns_compress_better_than_raw_transactions() -> None:
    raws = workload("erc20", 300)
    columns, raw = encode_batch(as_batch(raws)), b"".join(raws)
    assert len(columns) < len(raw)
    assert len(compress(columns)) < len(compress(raw))


# ---- what cannot be encoded ----


def _one_block(txs: tuple[bytes, ...] = (), **changes: Any) -> Batch:
    block = BatchBlock(1_000, 1, 0, Address(bytes(20)), 30_000_000, 10**9, txs)
    return dataclasses.replace(Batch(CHAIN_ID, 1, Hash32(bytes(32)), (block,), Hash32(bytes(32)),
                                     Hash32(bytes(32))), **changes)  # fmt: skip


def test_encode_rejects_a_transaction_of_another_chain() -> None:
    other = workload("native", 1)[0]
    with pytest.raises(BatchError, match="chain id"):
        encode_batch(_one_block((other,), chain_id=5))


def test_encode_rejects_garbage_and_unsupported_transactions() -> None:
    with pytest.raises(BatchError, match="transaction 0"):
        encode_batch(_one_block((b"\x03\xc0",)))
    with pytest.raises(BatchError, match="transaction 1"):
        encode_batch(_one_block((workload("native", 1)[0], b"\xc1\x80")))


def test_encode_rejects_empty_and_backwards_batches() -> None:
    with pytest.raises(BatchError, match="1 to"):
        encode_batch(_one_block(blocks=()))
    block = _one_block().blocks[0]
    earlier = dataclasses.replace(block, timestamp_ms=block.timestamp_ms - 1)
    with pytest.raises(BatchError, match="decreases"):
        encode_batch(_one_block(blocks=(block, earlier)))
    with pytest.raises(BatchError, match="32 bytes"):
        encode_batch(_one_block(parent_hash=b"\x01"))


# ---- what cannot be decoded ----


@pytest.fixture(scope="module")
def sample() -> bytes:
    raws = workload("erc20", 5) + workload("native", 5)
    legacy = build_tx(0x00, CHAIN_ID, Fields())
    unprotected = build_tx(0x80, CHAIN_ID, Fields(to=b""))
    with_list = build_tx(0x01, CHAIN_ID, Fields(access_list=((b"\x02" * 20, (b"\x03" * 32,)),)))
    return encode_batch(as_batch([*raws, legacy, unprotected, with_list], per_block=3))


def test_every_truncation_is_rejected(sample: bytes) -> None:
    for cut in range(len(sample)):
        with pytest.raises(BatchError):
            decode_batch(sample[:cut])


def test_trailing_bytes_and_unknown_version_are_rejected(sample: bytes) -> None:
    with pytest.raises(BatchError, match="trailing"):
        decode_batch(sample + b"\x00")
    with pytest.raises(BatchError, match="version"):
        decode_batch(b"\x01" + sample[1:])


def test_unknown_kind_and_bad_padding_are_rejected() -> None:
    batch = _one_block((workload("native", 1)[0],))
    data = encode_batch(batch)
    kind_at = len(encode_batch(_one_block()))  # the tx columns start where an empty block ends
    assert data[kind_at] == 0x02
    with pytest.raises(BatchError, match="unknown kind"):
        decode_batch(data[:kind_at] + b"\x03" + data[kind_at + 1 :])
    parity_bits = data[kind_at + 1] | 0x02  # bit 1 is padding when there is one transaction
    with pytest.raises(BatchError, match="padding"):
        decode_batch(data[: kind_at + 1] + bytes((parity_bits,)) + data[kind_at + 2 :])


def test_non_canonical_varint_is_rejected() -> None:
    data = encode_batch(_one_block())
    chain = _uvarint(CHAIN_ID)  # right after the version byte
    assert data[1 : 1 + len(chain)] == chain
    padded = chain[:-1] + bytes((chain[-1] | 0x80, 0x00))
    with pytest.raises(BatchError, match="non-canonical"):
        decode_batch(data[:1] + padded + data[1 + len(chain) :])


def test_block_count_limits() -> None:
    data = encode_batch(_one_block())
    count_at = 1 + len(_uvarint(CHAIN_ID)) + 1  # version, chain id, first number (1)
    for count in (0, MAX_BATCH_BLOCKS + 1):
        bad = data[:count_at] + _uvarint(count) + data[count_at + 1 :]
        with pytest.raises(BatchError, match="1 to"):
            decode_batch(bad)


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@given(st.data())
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
def test_mutations_are_rejected_or_canonical(sample: bytes, data: st.DataObject) -> None:
    """Any bytes either fail with BatchError or are the unique encoding of what they decode to."""
    mutated = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] = data.draw(st.integers(0, 255))
    try:
        batch = decode_batch(bytes(mutated))
    except BatchError:
        return
    assert encode_batch(batch) == bytes(mutated)
