"""The verifier's decode path (`decode_batch_for_replay`, `PostedTx`) builds exactly what
`rollup.transactions` decodes, for every transaction type; inbound cross-app messages travel
in the batch."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from coincurve import PrivateKey
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from da.batch import (
    Batch,
    BatchBlock,
    batch_from_blocks,
    decode_batch,
    decode_batch_for_replay,
    encode_batch,
    encode_blocks,
)
from da.errors import BatchError
from rollup import rlp
from rollup.crypto import keccak, recover_address
from rollup.genesis import DEV_KEYS
from rollup.messages import CALL, RESULT, CrossMessage, encode_message
from rollup.rlp import encode_int
from rollup.transactions import decode_transaction, decode_unsigned, signing_hash
from rollup.types import ZERO_HASH, Address, Hash32
from sequencer.harness import LocalChain

CHAIN_ID = 901001
TO = "0x" + "11" * 20
U256 = 2**256 - 1


def _batch(*raws: bytes, inbound: tuple[CrossMessage, ...] = ()) -> Batch:
    block = BatchBlock(
        1_700_000_000_000, 1_700_000_000, 0, Address(b"\x02" * 20), 30_000_000, 10**9, raws, inbound
    )
    return Batch(
        CHAIN_ID, 1, Hash32(b"\x01" * 32), (block,), Hash32(b"\x03" * 32), Hash32(b"\x04" * 32)
    )


def _unprotected(key: str) -> bytes:
    """A legacy transaction without a chain id (v = 27 | 28), signed by hand."""
    fields: list[rlp.RLPItem] = [
        encode_int(3),
        encode_int(10**9),
        encode_int(21_000),
        bytes.fromhex(TO[2:]),
        encode_int(5),
        b"",
    ]
    signature = PrivateKey(bytes.fromhex(key[2:])).sign_recoverable(
        keccak(rlp.encode(fields)), hasher=None
    )
    r, s = (int.from_bytes(signature[i : i + 32], "big") for i in (0, 32))
    return rlp.encode([*fields, encode_int(27 + signature[64]), encode_int(r), encode_int(s)])


def _signed() -> list[bytes]:
    base = {"chainId": CHAIN_ID, "nonce": 7, "to": TO, "value": 10**15, "gas": 100_000}
    access = [{"address": TO, "storageKeys": ["0x" + "22" * 32]}]
    txs = [
        dict(base, gasPrice=10**9),
        dict(base, type=1, gasPrice=10**9, accessList=access, data="0x1234"),
        dict(base, type=2, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=10**8),
        dict(base, type=2, maxFeePerGas=2 * 10**9, maxPriorityFeePerGas=0, accessList=access),
        {
            k: v
            for k, v in dict(
                base, type=2, maxFeePerGas=10**9, maxPriorityFeePerGas=0, data="0x6000"
            ).items()
            if k != "to"
        },  # a creation
    ]
    raws = [bytes(Account.sign_transaction(tx, DEV_KEYS[1]).raw_transaction) for tx in txs]
    return [*raws, _unprotected(DEV_KEYS[2])]


def test_replay_transactions_equal_the_decoder_s_for_every_type() -> None:
    raws = _signed()
    batch, posted = decode_batch_for_replay(encode_batch(_batch(*raws)))
    assert batch == decode_batch(encode_batch(_batch(*raws)))
    for raw, item in zip(raws, posted, strict=True):
        expected = decode_transaction(raw, CHAIN_ID, allow_unprotected=True)
        assert item.raw == raw and keccak(item.unsigned) == signing_hash(raw)
        sender = recover_address(keccak(item.unsigned), item.y_parity, item.fields.r, item.fields.s)
        assert sender == expected.sender
        assert item.transaction(CHAIN_ID, Address(sender)) == expected


@st.composite
def _fields(draw: st.DrawFn) -> bytes:
    """A raw transaction of any kind with arbitrary fields (the signature need not recover)."""
    kind = draw(st.sampled_from([0, 1, 2, 0x80]))
    nonce, gas = draw(st.integers(0, 2**64 - 1)), draw(st.integers(0, 2**64 - 1))
    fee, tip, value = (draw(st.integers(0, U256)) for _ in range(3))
    to = draw(st.sampled_from([b"", b"\x00" * 20, b"\x07" * 20]))
    data = draw(st.binary(max_size=40))
    parity, r, s = draw(st.integers(0, 1)), draw(st.integers(0, U256)), draw(st.integers(0, U256))
    common: list[rlp.RLPItem] = [encode_int(gas), to, encode_int(value), data]
    sig: list[rlp.RLPItem] = [encode_int(r), encode_int(s)]
    if kind in (0, 0x80):
        v = CHAIN_ID * 2 + 35 + parity if kind == 0 else 27 + parity
        return rlp.encode([encode_int(nonce), encode_int(fee), *common, encode_int(v), *sig])
    fees = [encode_int(tip), encode_int(fee)] if kind == 2 else [encode_int(fee)]
    access: list[rlp.RLPItem] = [[b"\x05" * 20, [b"\x06" * 32]]] if draw(st.booleans()) else []
    body = [encode_int(CHAIN_ID), encode_int(nonce), *fees, *common, access, encode_int(parity)]
    return bytes((kind,)) + rlp.encode([*body, *sig])


@given(st.lists(_fields(), min_size=1, max_size=5))
@settings(max_examples=200, deadline=None)
def test_replay_fields_equal_the_decoder_s(raws: list[bytes]) -> None:
    sender = Address(b"\x09" * 20)
    _batch_, posted = decode_batch_for_replay(encode_batch(_batch(*raws)))
    for raw, item in zip(raws, posted, strict=True):
        assert item.transaction(CHAIN_ID, sender) == decode_unsigned(raw, sender)
        assert keccak(item.unsigned) == signing_hash(raw)


def _call(nonce: int) -> CrossMessage:
    return CrossMessage(
        src_chain=7,
        src_block=3,
        src_index=nonce,
        channel_nonce=nonce,
        dst_chain=CHAIN_ID,
        sender=Address(b"\x0a" * 20),
        target=Address(b"\x0b" * 20),
        kind=CALL,
        value=5,
        gas=50_000,
        expiry=2**40,
        reply=True,
        data=b"\x12\x34",
    )


def test_inbound_messages_travel_in_the_batch() -> None:
    result = CrossMessage(
        src_chain=8,
        src_block=9,
        src_index=0,
        channel_nonce=4,
        dst_chain=CHAIN_ID,
        sender=Address(b"\x0c" * 20),
        target=Address(b"\x0d" * 20),
        kind=RESULT,
        ref_id=Hash32(b"\x0e" * 32),
        success=True,
        data=b"ok",
    )
    batch = _batch(*_signed()[:2], inbound=(_call(0), _call(1), result))
    second = BatchBlock(
        1_700_000_000_500,
        1_700_000_000,
        0,
        Address(b"\x02" * 20),
        30_000_000,
        10**9,
        (),
        (_call(2),),
    )
    batch = dataclasses.replace(batch, blocks=(*batch.blocks, second))
    decoded = decode_batch(encode_batch(batch))
    assert decoded == batch
    assert [m.id for m in decoded.blocks[0].inbound] == [m.id for m in batch.blocks[0].inbound]
    assert decoded.blocks[0].inbound[2].ref_id != ZERO_HASH


def test_a_malformed_inbound_message_is_rejected() -> None:
    encoded = encode_batch(_batch(inbound=(_call(0),)))
    message = encode_message(_call(0))
    at = encoded.rindex(message)
    broken = encoded[:at] + b"\xc0" + encoded[at + 1 :]  # the message's list header, mangled
    with pytest.raises(BatchError, match="inbound message 0"):
        decode_batch(broken)


def test_the_poster_s_encoding_of_decoded_blocks_is_the_batch_encoding(token_app: Path) -> None:
    with LocalChain.from_dir(token_app) as chain:
        base = {"chainId": chain.node.chain_id, "to": TO, "value": 1, "gas": 30_000}
        access = [{"address": TO, "storageKeys": ["0x" + "22" * 32]}]
        for index, fields in enumerate(
            [
                {"gasPrice": 2 * 10**9},
                {"type": 1, "gasPrice": 2 * 10**9, "accessList": access},
                {"type": 2, "maxFeePerGas": 2 * 10**9, "maxPriorityFeePerGas": 10**8},
            ]
        ):
            tx = dict(base, nonce=0, **fields)
            signed = Account.sign_transaction(tx, DEV_KEYS[index])
            chain.node.submit_raw(bytes(signed.raw_transaction))
        assert chain.node.produce(1_800_000_000_000) is not None
        blocks = [chain.node.block(1)]
        assert {tx.tx_type for tx in blocks[0].transactions} == {0, 1, 2}
        expected = encode_batch(batch_from_blocks(chain.node.chain_id, blocks))
        assert encode_blocks(chain.node.chain_id, blocks) == expected
