"""The cross-app message codec: round trips, the id, and strict rejection of bad encodings."""

from __future__ import annotations

import pytest
from eth_abi.packed import encode_packed
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup import rlp
from rollup.blocks import (
    BlockBody,
    block_hash,
    decode_block_body,
    decode_block_receipts,
    encode_block_body,
    encode_block_receipts,
    encode_receipt,
    header_digest,
    header_signer,
    messages_root,
    outbound_leaf,
    sign_header,
)
from rollup.crypto import EMPTY_KECCAK, keccak, key_address
from rollup.errors import MalformedMessage
from rollup.merkle import (
    merkle_levels,
    merkle_multiproof,
    merkle_proof,
    merkle_root,
    multiproof_root,
    verify_proof,
)
from rollup.messages import (
    CALL,
    MAX_CALL_GAS,
    MAX_DATA,
    RESULT,
    CrossMessage,
    decode_message,
    encode_message,
    remote_address,
)
from rollup.types import ZERO_HASH, Address, Block, BlockHeader, Hash32, Receipt

A = Address(b"\x11" * 20)
B = Address(b"\x22" * 20)

chains = st.integers(1, 2**53 - 1)
u64 = st.integers(0, 2**64 - 1)


@st.composite
def messages(draw: st.DrawFn) -> CrossMessage:
    src, dst = draw(chains), draw(chains)
    if src == dst:
        dst = src + 1 if src < 2**53 - 1 else src - 1
    head = (
        src,
        draw(u64),
        draw(u64),
        draw(u64),
        dst,
        Address(draw(st.binary(min_size=20, max_size=20))),
        Address(draw(st.binary(min_size=20, max_size=20))),
    )
    data = draw(st.binary(max_size=300))
    if draw(st.booleans()):
        return CrossMessage(
            *head,
            CALL,
            draw(st.integers(0, 2**256 - 1)),
            draw(st.integers(0, MAX_CALL_GAS)),
            draw(u64),
            draw(st.booleans()),
            data,
        )
    ref = Hash32(draw(st.binary(min_size=32, max_size=32)))
    return CrossMessage(*head, RESULT, data=data, ref_id=ref, success=draw(st.booleans()))


@settings(max_examples=300, deadline=None)
@given(messages())
def test_encode_decode_round_trip(message: CrossMessage) -> None:
    decoded = decode_message(encode_message(message))
    assert decoded == message
    assert decoded.id == message.id


def test_id_is_solidity_encode_packed() -> None:
    m = CrossMessage(901001, 7, 3, 42, 901002, A, B, CALL, 5, 100_000, 1_700_000_000, True, b"hi")
    packed = encode_packed(
        ["uint8", "uint64", "uint64", "uint64", "uint64", "address", "address", "bytes"],
        [1, 901001, 7, 42, 901002, "0x" + A.hex(), "0x" + B.hex(), m.payload],
    )
    assert m.id == keccak(packed)
    assert m.payload == encode_packed(
        ["uint8", "uint256", "uint64", "uint64", "bool", "bytes"],
        [0, 5, 100_000, 1_700_000_000, True, b"hi"],
    )
    result = CrossMessage(
        901002, 9, 0, 0, 901001, B, A, RESULT, data=b"r", ref_id=m.id, success=True
    )
    assert result.payload == encode_packed(
        ["uint8", "bytes32", "bool", "bytes"], [1, m.id, True, b"r"]
    )
    # src_index is where the message sits in its block, not part of what it is
    moved = CrossMessage(
        901001, 7, 9, 42, 901002, A, B, CALL, 5, 100_000, 1_700_000_000, True, b"hi"
    )
    assert moved.id == m.id and moved != m


def test_every_field_changes_the_id() -> None:
    base = dict(
        src_chain=1,
        src_block=2,
        src_index=0,
        channel_nonce=3,
        dst_chain=4,
        sender=A,
        target=B,
        kind=CALL,
        value=0,
        gas=1,
        expiry=9,
        reply=False,
        data=b"x",
    )
    ids = {CrossMessage(**base).id}  # type: ignore[arg-type]
    for name, other in [
        ("src_chain", 5),
        ("src_block", 6),
        ("channel_nonce", 7),
        ("dst_chain", 8),
        ("sender", B),
        ("target", A),
        ("value", 1),
        ("gas", 2),
        ("expiry", 10),
        ("reply", True),
        ("data", b"y"),
    ]:
        ids.add(CrossMessage(**{**base, name: other}).id)  # type: ignore[arg-type]
    assert len(ids) == 12


def test_kinds_keep_to_their_fields() -> None:
    with pytest.raises(ValueError, match="a result has no value"):
        CrossMessage(1, 1, 0, 0, 2, A, B, RESULT, value=1)
    with pytest.raises(ValueError, match="a call has no ref_id"):
        CrossMessage(1, 1, 0, 0, 2, A, B, CALL, success=True)
    with pytest.raises(ValueError, match="unknown message kind"):
        CrossMessage(1, 1, 0, 0, 2, A, B, 7)


GOOD = CrossMessage(1, 1, 0, 0, 2, A, B, CALL, 0, 10, 99, False, b"")


def _with(index: int, value: rlp.RLPItem) -> bytes:
    items = rlp.decode(encode_message(GOOD))
    assert isinstance(items, list)
    items[index] = value
    return rlp.encode(items)


@pytest.mark.parametrize(
    ("data", "error"),
    [
        (b"\xc0", "expected a list of 8 items, got 0"),
        (b"\x83abc", "expected input list"),
        (encode_message(GOOD) + b"\x00", "more than one value"),
        (_with(0, b""), "src_chain is 0"),
        (_with(0, (2**53).to_bytes(7, "big")), "src_chain 9007199254740992 is out of range"),
        (_with(4, b"\x01"), "source and destination chain are the same"),
        (_with(2, b"\x00\x01"), "non-canonical integer"),
        (_with(3, b"\x01" + bytes(8)), "channel_nonce .* is out of range"),
        (_with(5, b"\x11" * 19), "sender is 19 bytes, not an address"),
        (_with(6, [b"x"]), "expected input string"),
        (_with(7, b""), r"unknown message kind \(empty\)"),
        (_with(7, b"\x02" + bytes(60)), "unknown message kind 02"),
        (_with(7, b"\x00" + bytes(48)), "call payload of 49 bytes is shorter than its header"),
        (_with(7, b"\x00" + bytes(48) + b"\x02"), "reply must be 0 or 1"),
        (
            _with(7, b"\x00" + bytes(32) + (MAX_CALL_GAS + 1).to_bytes(8, "big") + bytes(9)),
            "gas .* is out of range",
        ),
        (_with(7, b"\x00" + bytes(49) + b"x" * (MAX_DATA + 1)), "exceeds"),
        (_with(7, b"\x01" + bytes(32)), "result payload of 33 bytes is shorter"),
        (_with(7, b"\x01" + bytes(32) + b"\x05"), "success must be 0 or 1"),
        (b"\xf9" + b"\xff" * 200_000, "exceeds"),
    ],
)
def test_malformed_messages_are_rejected_with_a_reason(data: bytes, error: str) -> None:
    with pytest.raises(MalformedMessage, match=error):
        decode_message(data)


def test_remote_address_is_per_chain_and_sender() -> None:
    assert remote_address(1, A) != remote_address(2, A) != remote_address(1, B)
    assert remote_address(1, A) == keccak(b"app-rollup:remote:" + (1).to_bytes(8, "big") + A)[12:]


def _header() -> BlockHeader:
    return BlockHeader(
        1,
        ZERO_HASH,
        0,
        0,
        A,
        ZERO_HASH,
        ZERO_HASH,
        ZERO_HASH,
        ZERO_HASH,
        ZERO_HASH,
        bytes(256),
        1,
        0,
        0,
        0,
        1,
    )


def test_block_without_messages_is_stored_as_before() -> None:
    block = Block(_header(), ZERO_HASH, (), ())
    assert encode_block_body(block) == rlp.encode([])
    assert encode_block_receipts(block) == rlp.encode([])
    assert messages_root([]) == EMPTY_KECCAK


def test_block_with_messages_round_trips_and_proves_its_outbound() -> None:
    out = [CrossMessage(1, 1, i, i, 2, A, B, CALL, 0, 10, 99, False, b"o%d" % i) for i in range(3)]
    inbound = (CrossMessage(2, 5, 0, 0, 1, B, A, RESULT, data=b"r", ref_id=Hash32(b"\x01" * 32)),)
    receipt = Receipt(1, 44, 44, 0, (), None, b"ok")
    block = Block(_header(), ZERO_HASH, (), (), inbound, (receipt,), tuple(out))
    assert decode_block_body(encode_block_body(block), 1) == BlockBody((), inbound, tuple(out))
    assert decode_block_receipts(encode_block_receipts(block)) == ((), (receipt,), ())
    root = messages_root(out, inbound, (receipt,))
    leaves = [outbound_leaf(m) for m in out]
    leaves.append(b"\x01" + rlp.encode([encode_message(inbound[0]), encode_receipt(receipt)]))
    for m in out:
        assert verify_proof(root, outbound_leaf(m), merkle_proof(leaves, m.src_index))
    assert not verify_proof(root, outbound_leaf(out[0]), merkle_proof(leaves, 1))
    assert root != messages_root(out)


# ---- multiproofs and signed headers ------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.data())
def test_a_multiproof_of_any_leaves_rebuilds_the_root(count: int, data: st.DataObject) -> None:
    leaves = [b"leaf%d" % i for i in range(count)]
    levels = merkle_levels(leaves)
    indices = sorted(data.draw(st.sets(st.integers(0, count - 1), min_size=1)))
    proof = merkle_multiproof(levels, indices)
    assert len(proof) <= 32 * len(indices)
    shown = [(i, leaves[i]) for i in indices]
    assert multiproof_root(count, shown, proof) == merkle_root(leaves)
    # another leaf's data, a shifted index, a proof hash too many or too few: not the root
    forged = [(shown[0][0], b"forged"), *shown[1:]]
    assert multiproof_root(count, forged, proof) != merkle_root(leaves)
    assert multiproof_root(count, shown, [*proof, bytes(32)]) is None
    if proof:
        assert multiproof_root(count, shown, proof[:-1]) is None
    if indices[-1] + 1 < count and len(indices) == 1 and count > 1:
        moved = [(indices[0] + 1, leaves[indices[0]])]
        assert multiproof_root(count, moved, proof) != merkle_root(leaves)


def test_multiproof_root_refuses_bad_shapes() -> None:
    leaves = [b"a", b"b", b"c"]
    proof = merkle_multiproof(merkle_levels(leaves), [0])
    assert multiproof_root(3, [], proof) is None  # no leaves
    assert multiproof_root(0, [(0, b"a")], proof) is None  # no tree
    assert multiproof_root(3, [(3, b"a")], proof) is None  # index past the end
    assert multiproof_root(3, [(1, b"b"), (1, b"b")], proof) is None  # repeated index
    assert multiproof_root(3, [(1, b"b"), (0, b"a")], proof) is None  # not ascending
    assert multiproof_root(2**32 + 1, [(0, b"a")], proof) is None  # too deep


def test_a_signed_header_names_its_signer_and_nothing_else() -> None:
    key, other = b"\x01" * 32, b"\x02" * 32
    header = _header()
    signature = sign_header(key, header)
    assert signature == sign_header(key, header)  # deterministic (RFC 6979)
    hash_ = block_hash(header)
    assert header_signer(header.chain_id, hash_, signature) == key_address(key)
    assert header_signer(header.chain_id, hash_, sign_header(other, header)) == key_address(other)
    assert header_signer(header.chain_id + 1, hash_, signature) != key_address(key)
    assert header_signer(header.chain_id, keccak(hash_), signature) != key_address(key)
    assert header_signer(header.chain_id, hash_, bytes(65)) is None
    assert header_digest(header.chain_id, hash_) != hash_  # domain-separated
