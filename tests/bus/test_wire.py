"""Bus frames: round trips, every rule a frame can break, and who may have signed it."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup import rlp
from rollup.blocks import block_hash, encode_header, message_leaves, messages_root, sign_header
from rollup.crypto import key_address, sign_digest
from rollup.merkle import merkle_levels, merkle_multiproof
from rollup.messages import CALL, CrossMessage, encode_message
from rollup.rlp import encode_int
from rollup.types import ZERO_HASH, Address, BlockHeader, Hash32
from services.bus.transport import BusConfigError
from services.bus.trust import FrameAuthenticator, StaticTrust, parse_sequencers
from services.bus.wire import (
    HELLO,
    MAX_FRAME,
    MESSAGES,
    PROGRESS,
    VERSION,
    BlockMessages,
    Frame,
    FrameRejected,
    control_digest,
    decode_frame,
    hello_frame,
    messages_frame,
    progress_frame,
)

SRC, DST, OTHER = 101, 202, 303
KEY, WRONG = b"\x01" * 32, b"\x02" * 32
A = Address(b"\x11" * 20)


def header(number: int, root: bytes, chain: int = SRC) -> BlockHeader:
    return BlockHeader(
        number=number,
        parent_hash=ZERO_HASH,
        timestamp=0,
        timestamp_ms=0,
        coinbase=A,
        state_root=ZERO_HASH,
        transactions_root=ZERO_HASH,
        receipts_root=ZERO_HASH,
        messages_root=Hash32(root),
        withdrawals_root=ZERO_HASH,
        logs_bloom=bytes(256),
        gas_limit=1,
        gas_used=0,
        base_fee=0,
        l1_origin=0,
        chain_id=chain,
    )


def block(
    number: int, first_nonce: int, count: int, others: int = 2, key: bytes = KEY
) -> BlockMessages:
    """Block `number` of SRC: `count` messages to DST (nonces from `first_nonce`) interleaved
    with `others` to OTHER; what SRC's node would send DST."""
    outbound: list[CrossMessage] = []
    nonce = first_nonce
    for i in range(count + others):
        to_dst = i % 2 == 0 and nonce < first_nonce + count or i >= 2 * others
        if to_dst and nonce < first_nonce + count:
            outbound.append(
                CrossMessage(
                    SRC, number, i, nonce, DST, A, A, CALL, 5, 10, 99, False, b"m%d" % nonce
                )
            )
            nonce += 1
        else:
            outbound.append(CrossMessage(SRC, number, i, i, OTHER, A, A, CALL, 0, 1, 9, False))
    h = header(number, messages_root(outbound))
    mine = [m for m in outbound if m.dst_chain == DST]
    levels = merkle_levels(message_leaves(outbound))
    proof = merkle_multiproof(levels, [m.src_index for m in mine])
    return BlockMessages(
        h, sign_header(key, h), len(outbound), tuple(mine), tuple(proof), block_hash(h)
    )


def frame_of(*blocks: BlockMessages) -> bytes:
    return messages_frame(SRC, DST, blocks)


# ---- round trips -------------------------------------------------------------------------------


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(0, 5)), min_size=1, max_size=4))
def test_messages_frame_round_trip(shapes: list[tuple[int, int]]) -> None:
    blocks, nonce = [], 7
    for number, (count, others) in enumerate(shapes, start=3):
        blocks.append(block(number, nonce, count, others))
        nonce += count
    frame = decode_frame(frame_of(*blocks))
    assert (frame.kind, frame.chain, frame.dst) == (MESSAGES, SRC, DST)
    assert frame.blocks == tuple(blocks)
    assert [m.channel_nonce for m in frame.messages] == list(range(7, nonce))


def test_control_frames_round_trip() -> None:
    hello = decode_frame(hello_frame(KEY, SRC, DST))
    assert (hello.kind, hello.chain, hello.dst) == (HELLO, SRC, DST)
    progress = decode_frame(progress_frame(KEY, DST, SRC, 2**64 - 1))
    assert (progress.kind, progress.chain, progress.dst, progress.next_nonce) == (
        PROGRESS,
        DST,
        SRC,
        2**64 - 1,
    )


# ---- every rule --------------------------------------------------------------------------------


def _body(kind: int, body: rlp.RLPItem) -> bytes:
    return bytes((VERSION, kind)) + rlp.encode(body)


def _block_item(b: BlockMessages, **change: object) -> list[rlp.RLPItem]:
    item: dict[str, object] = {
        "header": encode_header(b.header),
        "signature": b.signature,
        "count": encode_int(b.leaf_count),
        "messages": [encode_message(m) for m in b.messages],
        "proof": list(b.proof),
    }
    item.update(change)
    return list(item.values())  # type: ignore[arg-type]


def _messages_body(*items: rlp.RLPItem, src: int = SRC, dst: int = DST) -> bytes:
    return _body(MESSAGES, [encode_int(src), encode_int(dst), list(items)])


def _uncanonical(h: BlockHeader) -> bytes:
    """The header with its number as 0x00 0x03: the same value, not the bytes that were signed."""
    raw = encode_header(h)
    items = rlp.as_list(rlp.decode(raw))
    items[1] = b"\x00" + rlp.as_bytes(items[1])
    return rlp.encode(items)


GOOD = block(3, 0, 3)
NEXT = block(4, 3, 2)

REJECTIONS: list[tuple[str, Callable[[], bytes]]] = [
    ("size", lambda: b"\x02\x01"),
    ("size", lambda: bytes((VERSION, MESSAGES)) + bytes(MAX_FRAME)),
    ("version", lambda: b"\x01" + frame_of(GOOD)[1:]),
    ("kind", lambda: bytes((VERSION, 9)) + b"\xc0"),
    ("rlp", lambda: bytes((VERSION, MESSAGES)) + b"\xc2\x01"),
    ("rlp", lambda: _body(HELLO, [encode_int(SRC), encode_int(DST)])),  # a field missing
    ("chain", lambda: _body(HELLO, [encode_int(0), encode_int(DST), bytes(65)])),
    ("chain", lambda: _body(HELLO, [encode_int(2**53), encode_int(DST), bytes(65)])),
    ("chain", lambda: _body(HELLO, [encode_int(DST), encode_int(DST), bytes(65)])),
    ("nonce", lambda: _body(PROGRESS, [encode_int(SRC), encode_int(DST), bytes(9), bytes(65)])),
    ("signature", lambda: _body(HELLO, [encode_int(SRC), encode_int(DST), bytes(64)])),
    ("signature", lambda: _messages_body(_block_item(GOOD, signature=bytes(3)))),
    ("empty", lambda: _messages_body()),
    ("empty", lambda: _messages_body(_block_item(GOOD, messages=[], proof=[]))),
    ("header", lambda: _messages_body(_block_item(GOOD, header=b"\x00" * 3000))),
    ("header", lambda: _messages_body(_block_item(GOOD, header=b"\xc0"))),
    ("header", lambda: _messages_body(_block_item(GOOD, header=_uncanonical(GOOD.header)))),
    (
        "header",
        lambda: _messages_body(
            _block_item(
                GOOD, header=encode_header(dataclasses.replace(GOOD.header, chain_id=OTHER))
            )
        ),
    ),
    ("header", lambda: _messages_body(_block_item(NEXT), _block_item(GOOD))),  # descending
    ("proof", lambda: _messages_body(_block_item(GOOD, proof=[b"\x00" * 31]))),
    ("proof", lambda: _messages_body(_block_item(GOOD, proof=[bytes(32)] * 200))),
    ("proof", lambda: _messages_body(_block_item(GOOD, proof=[]))),
    ("proof", lambda: _messages_body(_block_item(GOOD, count=encode_int(GOOD.leaf_count + 1)))),
    (
        "proof",
        lambda: _messages_body(
            _block_item(
                GOOD,
                messages=[
                    encode_message(dataclasses.replace(GOOD.messages[0], value=10**24)),
                    *[encode_message(m) for m in GOOD.messages[1:]],
                ],
            )
        ),
    ),  # a message not under the root
    ("channel", lambda: _messages_body(_block_item(GOOD), dst=OTHER)),
    (
        "block",
        lambda: _messages_body(
            _block_item(GOOD, header=encode_header(dataclasses.replace(GOOD.header, number=9)))
        ),
    ),
    ("nonces", lambda: _messages_body(_block_item(GOOD), _block_item(block(4, 4, 2)))),
    (
        "nonces",
        lambda: _messages_body(
            _block_item(GOOD, messages=[encode_message(m) for m in reversed(GOOD.messages)])
        ),
    ),
    ("message", lambda: _messages_body(_block_item(GOOD, messages=[b"\xc0"]))),
]


@pytest.mark.parametrize(("rule", "make"), REJECTIONS, ids=[r for r, _ in REJECTIONS])
def test_every_broken_rule_rejects_the_frame_whole(rule: str, make: Callable[[], bytes]) -> None:
    with pytest.raises(FrameRejected) as caught:
        decode_frame(make())
    assert caught.value.rule == rule, caught.value


def test_the_good_frames_behind_the_rejections_decode() -> None:
    assert decode_frame(_messages_body(_block_item(GOOD), _block_item(NEXT))).messages == (
        GOOD.messages + NEXT.messages
    )


# ---- who signed it -----------------------------------------------------------------------------


def authenticator() -> FrameAuthenticator:
    return FrameAuthenticator(StaticTrust({SRC: key_address(KEY), DST: key_address(KEY)}))


def test_signed_frames_pass() -> None:
    auth = authenticator()
    auth.check(decode_frame(frame_of(GOOD, NEXT)))
    auth.check(decode_frame(hello_frame(KEY, SRC, DST)))
    auth.check(decode_frame(progress_frame(KEY, DST, SRC, 5)))


@pytest.mark.parametrize(
    "frame",
    [
        frame_of(block(3, 0, 3, key=WRONG)),  # the right header, signed by another key
        frame_of(dataclasses.replace(GOOD, signature=bytes(65))),  # no valid signature
        frame_of(GOOD, dataclasses.replace(NEXT, signature=GOOD.signature)),  # another block's
        hello_frame(WRONG, SRC, DST),
        progress_frame(WRONG, DST, SRC, 5),
    ],
    ids=["wrong-key", "unsigned", "other-block", "hello", "progress"],
)
def test_frames_not_signed_by_the_source_are_rejected(frame: bytes) -> None:
    with pytest.raises(FrameRejected) as caught:
        authenticator().check(decode_frame(frame))
    assert caught.value.rule == "signature"


def test_a_signed_control_frame_cannot_move_to_another_channel_or_value() -> None:
    signed = decode_frame(progress_frame(KEY, DST, SRC, 5))
    auth = authenticator()
    forgeries = [
        dataclasses.replace(signed, dst=OTHER),
        dataclasses.replace(signed, next_nonce=6),
        dataclasses.replace(signed, kind=HELLO),
    ]
    for forged in forgeries:
        with pytest.raises(FrameRejected):
            auth.check(forged)
    assert control_digest(HELLO, SRC, DST) != control_digest(PROGRESS, SRC, DST)


def test_frames_from_unlisted_chains_are_rejected() -> None:
    auth = FrameAuthenticator(StaticTrust({DST: key_address(KEY)}))
    with pytest.raises(FrameRejected) as caught:
        auth.check(decode_frame(frame_of(GOOD)))
    assert caught.value.rule == "unknown-chain"


def test_a_verified_header_is_checked_once_until_the_trust_changes() -> None:
    trust = StaticTrust({SRC: key_address(KEY)})
    auth = FrameAuthenticator(trust)
    auth.check(decode_frame(frame_of(GOOD)))
    unsigned = Frame(MESSAGES, SRC, DST, (dataclasses.replace(GOOD, signature=bytes(65)),))
    auth.check(unsigned)  # the header is known good: its signature is not looked at again
    trust.addresses[SRC], trust.generation = key_address(WRONG), 1  # a new key for SRC
    with pytest.raises(FrameRejected):
        auth.check(decode_frame(frame_of(GOOD)))


def test_sequencers_file_parsing() -> None:
    address = key_address(KEY)
    assert parse_sequencers(json.dumps({"101": "0x" + address.hex()})) == {101: address}
    zero = json.dumps({"0": "0x" + address.hex()})
    for bad in ("[]", '{"x": "0x00"}', zero, '{"1": "0x12"}', '{"1": 5}', "nope"):
        with pytest.raises(BusConfigError):
            parse_sequencers(bad)


def test_signatures_are_deterministic() -> None:
    digest = control_digest(PROGRESS, DST, SRC, 5)
    assert sign_digest(KEY, digest) == sign_digest(KEY, digest)
    assert progress_frame(KEY, DST, SRC, 5) == progress_frame(KEY, DST, SRC, 5)
