"""Bus frames: what transports carry between the nodes of two chains.

    frame    = version(1) = 0x01 ++ kind(1) ++ body
    MESSAGES = kind 0x01, body = rlp([src_chain, [message, ...]])
               messages of one channel (src_chain -> the receiver), in nonce order
    HELLO    = kind 0x02, body = rlp([src_chain])
               "I am src_chain: tell me how far you have executed my messages"
    PROGRESS = kind 0x03, body = rlp([chain, next_nonce])
               "`chain` has executed, in a committed block, your messages below next_nonce"

Each message is `rollup.messages.encode_message`. Limits: a frame at most MAX_FRAME bytes and
MAX_FRAME_MESSAGES messages. A frame that breaks any rule is rejected whole with a
MalformedMessage naming the rule; nothing of it reaches the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rollup import rlp
from rollup.errors import MalformedMessage
from rollup.messages import MAX_CHAIN_ID, CrossMessage, decode_message, encode_message
from rollup.rlp import decode_int, encode_int

__all__ = [
    "MESSAGES",
    "HELLO",
    "PROGRESS",
    "MAX_FRAME",
    "MAX_FRAME_MESSAGES",
    "Frame",
    "decode_frame",
    "messages_frame",
    "encoded_messages_frame",
    "hello_frame",
    "progress_frame",
]

VERSION = 1
MESSAGES, HELLO, PROGRESS = 1, 2, 3
MAX_FRAME = 16 * 1024 * 1024
MAX_FRAME_MESSAGES = 10_000


@dataclass(frozen=True, slots=True)
class Frame:
    kind: int
    chain: int  # who sent it: the messages' source, the HELLO's sender, the PROGRESS's reporter
    messages: tuple[CrossMessage, ...] = ()
    next_nonce: int = 0  # PROGRESS only


def _frame(kind: int, body: rlp.RLPItem) -> bytes:
    return bytes((VERSION, kind)) + rlp.encode(body)


def messages_frame(src_chain: int, messages: Sequence[CrossMessage]) -> bytes:
    return encoded_messages_frame(src_chain, [encode_message(m) for m in messages])


def encoded_messages_frame(src_chain: int, encoded: Sequence[bytes]) -> bytes:
    """A MESSAGES frame of messages already encoded (as the outbox stores them)."""
    return _frame(MESSAGES, [encode_int(src_chain), list(encoded)])


def hello_frame(src_chain: int) -> bytes:
    return _frame(HELLO, [encode_int(src_chain)])


def progress_frame(chain: int, next_nonce: int) -> bytes:
    return _frame(PROGRESS, [encode_int(chain), encode_int(next_nonce)])


def decode_frame(data: bytes) -> Frame:
    """Strict decoding; raises MalformedMessage naming the first thing that is wrong."""
    if len(data) > MAX_FRAME:
        raise MalformedMessage(f"bus frame of {len(data)} bytes exceeds {MAX_FRAME}")
    if len(data) < 3:
        raise MalformedMessage("bus frame too short")
    if data[0] != VERSION:
        raise MalformedMessage(f"bus frame version {data[0]} is not {VERSION}")
    kind = data[1]
    try:
        body = rlp.as_list(rlp.decode(data[2:]))
        if kind == MESSAGES:
            return _messages(body)
        if kind == HELLO:
            (chain,) = _fields(body, 1)
            return Frame(HELLO, _chain(chain))
        if kind == PROGRESS:
            chain, nonce = _fields(body, 2)
            return Frame(PROGRESS, _chain(chain), next_nonce=_nonce(nonce))
    except rlp.RLPError as exc:
        raise MalformedMessage(f"bus frame is not valid RLP: {exc}") from None
    raise MalformedMessage(f"unknown bus frame kind {kind}")


def _fields(body: list[rlp.RLPItem], count: int) -> list[bytes]:
    return [rlp.as_bytes(x) for x in rlp.as_list(body, count)]


def _chain(raw: bytes) -> int:
    value = decode_int(raw)
    if not 1 <= value <= MAX_CHAIN_ID:
        raise MalformedMessage(f"bus frame chain id {value} is out of range")
    return value


def _nonce(raw: bytes) -> int:
    if len(raw) > 8:
        raise MalformedMessage("bus frame nonce exceeds 64 bits")
    return decode_int(raw)


def _messages(body: list[rlp.RLPItem]) -> Frame:
    chain_raw, items = rlp.as_list(body, 2)
    chain = _chain(rlp.as_bytes(chain_raw))
    encoded = rlp.as_list(items)
    if len(encoded) > MAX_FRAME_MESSAGES:
        raise MalformedMessage(
            f"bus frame holds {len(encoded)} messages, over {MAX_FRAME_MESSAGES}"
        )
    messages = tuple(decode_message(rlp.as_bytes(item)) for item in encoded)
    for index, m in enumerate(messages):
        if m.src_chain != chain:
            raise MalformedMessage(
                f"bus frame from chain {chain} carries message {index} of chain {m.src_chain}"
            )
        if index and m.channel_nonce != messages[index - 1].channel_nonce + 1:
            raise MalformedMessage(f"bus frame message {index} breaks the nonce sequence")
        if m.dst_chain != messages[0].dst_chain:
            raise MalformedMessage(f"bus frame message {index} is for another chain")
    return Frame(MESSAGES, chain, messages)
