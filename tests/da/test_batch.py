"""The batch codec: round trips (outbound cross-app messages, L1 origin hashes and deposit
hashes included), canonical form, and strict rejection of malformed bytes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from da.batch import (
    BATCH_VERSION,
    MAX_BATCH_BLOCKS,
    MAX_BATCH_TXS,
    Batch,
    BatchBlock,
    decode_batch,
    encode_batch,
)
from da.compress import compress
from da.errors import BatchError
from da.measure import as_batch, workload
from rollup import rlp
from rollup.messages import CALL, MAX_CHAIN_ID, MAX_DATA, RESULT, CrossMessage, encode_message
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
def sent_messages(draw: st.DrawFn, chain_id: int, number: int) -> tuple[CrossMessage, ...]:
    """What a block of `chain_id` may have sent: calls and results, in place."""
    if not 1 <= chain_id <= MAX_CHAIN_ID:  # messages name chains below 2^53 only
        return ()
    out = []
    for index in range(draw(st.integers(0, 2))):
        dst = draw(st.integers(1, MAX_CHAIN_ID).filter(lambda c: c != chain_id))
        common = dict(
            src_chain=chain_id,
            src_block=number,
            src_index=index,
            channel_nonce=draw(st.integers(0, U64)),
            dst_chain=dst,
            sender=Address(draw(ADDRESSES)),
            target=Address(draw(ADDRESSES)),
            data=draw(st.binary(max_size=40)),
        )
        if draw(st.booleans()):
            out.append(
                CrossMessage(
                    **common,
                    kind=CALL,
                    value=draw(st.integers(0, U256)),
                    gas=draw(st.integers(0, 30_000_000)),
                    expiry=draw(st.integers(0, U64)),
                    reply=draw(st.booleans()),
                )
            )
        else:
            out.append(
                CrossMessage(
                    **common, kind=RESULT, ref_id=Hash32(draw(HASHES)), success=draw(st.booleans())
                )
            )
    return tuple(out)


HASHES = st.binary(min_size=32, max_size=32)


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    chain_id = draw(st.one_of(st.integers(0, U64), st.integers(1, 2_000_000)))
    count = draw(st.integers(1, 4))
    coinbases = [Address(draw(st.binary(min_size=20, max_size=20))) for _ in range(2)]
    blocks = []
    ms = draw(st.integers(0, 2**50))
    origin = draw(st.integers(0, 2**40))
    origin_hash = Hash32(draw(HASHES))
    first = draw(st.integers(0, 2**40))
    for i in range(count):
        ms += draw(st.integers(0, 5_000))
        step = draw(st.integers(0, 3))
        origin += step
        origin_hash = Hash32(draw(HASHES)) if step else origin_hash
        blocks.append(
            BatchBlock(
                timestamp_ms=ms,
                timestamp=max(0, ms // 1000 + draw(st.integers(-2, 2))),
                l1_origin=origin,
                coinbase=draw(st.sampled_from(coinbases)),
                gas_limit=draw(st.sampled_from([30_000_000, 60_000_000])),
                base_fee=draw(st.integers(0, U64)),
                transactions=tuple(draw(st.lists(raw_txs(chain_id), max_size=4))),
                outbound=draw(sent_messages(chain_id, first + i)),
                l1_origin_hash=origin_hash,
                deposits=tuple(Hash32(h) for h in draw(st.lists(HASHES, max_size=3))),
            )
        )
    hashes = [Hash32(draw(HASHES)) for _ in range(3)]
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
    return dataclasses.replace(
        Batch(CHAIN_ID, 1, Hash32(bytes(32)), (block,), Hash32(bytes(32)), Hash32(bytes(32))),
        **changes,
    )


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
    assert sample[0] == BATCH_VERSION == 0x02
    for version in (0x00, 0x01, 0x03, 0xFF):  # 0x00, 0x01: the formats before this one
        with pytest.raises(BatchError, match="version"):
            decode_batch(bytes((version,)) + sample[1:])


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
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
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


# ---- outbound messages ----


def _sent(number: int, index: int, **changes: Any) -> CrossMessage:
    fields: dict[str, Any] = dict(
        src_chain=CHAIN_ID,
        src_block=number,
        src_index=index,
        channel_nonce=index,
        dst_chain=902002,
        sender=Address(b"\x0a" * 20),
        target=Address(b"\x0b" * 20),
        kind=CALL,
        value=10**18,
        gas=100_000,
        expiry=2**40,
        reply=True,
        data=b"\x12\x34",
    )
    return CrossMessage(**(fields | changes))


def _sending(*per_block: tuple[CrossMessage, ...]) -> Batch:
    """Blocks 1.. of CHAIN_ID, sending `per_block` messages, the first block a transfer too."""
    batch = _one_block((workload("native", 1)[0],))
    block = batch.blocks[0]
    blocks = tuple(
        dataclasses.replace(block, transactions=block.transactions if i == 0 else (), outbound=sent)
        for i, sent in enumerate(per_block)
    )
    return dataclasses.replace(batch, blocks=blocks)


def test_outbound_messages_round_trip_in_place() -> None:
    batch = _sending(
        (
            _sent(1, 0),
            _sent(1, 1, kind=RESULT, value=0, gas=0, expiry=0, reply=False, success=True),
        ),
        (),
        (_sent(3, 0),),
    )
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert [[m.id for m in b.outbound] for b in decoded.blocks] == [
        [m.id for m in b.outbound] for b in batch.blocks
    ]
    assert [len(b.outbound) for b in decoded.blocks] == [2, 0, 1]


def test_a_block_without_messages_costs_one_byte_more_than_version_0() -> None:
    """The outbound count column: one zero byte a block, nothing else."""
    batch = _sending((), (), ())
    data = encode_batch(batch)
    with_one = encode_batch(_sending((), (_sent(2, 0),), ()))
    assert len(with_one) == len(data) + 1 + len(encode_message(_sent(2, 0)))


@pytest.mark.parametrize(
    "place", [dict(src_chain=CHAIN_ID + 1), dict(src_block=2), dict(src_index=1)]
)
def test_an_outbound_message_out_of_its_place_is_rejected(place: dict[str, int]) -> None:
    wrong = _sent(1, 0, **place)
    with pytest.raises(BatchError, match="not its place"):
        encode_batch(_sending((wrong,)))
    # the same bytes, written by hand where the right message was, do not decode either
    right = _sent(1, 0)
    data = encode_batch(_sending((right,)))
    at = data.rindex(encode_message(right))
    forged = encode_message(wrong)
    size = len(encode_message(right)).to_bytes(1, "big")
    assert data[at - 1 : at] == size and len(forged) == len(encode_message(right))
    with pytest.raises(BatchError, match="not its place"):
        decode_batch(data[:at] + forged + data[at + len(forged) :])


def test_outbound_message_limits_are_enforced() -> None:
    right = _sent(1, 0)
    data = encode_batch(_sending((right,)))
    at = data.rindex(encode_message(right))
    with pytest.raises(BatchError, match="outbound message 0"):  # not a message
        decode_batch(data[:at] + b"\xc0" + data[at + 1 :])
    too_big = _uvarint(MAX_DATA + 2048)
    with pytest.raises(BatchError, match="exceed"):  # longer than MAX_MESSAGE
        decode_batch(data[: at - 1] + too_big + data[at:])
    big = _sent(1, 0, data=b"\x00" * (MAX_DATA + 1))  # data the STF never sends
    with pytest.raises(BatchError, match="exceed"):
        encode_batch(_sending((big,)))


def test_outbound_count_limit_is_enforced() -> None:
    data = encode_batch(_sending(()))
    # the outbound count column of the one block is the last of the block columns: a zero
    # right before the origin hash (32 zero bytes) and the tx kinds column (0x02: EIP-1559)
    at = data.index(b"\x01\x00\x00\x00" + bytes(32) + b"\x02", 1 + 3 + 96) + 3
    assert data[at] == 0 and data[at + 33] == 0x02
    bad = data[:at] + _uvarint(MAX_BATCH_TXS + 1) + data[at + 1 :]
    with pytest.raises(BatchError, match="at most"):
        decode_batch(bad)
    with pytest.raises(BatchError, match="truncated"):  # a count the bytes do not hold
        decode_batch(data[:at] + b"\x01" + data[at + 1 :])


# ---- L1 origins and deposits ----


def _on_origins(*blocks: tuple[int, bytes, tuple[bytes, ...]]) -> Batch:
    """Blocks 1.. of CHAIN_ID, each (l1_origin, its hash, its deposit hashes)."""
    block = _one_block().blocks[0]
    made = tuple(
        dataclasses.replace(
            block,
            l1_origin=origin,
            l1_origin_hash=Hash32(origin_hash),
            deposits=tuple(Hash32(d) for d in deposits),
        )
        for origin, origin_hash, deposits in blocks
    )
    return dataclasses.replace(_one_block(), blocks=made)


H1, H2, D1, D2 = (bytes((i,)) * 32 for i in (0x11, 0x12, 0xD1, 0xD2))


def test_origin_hashes_and_deposits_round_trip() -> None:
    batch = _on_origins((7, H1, ()), (7, H1, (D1, D2)), (9, H2, ()), (9, H2, (D1,)))
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert [b.l1_origin_hash for b in decoded.blocks] == [H1, H1, H2, H2]
    assert [b.deposits for b in decoded.blocks] == [(), (D1, D2), (), (D1,)]


def test_an_origin_hash_is_posted_once_per_origin_and_a_deposit_costs_its_hash() -> None:
    """Blocks on the origin of the block before cost nothing for it; a deposit costs 32 bytes;
    a block without deposits one zero count byte."""
    one = len(encode_batch(_on_origins((7, H1, ()))))
    same = len(encode_batch(_on_origins((7, H1, ()), (7, H1, ()))))
    moved = len(encode_batch(_on_origins((7, H1, ()), (8, H2, ()))))
    assert moved == same + 32
    with_deposit = len(encode_batch(_on_origins((7, H1, ()), (7, H1, (D1,)))))
    assert with_deposit == same + 32
    assert same - one == 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1  # a block's eight column entries


def test_two_blocks_on_one_origin_with_two_hashes_cannot_be_encoded() -> None:
    with pytest.raises(BatchError, match="another hash"):
        encode_batch(_on_origins((7, H1, ()), (7, H2, ())))
    with pytest.raises(BatchError, match="32 bytes"):
        encode_batch(_on_origins((7, H1, (b"\x01",))))
    with pytest.raises(BatchError, match="decreases"):
        encode_batch(_on_origins((7, H1, ()), (6, H2, ())))


def test_a_deposit_count_the_bytes_do_not_hold_is_rejected() -> None:
    data = encode_batch(_on_origins((7, H1, (D1,))))
    at = data.index(b"\x00\x01\x00\x00" + H1)  # tx, deposit, inbound, outbound counts
    with pytest.raises(BatchError, match="truncated"):
        decode_batch(data[: at + 1] + b"\x02" + data[at + 2 :])
    with pytest.raises(BatchError, match="at most"):
        decode_batch(data[: at + 1] + _uvarint(MAX_BATCH_TXS + 1) + data[at + 2 :])
