"""Cross-app messages inside the state-transition function: sending, and executing arrivals.

A VM reports what an execution sent in one of two ways, and `sent_messages` reads both: the
native VM calls `send_call` while it executes (the SDK's `App.send`) and returns the messages in
`ExecResult.messages`; an EVM app calls the AppBus system contract at APP_BUS_ADDRESS
(vm/contracts/AppBus.sol), whose `MessageSent` logs carry every field, so any EVM engine works
without a hook. The STF gives the messages their `src_index` and commits to them in the
block's `messages_root`. A block executes its `inbound` messages with `apply_inbound` before
its transactions.

State (flat keys beside vm/state.py's and vm/native/upgrades.py's):
    storage of APP_BUS_ADDRESS at keccak(u256(dst_chain) ++ u256(0))
                               -> next channel nonce to use towards dst_chain: Solidity's
                                  `mapping(uint64 => uint64) nextNonce` at slot 0, so the EVM
                                  AppBus contract there keeps the same counter
    b"\\x08" ++ u64(src_chain)  -> next channel nonce to execute from src_chain (the progress
                                  that makes redelivery harmless)
    b"\\x09" ++ call_id         -> callback(4, zero: none) ++ u64(callback_gas) ++ u256(value)
                                  ++ sender(20) ++ u64(dst_chain) ++ target(20): a call whose
                                  result is still due
    b"\\x0c" ++ u64(dst_chain)  -> value of calls to dst_chain that succeeded there: the L1
                                  Portal's `settle` moves its growth to dst_chain's balance

Semantics:
- A call's value leaves the sender for BUS_ADDRESS's balance (the escrow) when it is sent. At
  the destination it is minted to the sender's alias (`remote_address`) and passed as
  `msg.value`; if the call fails, the result refunds it from the escrow before the callback.
- A call is executed in a destination block whose timestamp is at most its `expiry`;
  otherwise it is consumed unexecuted and fails with `MessageExpired(bytes32 id)`.
- A call that asked for a reply (a callback, or value to refund) produces exactly one result
  message; the result runs the callback once, as a call from BUS_ADDRESS with calldata
  `callback ++ abi.encode(bytes32 id, bool success, bytes data)`. A callback that fails is
  not retried; its own changes roll back, the result still counts as delivered.
- A channel's messages execute in nonce order; each one, executed or not, advances the
  progress key in the same state change, so the DB write of the block records it atomically.
- Nothing spans chains atomically: a failed call does not undo the sender's earlier block.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi import decode as abi_decode

from rollup.crypto import keccak
from rollup.errors import ExecutionError, InvalidBlock
from rollup.messages import (
    APP_BUS_ADDRESS,
    BUS_ADDRESS,
    CALL,
    MAX_CALL_GAS,
    MAX_CHAIN_ID,
    MAX_DATA,
    RESULT,
    CrossMessage,
    call_from_payload,
    remote_address,
)
from rollup.rlp import decode_int, encode_int
from rollup.types import Address, BlockEnv, Log, Receipt
from vm.bridge import record_withdrawals
from vm.interface import ExecResult, ExecutionVM, Message
from vm.state import State, StateReader, add_balance, get_balance, storage_key

__all__ = [
    "SendError",
    "InvalidInbound",
    "SEND_GAS",
    "DEFAULT_CALL_GAS",
    "DEFAULT_CALLBACK_GAS",
    "DEFAULT_TTL",
    "MAX_TTL",
    "send_gas",
    "send_call",
    "next_send_nonce",
    "inbound_progress",
    "pending_call",
    "apply_inbound",
    "collect",
    "sent_messages",
    "MESSAGE_SENT_TOPIC",
    "callback_calldata",
    "error_data",
]

SEND_GAS = 25_000  # per message at the source; the destination's execution is not charged
SEND_GAS_PER_BYTE = 16
DEFAULT_CALL_GAS = 500_000
DEFAULT_CALLBACK_GAS = 300_000
DEFAULT_TTL = 86_400  # seconds
MAX_TTL = 30 * 86_400

_PROGRESS, _PENDING, _SETTLED = b"\x08", b"\x09", b"\x0c"


class SendError(ExecutionError):
    """A send the STF refuses (bad destination, limits, value); the sending call fails."""


class InvalidInbound(InvalidBlock):
    """An inbound message a block may not contain (wrong chain, out of channel order)."""


@dataclass(frozen=True, slots=True)
class _Pending:
    callback: bytes  # 4-byte selector, or empty
    callback_gas: int
    value: int
    sender: Address
    dst_chain: int
    target: Address


def send_gas(data_size: int) -> int:
    return SEND_GAS + SEND_GAS_PER_BYTE * data_size


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def _send_nonce_key(dst_chain: int) -> bytes:
    return storage_key(APP_BUS_ADDRESS, keccak(dst_chain.to_bytes(32, "big") + bytes(32)))


def next_send_nonce(state: State | StateReader, dst_chain: int) -> int:
    return decode_int(state.get(_send_nonce_key(dst_chain)) or b"")


def inbound_progress(state: State | StateReader, src_chain: int) -> int:
    """The next channel nonce the chain will execute from `src_chain`."""
    return decode_int(state.get(_PROGRESS + _u64(src_chain)) or b"")


def _take_nonce(state: State, dst_chain: int) -> int:
    nonce = next_send_nonce(state, dst_chain)
    state.set(_send_nonce_key(dst_chain), encode_int(nonce + 1))
    return nonce


# ---- sending ---------------------------------------------------------------------------------


def send_call(
    state: State,
    env: BlockEnv,
    sender: Address,
    dst_chain: int,
    target: bytes,
    data: bytes,
    value: int = 0,
    gas: int = DEFAULT_CALL_GAS,
    ttl: int = DEFAULT_TTL,
    callback: bytes = b"",
    callback_gas: int = DEFAULT_CALLBACK_GAS,
) -> CrossMessage:
    """Emit a call from `sender`; its `src_index` is set by the STF. Raises SendError."""
    _check_send(env, dst_chain, target, data, value, gas, ttl, callback, callback_gas)
    if value:
        balance = get_balance(state, sender)
        if balance < value:
            raise SendError(f"insufficient balance for value: have {balance}, want {value}")
        add_balance(state, sender, -value)
        add_balance(state, BUS_ADDRESS, value)
    reply = bool(callback) or value > 0
    message = CrossMessage(
        src_chain=env.chain_id,
        src_block=env.number,
        src_index=0,
        channel_nonce=_take_nonce(state, dst_chain),
        dst_chain=dst_chain,
        sender=sender,
        target=Address(bytes(target)),
        kind=CALL,
        value=value,
        gas=gas,
        expiry=env.timestamp + ttl,
        reply=reply,
        data=bytes(data),
    )
    if reply:
        record = _Pending(
            callback, callback_gas if callback else 0, value, sender, dst_chain, message.target
        )
        _set_pending(state, message.id, record)
    return message


def _check_send(
    env: BlockEnv,
    dst_chain: int,
    target: bytes,
    data: bytes,
    value: int,
    gas: int,
    ttl: int,
    callback: bytes,
    callback_gas: int,
) -> None:
    if not 1 <= dst_chain <= MAX_CHAIN_ID:
        raise SendError(f"destination chain {dst_chain} is out of range")
    if dst_chain == env.chain_id:
        raise SendError("cannot send a message to the own chain; call the app directly")
    if len(target) != 20:
        raise SendError("target is not a 20-byte address")
    if len(data) > MAX_DATA:
        raise SendError(f"message data of {len(data)} bytes exceeds {MAX_DATA}")
    if value < 0 or value >= 2**256:
        raise SendError("value out of range")
    if not 0 <= gas <= MAX_CALL_GAS:
        raise SendError(f"gas must be in 0..{MAX_CALL_GAS}")
    if not 1 <= ttl <= MAX_TTL:
        raise SendError(f"ttl must be in 1..{MAX_TTL} seconds")
    if len(callback) not in (0, 4):
        raise SendError("callback must be a 4-byte selector or empty")
    if not 0 <= callback_gas <= MAX_CALL_GAS:
        raise SendError(f"callback gas must be in 0..{MAX_CALL_GAS}")


def _set_pending(state: State, call_id: bytes, p: _Pending) -> None:
    record = (
        (p.callback or bytes(4))
        + p.callback_gas.to_bytes(8, "big")
        + p.value.to_bytes(32, "big")
        + p.sender
        + p.dst_chain.to_bytes(8, "big")
        + p.target
    )
    state.set(_PENDING + call_id, record)


def pending_call(state: State | StateReader, call_id: bytes) -> _Pending | None:
    """The record of a sent call whose result has not arrived yet."""
    raw = state.get(_PENDING + call_id)
    if not raw:
        return None
    callback = raw[:4] if raw[:4] != bytes(4) else b""
    return _Pending(
        callback,
        int.from_bytes(raw[4:12], "big"),
        int.from_bytes(raw[12:44], "big"),
        Address(raw[44:64]),
        int.from_bytes(raw[64:72], "big"),
        Address(raw[72:92]),
    )


def _emit_result(
    state: State, env: BlockEnv, call: CrossMessage, success: bool, data: bytes
) -> CrossMessage:
    # Return data beyond the message limit is cut: the call's effects stand either way, so it
    # must not turn into a failure (which would refund value the call already received).
    return CrossMessage(
        src_chain=env.chain_id,
        src_block=env.number,
        src_index=0,
        channel_nonce=_take_nonce(state, call.src_chain),
        dst_chain=call.src_chain,
        sender=call.target,
        target=call.sender,
        kind=RESULT,
        data=data[:MAX_DATA],
        ref_id=call.id,
        success=success,
    )


# The AppBus contract's event (vm/contracts/AppBus.sol).
MESSAGE_SENT_TOPIC = keccak(
    b"MessageSent(bytes32,uint64,address,uint64,address,bytes4,uint64,bytes)"
)
_EVENT_DATA = ["uint64", "address", "bytes4", "uint64", "bytes"]


def sent_messages(state: State, env: BlockEnv, result: ExecResult) -> list[CrossMessage]:
    """What a successful execution sent: `result.messages`, then one message per MessageSent
    log of the AppBus contract (whose pending records are written here, as `send_call` does
    for native sends; the contract has passed the value on to BUS_ADDRESS already)."""
    if not result.success:
        return []
    sent = list(result.messages)
    for log in result.logs:
        if log.address == APP_BUS_ADDRESS and log.topics and log.topics[0] == MESSAGE_SENT_TOPIC:
            sent.append(_from_log(state, env, log))
    return sent


def _from_log(state: State, env: BlockEnv, log: Log) -> CrossMessage:
    nonce, target, callback, callback_gas, payload = abi_decode(_EVENT_DATA, log.data)
    dst_chain = int.from_bytes(log.topics[2], "big")
    sender = Address(log.topics[3][12:])
    message = call_from_payload(
        env.chain_id,
        env.number,
        nonce,
        dst_chain,
        sender,
        Address(bytes.fromhex(target[2:])),
        payload,
    )
    if message.id != log.topics[1]:
        raise RuntimeError("the AppBus contract and the node disagree on a message id")
    if message.reply:
        selector = b"" if callback == bytes(4) else bytes(callback)
        _set_pending(
            state,
            message.id,
            _Pending(
                selector,
                callback_gas if selector else 0,
                message.value,
                sender,
                dst_chain,
                message.target,
            ),
        )
    return message


# ---- executing what arrives ------------------------------------------------------------------


def collect(outbound: list[CrossMessage], messages: Sequence[CrossMessage]) -> None:
    """Append a block's newly emitted messages, numbering them by position."""
    for message in messages:
        outbound.append(message.with_index(len(outbound)))


def _check_order(state: State, env: BlockEnv, messages: Sequence[CrossMessage]) -> None:
    expected: dict[int, int] = {}
    for index, m in enumerate(messages):
        if m.dst_chain != env.chain_id:
            raise InvalidInbound(f"inbound message {index} is for chain {m.dst_chain}")
        want = expected.get(m.src_chain)
        if want is None:
            want = inbound_progress(state, m.src_chain)
        if m.channel_nonce != want:
            raise InvalidInbound(
                f"inbound message {index} from chain {m.src_chain} has nonce "
                f"{m.channel_nonce}, expected {want}"
            )
        expected[m.src_chain] = want + 1


def apply_inbound(
    state: State,
    env: BlockEnv,
    vm: ExecutionVM,
    messages: Sequence[CrossMessage],
    outbound: list[CrossMessage],
) -> list[Receipt]:
    """Execute a block's inbound messages in order; results and messages they send go to
    `outbound`. Raises InvalidInbound, before changing anything, if the list is not valid."""
    _check_order(state, env, messages)
    receipts: list[Receipt] = []
    cumulative = 0
    for m in messages:
        key = _PROGRESS + _u64(m.src_chain)
        state.set(key, encode_int(m.channel_nonce + 1))
        state.commit()
        result = (
            _run_call(state, env, vm, m, outbound)
            if m.is_call
            else _run_result(state, env, vm, m, outbound)
        )
        cumulative += result.gas_used
        logs = result.logs if result.success else ()
        receipts.append(
            Receipt(
                1 if result.success else 0,
                result.gas_used,
                cumulative,
                0,
                logs,
                None,
                result.output,
            )
        )
    return receipts


def _run_call(
    state: State, env: BlockEnv, vm: ExecutionVM, m: CrossMessage, outbound: list[CrossMessage]
) -> ExecResult:
    if env.timestamp > m.expiry:
        result = ExecResult(False, 0, error_data("MessageExpired(bytes32)", m.id))
    else:
        snapshot = state.snapshot()
        alias = remote_address(m.src_chain, m.sender)
        if m.value:
            add_balance(state, alias, m.value)  # minted here; escrowed at the source
        result = vm.execute(state, env, Message(alias, m.target, m.value, m.data, m.gas, alias, 0))
        if result.success:
            record_withdrawals(state, env, result)
            collect(outbound, sent_messages(state, env, result))
        else:
            state.revert(snapshot)
    if m.reply:
        collect(outbound, [_emit_result(state, env, m, result.success, result.output)])
    state.commit()
    return result


def _run_result(
    state: State, env: BlockEnv, vm: ExecutionVM, m: CrossMessage, outbound: list[CrossMessage]
) -> ExecResult:
    pending = pending_call(state, m.ref_id)
    if pending is None or pending.dst_chain != m.src_chain or pending.target != m.sender:
        # Cannot come from an honest source chain; consumed without effect.
        return ExecResult(False, 0, error_data("UnknownCall(bytes32)", m.ref_id))
    state.set(_PENDING + m.ref_id, None)
    if pending.value and not m.success:
        add_balance(state, BUS_ADDRESS, -pending.value)
        add_balance(state, pending.sender, pending.value)
    elif pending.value:  # it arrived: the destination's exits back it once settled on L1
        key = _SETTLED + _u64(pending.dst_chain)
        state.set(key, encode_int(decode_int(state.get(key) or b"") + pending.value))
    state.commit()
    if not pending.callback:
        return ExecResult(True, 0, b"")
    data = callback_calldata(pending.callback, m.ref_id, m.success, m.data)
    msg = Message(BUS_ADDRESS, pending.sender, 0, data, pending.callback_gas, BUS_ADDRESS, 0)
    result = vm.execute(state, env, msg)
    if result.success:
        record_withdrawals(state, env, result)
    collect(outbound, sent_messages(state, env, result))
    state.commit()
    return result


def callback_calldata(selector: bytes, call_id: bytes, success: bool, data: bytes) -> bytes:
    """selector ++ abi.encode(bytes32 id, bool success, bytes data)."""
    padded = data + b"\x00" * (-len(data) % 32)
    return (
        selector
        + call_id
        + (1 if success else 0).to_bytes(32, "big")
        + (96).to_bytes(32, "big")
        + len(data).to_bytes(32, "big")
        + padded
    )


def error_data(signature: str, word: bytes) -> bytes:
    """ABI revert data of a custom error with one 32-byte argument."""
    return keccak(signature.encode())[:4] + bytes(word).rjust(32, b"\x00")
