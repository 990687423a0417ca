"""Simulations: eth_call, eth_estimateGas, eth_createAccessList and eth_simulateV1 against
committed state.

A simulation runs the chain's VM through `vm.call` (which never loads code or changes the
chain: see vm/native and vm/evm) on a view of a committed block's state, with geth's state
overrides laid over it when asked. Nothing here changes the node.

What one simulation may cost is bounded twice:
- gas: every run gets at most `gas_cap` (geth's RPC gas cap, 50M by default);
- the calling thread: with a `Budget`, the runs of one request (or of one JSON-RPC batch, which
  shares its budget) may spend only that much gas here. A simulation that would need more
  raises `NeedsIsolation` before it has spent more, and the server runs it again in a separate
  process with a wall-time limit (services/rpc/isolation.py). Block production shares the
  node's event loop with the cheap simulations only.
A run cut short by the budget is answered from only when it failed having used less than half
of what it was given: then no inner call can have run out of gas for want of the caller's gas
(EIP-150 gives an inner call at least 63/64 of what is left), so more gas would not change it.
Otherwise it is repeated in full, so the answer is what a run with the caller's gas gives.
eth_simulateV1 (`simulate_blocks`) is bounded the same way: all its calls share one `gas_cap`,
and a call its budget cannot cover sends the whole request to be run again isolated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from rollup.crypto import keccak
from rollup.errors import (
    BlockNotFound,
    CallFailed,
    ExecutionReverted,
    FeeCapTooLow,
    InsufficientFunds,
    IntrinsicGasTooLow,
    InvalidParams,
    LimitExceeded,
    NonceTooHigh,
    NonceTooLow,
    RollupError,
    TxRejected,
)
from rollup.transactions import message_intrinsic_gas
from rollup.types import AccessList, Address, BlockEnv, Hash32, Log
from sequencer.node import Sequencer
from vm.interface import ExecResult, Message
from vm.native.abi import selector
from vm.state import (
    DictReader,
    OverlayReader,
    State,
    account_key,
    add_balance,
    code_key,
    get_account,
    set_account,
    storage_key,
)

__all__ = [
    "CallRequest",
    "AccountOverride",
    "Overrides",
    "Budget",
    "NeedsIsolation",
    "call",
    "estimate_gas",
    "create_access_list",
    "revert_error",
    "ESTIMATE_MAX_RUNS",
    "SimCall",
    "SimBlock",
    "SimCallResult",
    "SimBlockResult",
    "simulate_blocks",
    "simulated_block_hash",
    "MAX_SIMULATE_BLOCKS",
    "MAX_SIMULATE_CALLS",
]

ESTIMATE_MAX_RUNS = 40  # a binary search over [intrinsic, 50M] needs ~26
ACCESS_LIST_MAX_RUNS = 8
MAX_SIMULATE_BLOCKS = 256  # eth_simulateV1: the spec's recommended limit (BLOCKHASH's reach)
MAX_SIMULATE_CALLS = 1_000  # in all the blocks of one request


@dataclass(frozen=True, slots=True)
class AccountOverride:
    """One account of geth's state override set; None leaves that part as it is. `state`
    replaces the whole storage, `state_diff` only the slots it names."""

    balance: int | None = None
    nonce: int | None = None
    code: bytes | None = None
    state: dict[bytes, bytes] | None = None
    state_diff: dict[bytes, bytes] | None = None


Overrides = dict[bytes, AccountOverride]  # by address


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A transaction call object (eth_call and friends), parsed."""

    sender: bytes | None = None
    to: bytes | None = None
    value: int = 0
    gas: int | None = None
    data: bytes = b""
    gas_price: int | None = None
    max_fee: int | None = None
    max_priority_fee: int | None = None
    access_list: AccessList = ()


class NeedsIsolation(Exception):  # noqa: N818 - a signal to the caller, not an error
    """The simulation needs more than its budget on this thread: run it again isolated."""


class Budget:
    """Gas a request may still spend on the calling thread; shared by the requests of a batch."""

    __slots__ = ("remaining",)

    def __init__(self, gas: int) -> None:
        self.remaining = gas


_ERROR_SELECTOR = selector("Error(string)")
_PANIC_SELECTOR = selector("Panic(uint256)")


def revert_error(output: bytes) -> ExecutionReverted:
    """geth's shape: message 'execution reverted: <reason>' and the ABI data."""
    reason = None
    if output[:4] == _ERROR_SELECTOR and len(output) >= 68:
        length = int.from_bytes(output[36:68], "big")
        reason = output[68 : 68 + length].decode(errors="replace")
    elif output[:4] == _PANIC_SELECTOR and len(output) >= 36:
        reason = f"panic: 0x{int.from_bytes(output[4:36], 'big'):02x}"
    return ExecutionReverted(reason, output)


# ---- one run ------------------------------------------------------------------------------


def _env(node: Sequencer, number: int) -> BlockEnv:
    block = node.block(number) if number != node.committed.number else None
    header = block.header if block is not None else node.committed
    return BlockEnv(
        header.number,
        header.timestamp,
        header.coinbase,
        header.base_fee,
        header.gas_limit,
        header.chain_id,
    )


def _state(node: Sequencer, number: int, overrides: Overrides | None) -> State:
    return _overlay(node.state_at(number), overrides)


def _overlay(state: State, overrides: Overrides | None) -> State:
    """`state` seen through geth's state overrides (a new layer; `state` is left as it is)."""
    if not overrides:
        return state
    values: dict[bytes, bytes | None] = {}
    wiped: set[bytes] = set()
    for address, override in overrides.items():
        nonce, balance = get_account(state, address)
        scratch = State(DictReader())
        if override.nonce is not None:
            nonce = override.nonce
        if override.balance is not None:
            balance = override.balance
        set_account(scratch, address, nonce, balance)
        values[account_key(address)] = scratch.get(account_key(address))
        if override.code is not None:
            values[code_key(address)] = override.code or None
        if override.state is not None:
            wiped.add(address)
        for slot, word in {**(override.state or {}), **(override.state_diff or {})}.items():
            values[storage_key(address, slot)] = word.lstrip(b"\x00") or None
    return State(OverlayReader(state, values, wiped))


def _message(request: CallRequest, gas: int) -> tuple[Message, int]:
    """The message of a call with `gas` in all, and the intrinsic gas taken from it."""
    sender = Address(request.sender or bytes(20))
    to = Address(request.to) if request.to is not None else None
    intrinsic = message_intrinsic_gas(request.data, to is None, request.access_list)
    price = request.gas_price or request.max_fee or 0
    msg = Message(
        sender,
        to,
        request.value,
        request.data,
        max(gas - intrinsic, 0),
        sender,
        price,
        request.access_list,
    )
    return msg, intrinsic


def _run(
    node: Sequencer,
    request: CallRequest,
    number: int,
    gas: int,
    overrides: Overrides | None,
    budget: Budget | None,
) -> tuple[ExecResult, int]:
    """Run the call with `gas` in all; (result, gas used in all). Raises only for bad input,
    or NeedsIsolation when `budget` cannot cover it."""
    if request.to is None and not node.evm:
        raise InvalidParams("contract creation is not supported by this app's VM")
    msg, intrinsic = _message(request, gas)
    if gas < intrinsic:
        return ExecResult(False, 0, b""), intrinsic
    state = _state(node, number, overrides)
    if request.value and get_account(state, msg.sender)[1] < request.value:
        raise TxRejected("insufficient funds for transfer")
    capped = budget is not None and budget.remaining < gas
    if budget is not None:
        if budget.remaining <= intrinsic:
            raise NeedsIsolation()
        if capped:
            msg = replace(msg, gas=budget.remaining - intrinsic)
    result = node.vm.call(state, _env(node, number), msg)
    used = intrinsic + result.gas_used
    if budget is not None:
        if capped and not result.success and 2 * used >= budget.remaining:
            raise NeedsIsolation()  # it might have succeeded with the caller's gas
        budget.remaining -= used
    return result, used


def _failure(result: ExecResult, used: int, gas: int) -> CallFailed | ExecutionReverted:
    """A failed run's error: a revert (with its data), or out of gas when it used it all."""
    if result.output or used < gas:
        return revert_error(result.output)
    return CallFailed("out of gas")


def _gas(node: Sequencer, request: CallRequest, gas_cap: int) -> int:
    """The gas of a run: the caller's, at most the RPC cap and the block's gas limit."""
    cap = min(gas_cap, node.manifest.gas_limit)
    return min(request.gas, cap) if request.gas is not None else cap


# ---- the three simulations ----------------------------------------------------------------


def call(
    node: Sequencer,
    request: CallRequest,
    number: int,
    overrides: Overrides | None,
    gas_cap: int,
    budget: Budget | None = None,
) -> bytes:
    """eth_call: the return data, or ExecutionReverted / CallFailed."""
    gas = _gas(node, request, gas_cap)
    result, used = _run(node, request, number, gas, overrides, budget)
    if not result.success:
        raise _failure(result, used, gas)
    return result.output


def estimate_gas(
    node: Sequencer,
    request: CallRequest,
    number: int,
    overrides: Overrides | None,
    gas_cap: int,
    budget: Budget | None = None,
) -> int:
    """The least gas with which the call succeeds, by binary search as geth does."""
    cap = _gas(node, request, gas_cap)
    result, used = _run(node, request, number, cap, overrides, budget)
    if not result.success:
        if result.output or used < cap:
            raise revert_error(result.output)
        raise CallFailed(f"gas required exceeds allowance ({cap})")
    lo, hi = used - 1, cap  # fails at lo (refunds aside, it needs `used`), succeeds at hi
    guess: int | None = min(used * 64 // 63 + 3_000, hi)  # covers 63/64 and refunds, usually
    for _ in range(ESTIMATE_MAX_RUNS):
        if hi - lo <= 1:
            break
        mid = guess if guess is not None and lo < guess < hi else (lo + hi) // 2
        guess = None
        if _run(node, request, number, mid, overrides, budget)[0].success:
            hi = mid
        else:
            lo = mid
    return hi


@dataclass(frozen=True, slots=True)
class AccessListResult:
    access_list: AccessList
    gas_used: int
    error: str | None


def create_access_list(
    node: Sequencer,
    request: CallRequest,
    number: int,
    gas_cap: int,
    budget: Budget | None = None,
) -> AccessListResult:
    """geth's answer: what the call touches, less sender, recipient and precompiles, found
    again with the list in place until it stops changing (warm slots can change paths)."""
    gas = _gas(node, request, gas_cap)
    listed = request.access_list
    for _ in range(ACCESS_LIST_MAX_RUNS):
        result, used = _run(node, replace(request, access_list=listed), number, gas, None, budget)
        found = _without_implicit(result.accessed, request, result.contract_address, node.coinbase)
        if found == listed:
            break
        listed = found
    error = None
    if not result.success:
        error = str(revert_error(result.output)) if result.output else "out of gas"
    return AccessListResult(listed, used, error)


def _without_implicit(
    accessed: AccessList, request: CallRequest, created: bytes | None, coinbase: bytes
) -> AccessList:
    """geth's AccessListTracer: sender, recipient and precompiles (and the coinbase, EIP-3651)
    are warm anyway, so they are left out unless the call read or wrote their storage."""
    skip = {request.sender or bytes(20), request.to, created, coinbase}
    return tuple(
        (address, keys)
        for address, keys in accessed
        if keys or (address not in skip and not 1 <= int.from_bytes(address, "big") <= 0x0A)
    )


# ---- eth_simulateV1 -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimCall:
    """One call of a simulated block: a call object and the nonce it names (None: the
    sender's, as it stands after the calls before it)."""

    request: CallRequest
    nonce: int | None = None


@dataclass(frozen=True, slots=True)
class SimBlock:
    """One entry of `blockStateCalls`: overrides laid over the state so far, then the calls.
    Block overrides: None leaves a field as the block before has it, except `number` and
    `time` (one more than the block before) and `base_fee` (the app's when validating, else 0,
    as geth does)."""

    calls: tuple[SimCall, ...] = ()
    overrides: Overrides | None = None
    number: int | None = None
    time: int | None = None
    gas_limit: int | None = None
    coinbase: bytes | None = None
    base_fee: int | None = None
    prev_randao: bytes | None = None


@dataclass(frozen=True, slots=True)
class SimCallResult:
    success: bool
    gas_used: int
    output: bytes
    logs: tuple[Log, ...]
    error: RollupError | None  # why a failed call failed: a revert (with data) or out of gas


@dataclass(frozen=True, slots=True)
class SimBlockResult:
    env: BlockEnv
    parent_hash: bytes
    calls: tuple[SimCallResult, ...]


@dataclass(slots=True)
class _Run:
    """What one eth_simulateV1 request may still spend, and where it runs."""

    gas_left: int  # of the RPC gas cap, shared by every call of the request (as in geth)
    budget: Budget | None
    validation: bool


def simulate_blocks(
    node: Sequencer,
    blocks: list[SimBlock],
    number: int,
    validation: bool,
    gas_cap: int,
    budget: Budget | None = None,
) -> list[SimBlockResult]:
    """eth_simulateV1: blocks of calls on top of block `number`, each call seeing what the ones
    before it did. Bounded: at most MAX_SIMULATE_BLOCKS blocks and MAX_SIMULATE_CALLS calls, and
    all the calls together get at most `gas_cap` gas (geth's RPC gas cap, shared)."""
    if len(blocks) > MAX_SIMULATE_BLOCKS:
        raise LimitExceeded(f"too many blocks to simulate: at most {MAX_SIMULATE_BLOCKS}")
    if sum(len(block.calls) for block in blocks) > MAX_SIMULATE_CALLS:
        raise LimitExceeded(f"too many calls to simulate: at most {MAX_SIMULATE_CALLS}")
    parent = node.block(number)
    if parent is None:
        raise BlockNotFound("header not found")
    run = _Run(gas_cap, budget, validation)
    env = _env(node, number)
    state, parent_hash = node.state_at(number), bytes(parent.hash)
    out: list[SimBlockResult] = []
    for block in blocks:
        env = _next_env(node, env, block, validation)
        state = _overlay(state, block.overrides)
        calls = _simulate_calls(node, state, env, block.calls, run)
        out.append(SimBlockResult(env, parent_hash, calls))
        parent_hash = simulated_block_hash(parent_hash, env.number)
    return out


def simulated_block_hash(parent_hash: bytes, number: int) -> bytes:
    """A simulated block is never sealed (no roots are computed), so it has no real hash: this
    one only tells the blocks of an answer apart and chains them (parentHash)."""
    return keccak(b"eth_simulateV1" + parent_hash + number.to_bytes(8, "big"))


def _next_env(node: Sequencer, before: BlockEnv, block: SimBlock, validation: bool) -> BlockEnv:
    number = before.number + 1 if block.number is None else block.number
    time = before.timestamp + 1 if block.time is None else block.time
    if number <= before.number:
        raise InvalidParams(
            f"block number in sequence did not increase: {number} after {before.number}"
        )
    if time < before.timestamp:
        raise InvalidParams(f"block timestamp in sequence decreased: {time} < {before.timestamp}")
    base_fee = node.manifest.base_fee if validation else 0  # geth: no base fee unless validating
    return replace(
        before,
        number=number,
        timestamp=time,
        base_fee=base_fee if block.base_fee is None else block.base_fee,
        gas_limit=before.gas_limit if block.gas_limit is None else block.gas_limit,
        coinbase=before.coinbase if block.coinbase is None else Address(block.coinbase),
        prev_randao=before.prev_randao if block.prev_randao is None else Hash32(block.prev_randao),
    )


def _simulate_calls(
    node: Sequencer, state: State, env: BlockEnv, calls: tuple[SimCall, ...], run: _Run
) -> tuple[SimCallResult, ...]:
    results: list[SimCallResult] = []
    block_gas_left = env.gas_limit
    for call in calls:
        result = _simulate_call(node, state, env, call, min(block_gas_left, run.gas_left), run)
        block_gas_left -= result.gas_used
        run.gas_left -= result.gas_used
        results.append(result)
    return tuple(results)


def _simulate_call(
    node: Sequencer, state: State, env: BlockEnv, call: SimCall, gas_left: int, run: _Run
) -> SimCallResult:
    """Run one call as a transaction would (nonce, gas bought and refunded, value moved) on
    `state`, which keeps its effects. Invalid calls fail the whole request, as in geth."""
    request = call.request
    if request.to is None and not node.evm:
        raise InvalidParams("contract creation is not supported by this app's VM")
    gas = gas_left if request.gas is None else request.gas
    if gas > gas_left:
        raise LimitExceeded(f"gas {gas} exceeds what is left of the block and the RPC gas cap")
    msg, intrinsic = _message(request, gas)
    price = _sim_price(request, env.base_fee, run.validation)
    nonce, balance = get_account(state, msg.sender)
    _check_sim_call(call, msg.sender, nonce, balance, gas, intrinsic, gas * price + request.value)
    budget = run.budget
    if budget is not None and budget.remaining <= intrinsic:
        raise NeedsIsolation()  # this thread's budget is spent
    allowed = gas if budget is None else min(gas, budget.remaining)
    set_account(state, msg.sender, nonce + 1, balance - gas * price)
    result = node.vm.execute(state, env, replace(msg, gas=allowed - intrinsic, gas_price=price))
    used = min(gas, intrinsic + result.gas_used)
    if allowed < gas and not result.success and 2 * used >= allowed:
        raise NeedsIsolation()  # it might have succeeded with its own gas: as `_run` does
    add_balance(state, msg.sender, (gas - used) * price)
    state.commit()
    if budget is not None:
        budget.remaining -= used
    error = None if result.success else _failure(result, used, gas)
    logs = result.logs if result.success else ()
    return SimCallResult(result.success, used, result.output, logs, error)


def _sim_price(request: CallRequest, base_fee: int, validation: bool) -> int:
    """The gas price a simulated call pays: what it offers, at least the base fee when
    validating (else FeeCapTooLow), and nothing by default."""
    if request.gas_price is not None:
        offered = request.gas_price
    elif request.max_fee is not None:
        offered = min(request.max_fee, base_fee + (request.max_priority_fee or 0))
    else:
        offered = base_fee if validation else 0
    cap = request.gas_price if request.gas_price is not None else request.max_fee
    if validation and cap is not None and cap < base_fee:
        raise FeeCapTooLow("0x" + (request.sender or bytes(20)).hex(), cap, base_fee)
    return offered


def _check_sim_call(
    call: SimCall, sender: bytes, nonce: int, balance: int, gas: int, intrinsic: int, cost: int
) -> None:
    """geth's checks of a simulated call: intrinsic gas and funds always, the nonce when one
    is named."""
    who = "0x" + sender.hex()
    if call.nonce is not None and call.nonce < nonce:
        raise NonceTooLow(who, call.nonce, nonce)
    if call.nonce is not None and call.nonce > nonce:
        raise NonceTooHigh(who, call.nonce, nonce)
    if gas < intrinsic:
        raise IntrinsicGasTooLow(gas, intrinsic)
    if balance < cost:
        raise InsufficientFunds(balance, cost)
