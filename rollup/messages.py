"""Cross-app messages: a call from an app on one chain to an app on another, and its result.

    message  = rlp([src_chain, src_block, src_index, channel_nonce, dst_chain, sender, target,
                    payload])
    payload  = 0x00 ++ u256(value) ++ u64(gas) ++ u64(expiry) ++ u8(reply) ++ data     a call
             | 0x01 ++ ref_id(32) ++ u8(success) ++ data                             a result
    msg_id   = keccak(0x01 ++ u64(src_chain) ++ u64(src_block) ++ u64(channel_nonce)
                      ++ u64(dst_chain) ++ sender(20) ++ target(20) ++ payload)

Both are packed fixed-width headers (Hyperlane style), i.e. Solidity's `abi.encodePacked`:
`msg_id = keccak256(abi.encodePacked(uint8(1), uint64 src_chain, uint64 src_block, uint64
channel_nonce, uint64 dst_chain, address sender, address target, bytes payload))` with a call's
`payload = abi.encodePacked(uint8(0), uint256 value, uint64 gas, uint64 expiry, bool reply,
bytes data)`. That is the issue's (version, src_chain, src_block, channel_nonce, dst_chain,
sender, target, payload), computed the same way by the native VM and by an EVM contract.

`src_index` is the message's position among the outbound messages of its source block (its
leaf in that block's `messages_root`, see `rollup.blocks.messages_root`); it is carried so a
verifier can find the message in the source app's DA data, and is not part of the id.

Channels: every (src_chain, dst_chain) pair has one nonce sequence, 0, 1, 2, ..., shared by
calls and results travelling that way. The destination executes a channel in nonce order.

Limits (checked on decode, so a malformed message never reaches the state-transition
function): chain ids 1..2**53-1, block numbers, nonces and expiry below 2**64, value below
2**256, gas at most MAX_CALL_GAS, data at most MAX_DATA bytes, a message at most MAX_MESSAGE
bytes encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from rollup import rlp
from rollup.crypto import keccak
from rollup.errors import MalformedMessage
from rollup.rlp import decode_int, encode_int
from rollup.types import MAX_CHAIN_ID, ZERO_HASH, Address, Hash32

__all__ = [
    "CALL",
    "RESULT",
    "MESSAGE_VERSION",
    "BUS_ADDRESS",
    "APP_BUS_ADDRESS",
    "MAX_DATA",
    "MAX_CALL_GAS",
    "MAX_MESSAGE",
    "MAX_CHAIN_ID",
    "CrossMessage",
    "encode_message",
    "decode_message",
    "remote_address",
    "call_from_payload",
]

CALL = 0
RESULT = 1
MESSAGE_VERSION = 1
MAX_DATA = 128 * 1024
MAX_CALL_GAS = 30_000_000
MAX_MESSAGE = MAX_DATA + 1024
_U64 = 2**64

# The bus's system address on every chain: the sender of callbacks, and the escrow that holds
# value sent to other chains. No key controls it, and it never has code (an EVM refuses calls
# from an account with code, EIP-3607).
BUS_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0002"))
# Where EVM apps send from: the AppBus system contract (vm/contracts/AppBus.sol), which keeps the
# channel nonces and passes the value it receives on to BUS_ADDRESS.
APP_BUS_ADDRESS = Address(bytes.fromhex("00000000000000000000000000000000000f0003"))


def remote_address(chain_id: int, sender: bytes) -> Address:
    """The `msg.sender` a destination app sees for `sender` on chain `chain_id`.

    An alias rather than `sender` itself: a contract on another chain may share an address
    with a local account, and must not act for it. An app that accepts calls from one remote
    app compares `msg.sender` with this address.
    """
    return Address(keccak(b"app-rollup:remote:" + chain_id.to_bytes(8, "big") + sender)[12:])


@dataclass(frozen=True, slots=True)
class CrossMessage:
    """One message; `payload` and `id` are derived from the other fields."""

    src_chain: int
    src_block: int
    src_index: int
    channel_nonce: int
    dst_chain: int
    sender: Address
    target: Address
    kind: int
    value: int = 0  # call: native value it carries (escrowed at the source)
    gas: int = 0  # call: gas for executing it at the destination
    expiry: int = 0  # call: not executed in a destination block with a later timestamp
    reply: bool = False  # call: the sender wants a result message (callback or refund)
    data: bytes = b""  # call: calldata; result: return data, or revert data on failure
    ref_id: Hash32 = ZERO_HASH  # result: the id of the call it answers
    success: bool = False  # result: whether the call succeeded
    payload: bytes = field(init=False, repr=False, compare=False)
    id: Hash32 = field(init=False, compare=False)
    _encoded: bytes = field(init=False, repr=False, compare=False, default=b"")  # a cache

    def __post_init__(self) -> None:
        if self.kind == CALL:
            if self.ref_id != ZERO_HASH or self.success:
                raise ValueError("a call has no ref_id or success")
        elif self.kind == RESULT:
            if self.value or self.gas or self.expiry or self.reply:
                raise ValueError("a result has no value, gas, expiry or reply")
        else:
            raise ValueError(f"unknown message kind {self.kind}")
        payload = _encode_payload(self)
        object.__setattr__(self, "payload", payload)
        object.__setattr__(self, "id", _message_id(self, payload))

    def with_index(self, src_index: int) -> CrossMessage:
        """The same message at another position of its block (id and payload unchanged)."""
        if src_index == self.src_index:
            return self
        clone = object.__new__(CrossMessage)
        for name in _FIELD_NAMES:
            object.__setattr__(clone, name, getattr(self, name))
        object.__setattr__(clone, "src_index", src_index)
        object.__setattr__(clone, "_encoded", b"")
        return clone

    @property
    def is_call(self) -> bool:
        return self.kind == CALL

    @property
    def channel(self) -> tuple[int, int]:
        return (self.src_chain, self.dst_chain)


def _encode_payload(m: CrossMessage) -> bytes:
    if m.kind == CALL:
        return (
            b"\x00"
            + m.value.to_bytes(32, "big")
            + m.gas.to_bytes(8, "big")
            + m.expiry.to_bytes(8, "big")
            + (b"\x01" if m.reply else b"\x00")
            + m.data
        )
    return b"\x01" + m.ref_id + (b"\x01" if m.success else b"\x00") + m.data


def _message_id(m: CrossMessage, payload: bytes) -> Hash32:
    head = (
        bytes((MESSAGE_VERSION,))
        + m.src_chain.to_bytes(8, "big")
        + m.src_block.to_bytes(8, "big")
        + m.channel_nonce.to_bytes(8, "big")
        + m.dst_chain.to_bytes(8, "big")
    )
    return Hash32(keccak(head + m.sender + m.target + payload))


_FIELD_NAMES = tuple(f.name for f in fields(CrossMessage))


def encode_message(m: CrossMessage) -> bytes:
    encoded = m._encoded
    if not encoded:  # encoded once: the block, its root, the outbox and the bus all need it
        encoded = rlp.encode(
            [
                encode_int(m.src_chain),
                encode_int(m.src_block),
                encode_int(m.src_index),
                encode_int(m.channel_nonce),
                encode_int(m.dst_chain),
                m.sender,
                m.target,
                m.payload,
            ]
        )
        object.__setattr__(m, "_encoded", encoded)
    return encoded


def decode_message(data: bytes) -> CrossMessage:
    """Strict decoding; raises MalformedMessage naming the first thing that is wrong."""
    if len(data) > MAX_MESSAGE:
        raise MalformedMessage(f"message of {len(data)} bytes exceeds {MAX_MESSAGE}")
    try:
        items = [rlp.as_bytes(x) for x in rlp.as_list(rlp.decode(data), 8)]
        src_chain, src_block, src_index, nonce, dst_chain = (
            _uint(items[i], name, limit) for i, (name, limit) in enumerate(_HEADER_FIELDS)
        )
        sender, target = _address(items[5], "sender"), _address(items[6], "target")
        kind, value, gas, expiry, reply, data, ref_id, success = _decode_payload(items[7])
    except rlp.RLPError as exc:
        raise MalformedMessage(f"message is not valid RLP: {exc}") from None
    if src_chain == dst_chain:
        raise MalformedMessage("message source and destination chain are the same")
    return CrossMessage(
        src_chain,
        src_block,
        src_index,
        nonce,
        dst_chain,
        sender,
        target,
        kind,
        value,
        gas,
        expiry,
        reply,
        data,
        ref_id,
        success,
    )


_HEADER_FIELDS = (
    ("src_chain", MAX_CHAIN_ID + 1),
    ("src_block", _U64),
    ("src_index", _U64),
    ("channel_nonce", _U64),
    ("dst_chain", MAX_CHAIN_ID + 1),
)


def _uint(raw: bytes, name: str, limit: int) -> int:
    value = decode_int(raw)
    if value >= limit:
        raise MalformedMessage(f"message {name} {value} is out of range")
    if name.endswith("chain") and value == 0:
        raise MalformedMessage(f"message {name} is 0")
    return value


def _address(raw: bytes, name: str) -> Address:
    if len(raw) != 20:
        raise MalformedMessage(f"message {name} is {len(raw)} bytes, not an address")
    return Address(raw)


def _flag(raw: int, name: str) -> bool:
    if raw > 1:
        raise MalformedMessage(f"message {name} must be 0 or 1")
    return raw == 1


def _data(raw: bytes) -> bytes:
    if len(raw) > MAX_DATA:
        raise MalformedMessage(f"message data of {len(raw)} bytes exceeds {MAX_DATA}")
    return raw


_Payload = tuple[int, int, int, int, bool, bytes, Hash32, bool]


_CALL_HEAD = 1 + 32 + 8 + 8 + 1
_RESULT_HEAD = 1 + 32 + 1


def _decode_payload(p: bytes) -> _Payload:
    """(kind, value, gas, expiry, reply, data, ref_id, success) of a packed payload."""
    kind = p[:1]
    if kind == b"\x00":
        if len(p) < _CALL_HEAD:
            raise MalformedMessage(f"call payload of {len(p)} bytes is shorter than its header")
        gas = int.from_bytes(p[33:41], "big")
        if gas > MAX_CALL_GAS:
            raise MalformedMessage(f"message gas {gas} is out of range")
        return (
            CALL,
            int.from_bytes(p[1:33], "big"),
            gas,
            int.from_bytes(p[41:49], "big"),
            _flag(p[49], "reply"),
            _data(p[_CALL_HEAD:]),
            ZERO_HASH,
            False,
        )
    if kind == b"\x01":
        if len(p) < _RESULT_HEAD:
            raise MalformedMessage(f"result payload of {len(p)} bytes is shorter than its header")
        return (
            RESULT,
            0,
            0,
            0,
            False,
            _data(p[_RESULT_HEAD:]),
            Hash32(p[1:33]),
            _flag(p[33], "success"),
        )
    raise MalformedMessage(f"unknown message kind {kind.hex() or '(empty)'}")


def call_from_payload(
    src_chain: int,
    src_block: int,
    channel_nonce: int,
    dst_chain: int,
    sender: Address,
    target: Address,
    payload: bytes,
) -> CrossMessage:
    """A call rebuilt from its packed payload (an EVM system contract's log carries it)."""
    kind, value, gas, expiry, reply, data, _, _ = _decode_payload(payload)
    if kind != CALL:
        raise MalformedMessage("expected a call payload")
    return CrossMessage(
        src_chain,
        src_block,
        0,
        channel_nonce,
        dst_chain,
        sender,
        target,
        CALL,
        value,
        gas,
        expiry,
        reply,
        data,
    )
