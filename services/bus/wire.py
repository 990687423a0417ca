"""Bus frames: what transports carry between the nodes of two chains.

    frame     = version(1) = 0x02 ++ kind(1) ++ body
    MESSAGES  = kind 0x01, body = rlp([src_chain, dst_chain, [block, ...]])
    block     = [header, signature, leaf_count, [message, ...], [hash, ...]]
                header     the source block's header (rollup.blocks.encode_header, canonical)
                signature  65 bytes: the source sequencer's `rollup.blocks.sign_header`
                leaf_count leaves of the header's messages_root
                messages   that block's outbound messages for dst_chain (a subset), each leaf
                           `src_index` of messages_root (rollup.messages.encode_message)
                hashes     their multiproof against messages_root (rollup.merkle)
    HELLO     = kind 0x02, body = rlp([src_chain, dst_chain, signature])
                "I am src_chain: tell me how far you have executed my messages"
    PROGRESS  = kind 0x03, body = rlp([src_chain, dst_chain, next_nonce, signature])
                "src_chain has executed, in a committed block, your messages below next_nonce"
    control signature = sign_digest(sender's sequencer key, keccak("app-rollup/bus-control/v1"
                        ++ kind(1) ++ u64(src_chain) ++ u64(dst_chain) ++ u64(next_nonce)))
                        (next_nonce 0 for HELLO): it names both ends, so it cannot be replayed
                        onto another channel or as the other kind

A MESSAGES frame carries one channel (src_chain -> dst_chain), its messages in consecutive
nonce order across its blocks, blocks in ascending number, each message of the block that
holds it (src_chain, src_block, dst_chain match). Decoding checks all of that and every
multiproof against its header's messages_root; what it cannot check is who signed: that
needs the source's key (services/bus/trust.py), and the receiver checks it before anything
of the frame reaches the node.

Limits: a frame at most MAX_FRAME bytes and MAX_FRAME_MESSAGES messages, at least one message
per block, a header at most MAX_HEADER bytes, leaf_count at most 2**32, at most 32 proof
hashes per message. A frame that breaks any rule is rejected whole with a FrameRejected naming
the rule (`rule`, a short word for counting and logging) and nothing of it reaches the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollup import rlp
from rollup.blocks import block_hash, decode_header, encode_header, outbound_leaf
from rollup.crypto import keccak, sign_digest
from rollup.errors import MalformedMessage
from rollup.merkle import MAX_LEAVES, multiproof_root
from rollup.messages import MAX_CHAIN_ID, CrossMessage, decode_message, encode_message
from rollup.rlp import decode_int, encode_int
from rollup.types import BlockHeader, Hash32

__all__ = [
    "VERSION",
    "MESSAGES",
    "HELLO",
    "PROGRESS",
    "MAX_FRAME",
    "MAX_FRAME_MESSAGES",
    "MAX_HEADER",
    "MAX_PROOF_PER_MESSAGE",
    "CONTROL_DOMAIN",
    "FrameRejected",
    "BlockMessages",
    "Frame",
    "decode_frame",
    "messages_frame",
    "hello_frame",
    "progress_frame",
    "control_digest",
    "frame_size",
]

VERSION = 2
MESSAGES, HELLO, PROGRESS = 1, 2, 3
MAX_FRAME = 16 * 1024 * 1024
MAX_FRAME_MESSAGES = 10_000
MAX_HEADER = 2048
MAX_PROOF_PER_MESSAGE = 32  # a tree of at most 2**32 leaves is 32 levels deep
SIGNATURE_SIZE = 65
CONTROL_DOMAIN = b"app-rollup/bus-control/v1"


class FrameRejected(MalformedMessage):
    """A bus frame the receiver refuses whole; `rule` names the rule it broke."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True, slots=True)
class BlockMessages:
    """Messages of one source block with what proves that block committed them."""

    header: BlockHeader
    signature: bytes
    leaf_count: int
    messages: tuple[CrossMessage, ...]
    proof: tuple[bytes, ...]
    hash: Hash32  # block_hash(header)


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    chain: int  # who sent it: the messages' source, the HELLO's or PROGRESS's sender
    dst: int  # whom it is for
    blocks: tuple[BlockMessages, ...] = ()  # MESSAGES only
    next_nonce: int = 0  # PROGRESS only
    signature: bytes = b""  # HELLO and PROGRESS

    @property
    def messages(self) -> tuple[CrossMessage, ...]:
        return tuple(m for block in self.blocks for m in block.messages)


# ---- encoding ----------------------------------------------------------------------------------


def _frame(kind: int, body: rlp.RLPItem) -> bytes:
    return bytes((VERSION, kind)) + rlp.encode(body)


def _block_item(block: BlockMessages) -> rlp.RLPItem:
    return [
        encode_header(block.header),
        block.signature,
        encode_int(block.leaf_count),
        [encode_message(m) for m in block.messages],
        list(block.proof),
    ]


def messages_frame(src_chain: int, dst_chain: int, blocks: Sequence[BlockMessages]) -> bytes:
    items: list[rlp.RLPItem] = [_block_item(b) for b in blocks]
    return _frame(MESSAGES, [encode_int(src_chain), encode_int(dst_chain), items])


def frame_size(block: BlockMessages) -> int:
    """About how many bytes `block` adds to a MESSAGES frame (for chunking)."""
    return (
        MAX_HEADER
        + SIGNATURE_SIZE
        + 16
        + 33 * len(block.proof)
        + sum(len(encode_message(m)) + 4 for m in block.messages)
    )


def control_digest(kind: int, src_chain: int, dst_chain: int, next_nonce: int = 0) -> bytes:
    return keccak(
        CONTROL_DOMAIN
        + bytes((kind,))
        + src_chain.to_bytes(8, "big")
        + dst_chain.to_bytes(8, "big")
        + next_nonce.to_bytes(8, "big")
    )


def hello_frame(key: bytes, src_chain: int, dst_chain: int) -> bytes:
    signature = sign_digest(key, control_digest(HELLO, src_chain, dst_chain))
    return _frame(HELLO, [encode_int(src_chain), encode_int(dst_chain), signature])


def progress_frame(key: bytes, src_chain: int, dst_chain: int, next_nonce: int) -> bytes:
    signature = sign_digest(key, control_digest(PROGRESS, src_chain, dst_chain, next_nonce))
    return _frame(
        PROGRESS, [encode_int(src_chain), encode_int(dst_chain), encode_int(next_nonce), signature]
    )


# ---- decoding ----------------------------------------------------------------------------------


def decode_frame(data: bytes) -> Frame:
    """Strict decoding; raises FrameRejected naming the first rule the frame breaks."""
    if len(data) > MAX_FRAME:
        raise FrameRejected("size", f"bus frame of {len(data)} bytes exceeds {MAX_FRAME}")
    if len(data) < 3:
        raise FrameRejected("size", "bus frame too short")
    if data[0] != VERSION:
        raise FrameRejected("version", f"bus frame version {data[0]} is not {VERSION}")
    kind = data[1]
    if kind not in (MESSAGES, HELLO, PROGRESS):
        raise FrameRejected("kind", f"unknown bus frame kind {kind}")
    try:
        body = rlp.as_list(rlp.decode(data[2:]))
        if kind == MESSAGES:
            return _messages(body)
        if kind == HELLO:
            src, dst, signature = _fields(body, 3)
            return Frame(HELLO, *_ends(src, dst), signature=_signature(signature))
        src, dst, nonce, signature = _fields(body, 4)
        return Frame(
            PROGRESS, *_ends(src, dst), next_nonce=_nonce(nonce), signature=_signature(signature)
        )
    except FrameRejected:
        raise
    except MalformedMessage as exc:  # a message inside that does not decode
        raise FrameRejected("message", str(exc)) from None
    except rlp.RLPError as exc:
        raise FrameRejected("rlp", f"bus frame is not valid RLP: {exc}") from None


def _fields(body: list[rlp.RLPItem], count: int) -> list[bytes]:
    return [rlp.as_bytes(x) for x in rlp.as_list(body, count)]


def _chain(raw: bytes) -> int:
    value = decode_int(raw)
    if not 1 <= value <= MAX_CHAIN_ID:
        raise FrameRejected("chain", f"bus frame chain id {value} is out of range")
    return value


def _ends(src_raw: bytes, dst_raw: bytes) -> tuple[int, int]:
    src, dst = _chain(src_raw), _chain(dst_raw)
    if src == dst:
        raise FrameRejected("chain", f"bus frame from chain {src} to itself")
    return src, dst


def _nonce(raw: bytes) -> int:
    if len(raw) > 8:
        raise FrameRejected("nonce", "bus frame nonce exceeds 64 bits")
    return decode_int(raw)


def _signature(raw: bytes) -> bytes:
    if len(raw) != SIGNATURE_SIZE:
        raise FrameRejected("signature", f"bus frame signature is {len(raw)} bytes, not 65")
    return raw


def _messages(body: list[rlp.RLPItem]) -> Frame:
    src_raw, dst_raw, items = rlp.as_list(body, 3)
    src, dst = _ends(rlp.as_bytes(src_raw), rlp.as_bytes(dst_raw))
    blocks: list[BlockMessages] = []
    count = 0
    for item in rlp.as_list(items):
        block = _block(src, dst, item, blocks[-1] if blocks else None, MAX_FRAME_MESSAGES - count)
        count += len(block.messages)
        blocks.append(block)
    if not blocks:
        raise FrameRejected("empty", "bus frame carries no messages")
    return Frame(MESSAGES, src, dst, tuple(blocks))


def _block(
    src: int, dst: int, item: rlp.RLPItem, previous: BlockMessages | None, room: int
) -> BlockMessages:
    header_raw, signature, count_raw, messages_raw, proof_raw = rlp.as_list(item, 5)
    header, hash_ = _header(src, rlp.as_bytes(header_raw), previous)
    encoded = rlp.as_list(messages_raw)
    if not encoded:
        raise FrameRejected("empty", f"bus frame names block {header.number} without messages")
    if len(encoded) > room:
        raise FrameRejected("size", f"bus frame holds over {MAX_FRAME_MESSAGES} messages")
    proof = tuple(rlp.as_bytes(h) for h in rlp.as_list(proof_raw))
    if len(proof) > MAX_PROOF_PER_MESSAGE * len(encoded) or any(len(h) != 32 for h in proof):
        raise FrameRejected("proof", f"bus frame proof of block {header.number} is malformed")
    leaf_count = decode_int(rlp.as_bytes(count_raw))
    expected = previous.messages[-1].channel_nonce + 1 if previous else None
    messages = tuple(decode_message(rlp.as_bytes(m)) for m in encoded)
    for m in messages:
        _check_message(m, src, dst, header.number, expected)
        expected = m.channel_nonce + 1
    leaves = [(m.src_index, outbound_leaf(m)) for m in messages]
    root = multiproof_root(leaf_count, leaves, list(proof)) if leaf_count <= MAX_LEAVES else None
    if root != header.messages_root:
        raise FrameRejected(
            "proof",
            f"bus frame messages are not under the messages root of "
            f"block {header.number} of chain {src}",
        )
    return BlockMessages(
        header, _signature(rlp.as_bytes(signature)), leaf_count, messages, proof, hash_
    )


def _header(src: int, raw: bytes, previous: BlockMessages | None) -> tuple[BlockHeader, Hash32]:
    if len(raw) > MAX_HEADER:
        raise FrameRejected("header", f"bus frame header of {len(raw)} bytes")
    try:
        header = decode_header(raw)
    except rlp.RLPError as exc:
        raise FrameRejected("header", f"bus frame header does not decode: {exc}") from None
    if encode_header(header) != raw:
        raise FrameRejected("header", "bus frame header is not canonical")
    if header.chain_id != src:
        raise FrameRejected(
            "header", f"bus frame from chain {src} has a header of chain {header.chain_id}"
        )
    if previous is not None and header.number <= previous.header.number:
        raise FrameRejected("header", "bus frame blocks are not in ascending order")
    return header, block_hash(header)


def _check_message(m: CrossMessage, src: int, dst: int, number: int, expected: int | None) -> None:
    if m.src_chain != src or m.dst_chain != dst:
        raise FrameRejected(
            "channel",
            f"bus frame of channel {src}->{dst} carries a message "
            f"of channel {m.src_chain}->{m.dst_chain}",
        )
    if m.src_block != number:
        raise FrameRejected(
            "block", f"bus frame message of block {m.src_block} is filed under block {number}"
        )
    if expected is not None and m.channel_nonce != expected:
        raise FrameRejected(
            "nonces",
            f"bus frame message {m.channel_nonce} breaks the nonce sequence (expected {expected})",
        )
