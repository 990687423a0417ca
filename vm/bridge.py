"""The L1 bridge inside the state-transition function: deposits in, withdrawals out.

bridge/README.md has the whole design. Here:
- `apply_deposits`: a block's deposits, first of all, each exactly once and in the Portal's
  nonce order. A deposit credits `mint` to its sender and its token amount to `to` (installing
  the bridged token on its first deposit), then runs its call; only the call's failure is
  undone.
- `record_withdrawals`: after every successful execution (transactions, deposits' calls,
  cross-app calls and callbacks), the withdrawals it started become leaves of the withdrawals
  tree, numbered in order; their value, held at L2_TO_L1_ADDRESS, is burned. Both VMs report a
  withdrawal the same way, as a WithdrawalInitiated log of L2_TO_L1_ADDRESS (the EVM's L2ToL1
  contract emits it; the native VM's system call and SDK make it with `withdrawal_log`), so
  wallets and explorers see withdrawals in receipts on either VM.

State (flat keys beside vm/state.py's, vm/bus.py's and vm/native/upgrades.py's):
    b"\\x0a" ++ u8(level)  -> the withdrawals tree's branch node at `level` (rollup/withdrawals)
    b"\\x0b"               -> the number of withdrawals so far
    b"\\x0d"               -> the next deposit nonce to execute
    b"\\x0e" ++ u64(nonce) -> withdrawal `nonce`: rlp([sender, target, value, l1_token,
                              token_amount, gas_limit, data]) (proofs are built from these)
    bridged token storage   slot 3 l1_token, slot 4 decimals, slot 5 symbol, set at install
"""

from __future__ import annotations

from collections.abc import Sequence

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError

from rollup import rlp
from rollup.crypto import keccak
from rollup.deposits import (
    BRIDGE_ADDRESS,
    L2_TO_L1_ADDRESS,
    Deposit,
    bridged_token_address,
)
from rollup.errors import ExecutionError, InvalidBlock
from rollup.rlp import decode_int, encode_int
from rollup.transactions import message_intrinsic_gas
from rollup.types import ZERO_ADDRESS, Address, BlockEnv, Hash32, Log, Receipt
from rollup.withdrawals import (
    DEPTH,
    MAX_DATA,
    TreeBranch,
    Withdrawal,
    append_leaf,
    branch_root,
)
from vm.interface import ExecResult, ExecutionVM, Message, WithdrawalRequest
from vm.state import (
    State,
    StateReader,
    add_balance,
    get_account,
    get_balance,
    get_code,
    set_account,
)
from vm.state import storage_key as _storage_key

__all__ = [
    "InvalidDeposits",
    "WithdrawError",
    "start_withdrawal",
    "next_deposit_nonce",
    "apply_deposits",
    "record_withdrawals",
    "withdrawal_count",
    "withdrawal_log",
    "withdrawals_root_of",
    "withdrawal_at",
    "withdrawals_between",
    "WITHDRAWAL_INITIATED_TOPIC",
    "MAX_WITHDRAWAL_GAS",
    "TOKEN_SLOT_L1_TOKEN",
    "bridge_mint_calldata",
    "bridged_token_origin",
    "bridged_token_storage",
    "initiate_withdrawal_calldata",
]

_TREE, _COUNT, _DEPOSIT_NONCE, _RECORD = b"\x0a", b"\x0b", b"\x0d", b"\x0e"
MAX_WITHDRAWAL_GAS = 30_000_000
SYSTEM_GAS = 1_000_000  # a bridged token's mint: our own code, bounded
TOKEN_SLOT_L1_TOKEN, TOKEN_SLOT_DECIMALS, TOKEN_SLOT_SYMBOL = 3, 4, 5
WITHDRAWAL_INITIATED_TOPIC = keccak(
    b"WithdrawalInitiated(address,address,uint256,address,uint256,uint64,bytes)"
)
_BRIDGE_MINT = keccak(b"bridgeMint(address,uint256)")[:4]
_INITIATE = keccak(b"initiateWithdrawal(address,uint64,bytes)")[:4]


class InvalidDeposits(InvalidBlock):
    """A block's deposits that cannot be executed: out of nonce order, or repeated."""


class WithdrawError(ExecutionError):
    """A withdrawal the chain refuses (bounds, balance); the call that asked for it fails."""


def start_withdrawal(
    state: State,
    sender: Address,
    target: Address,
    value: int,
    gas_limit: int,
    data: bytes,
) -> WithdrawalRequest:
    """Move `value` of `sender`'s balance to L2_TO_L1_ADDRESS (burned once the execution
    succeeds) and return the request: the native VM's `initiateWithdrawal` and the SDK's
    `withdraw`. The EVM's L2ToL1 contract checks the same bounds."""
    if target == ZERO_ADDRESS or len(target) != 20:
        raise WithdrawError("the L1 target must be a non-zero address")
    if gas_limit > MAX_WITHDRAWAL_GAS or len(data) > MAX_DATA:
        raise WithdrawError(
            f"gas limit at most {MAX_WITHDRAWAL_GAS}, data at most {MAX_DATA} bytes"
        )
    if value < 0 or get_balance(state, sender) < value:
        raise WithdrawError("insufficient balance for the withdrawal")
    if value:
        add_balance(state, sender, -value)
        add_balance(state, L2_TO_L1_ADDRESS, value)
    return WithdrawalRequest(sender, target, value, ZERO_ADDRESS, 0, gas_limit, data)


def bridge_mint_calldata(to: bytes, amount: int) -> bytes:
    return _BRIDGE_MINT + bytes(12) + to + amount.to_bytes(32, "big")


def initiate_withdrawal_calldata(target: bytes, gas_limit: int, data: bytes) -> bytes:
    """L2ToL1's `initiateWithdrawal(address,uint64,bytes)`, ABI-encoded (what the CLI sends)."""
    padded = data + bytes(-len(data) % 32)
    return (
        _INITIATE
        + bytes(12)
        + target
        + gas_limit.to_bytes(32, "big")
        + (96).to_bytes(32, "big")
        + len(data).to_bytes(32, "big")
        + padded
    )


# ---- deposits --------------------------------------------------------------------------------


def next_deposit_nonce(state: State | StateReader) -> int:
    return decode_int(state.get(_DEPOSIT_NONCE) or b"")


def apply_deposits(
    state: State,
    env: BlockEnv,
    vm: ExecutionVM,
    deposits: Sequence[Deposit],
    first_gas: int = 0,
) -> list[Receipt]:
    """Execute a block's deposits in order; InvalidDeposits, before any change, if they are
    not the next ones. `first_gas`: cumulative gas before them (0: they come first)."""
    expected = next_deposit_nonce(state)
    for offset, deposit in enumerate(deposits):
        if deposit.nonce != expected + offset:
            raise InvalidDeposits(
                f"deposit 0x{deposit.source_hash.hex()} has nonce {deposit.nonce}, "
                f"expected {expected + offset}"
            )
    receipts: list[Receipt] = []
    cumulative = first_gas
    for deposit in deposits:
        receipt = _apply_deposit(state, env, vm, deposit, cumulative)
        cumulative = receipt.cumulative_gas_used
        receipts.append(receipt)
    return receipts


def _apply_deposit(
    state: State, env: BlockEnv, vm: ExecutionVM, d: Deposit, cumulative: int
) -> Receipt:
    state.set(_DEPOSIT_NONCE, encode_int(d.nonce + 1))
    if d.mint:
        add_balance(state, d.sender, d.mint)
    logs: list[Log] = []
    if d.l1_token != ZERO_ADDRESS and d.token_amount:
        logs += _mint_token(state, env, vm, d)
    state.commit()  # what the L1 paid for stands, whatever the call does
    intrinsic = message_intrinsic_gas(d.data, False)
    result = _deposit_call(state, env, vm, d, intrinsic)
    gas_used = min(d.gas, intrinsic + result.gas_used)
    return Receipt(
        1 if result.success else 0,
        gas_used,
        cumulative + gas_used,
        0,
        tuple(logs) + (result.logs if result.success else ()),
        None,
        result.output,
    )


def bridged_token_storage(
    token: bytes, l1_token: bytes, decimals: int, symbol: bytes
) -> dict[bytes, bytes | None]:
    """The storage a new bridged token starts with (slots 3-5: its L1 token, decimals,
    symbol), as state keys and values: a VM installing one writes exactly these."""
    values = {
        TOKEN_SLOT_L1_TOKEN: l1_token,
        TOKEN_SLOT_DECIMALS: bytes([decimals]),
        TOKEN_SLOT_SYMBOL: symbol,
    }
    return {
        _storage_key(token, slot.to_bytes(32, "big")): value.lstrip(b"\x00") or None
        for slot, value in values.items()
    }


def _mint_token(state: State, env: BlockEnv, vm: ExecutionVM, d: Deposit) -> list[Log]:
    token = bridged_token_address(d.l1_token)
    if not get_code(state, token):
        vm.install_bridged_token(
            state, token, bridged_token_storage(token, d.l1_token, d.decimals, d.symbol)
        )
        state.commit()
    msg = Message(
        BRIDGE_ADDRESS,
        token,
        0,
        bridge_mint_calldata(d.to, d.token_amount),
        SYSTEM_GAS,
        BRIDGE_ADDRESS,
        0,
    )
    result = vm.execute(state, env, msg)
    if not result.success:  # our own code with a bounded amount: cannot happen but by a bug
        raise AssertionError(f"minting the bridged token failed: 0x{result.output.hex()}")
    return list(result.logs)


def _deposit_call(
    state: State, env: BlockEnv, vm: ExecutionVM, d: Deposit, intrinsic: int
) -> ExecResult:
    if not d.data and not vm.runs_code(state, d.to):
        if get_balance(state, d.sender) < d.value:
            return ExecResult(False, 0, b"")
        add_balance(state, d.sender, -d.value)
        add_balance(state, d.to, d.value)
        state.commit()
        return ExecResult(True, 0, b"")
    if get_balance(state, d.sender) < d.value:
        return ExecResult(False, 0, b"")
    snapshot = state.snapshot()
    msg = Message(d.sender, d.to, d.value, d.data, max(d.gas - intrinsic, 0), d.sender, 0)
    result = vm.execute(state, env, msg)
    if not result.success:
        state.revert(snapshot)
        return result
    record_withdrawals(state, env, result)
    state.commit()
    return result


# ---- withdrawals ----------------------------------------------------------------------------


def withdrawal_count(state: State | StateReader) -> int:
    return decode_int(state.get(_COUNT) or b"")


def _branch(state: State | StateReader) -> TreeBranch:
    count = withdrawal_count(state)
    levels = tuple(state.get(_TREE + bytes((level,))) or bytes(32) for level in range(DEPTH))
    return TreeBranch(count, levels)


def withdrawals_root_of(state: State | StateReader) -> bytes:
    """The header's `withdrawals_root`: the tree over every withdrawal of the chain so far."""
    return branch_root(_branch(state))


def record_withdrawals(state: State, env: BlockEnv, result: ExecResult) -> list[Withdrawal]:
    """Number and record the withdrawals a successful execution started; burn their value."""
    requests = [r for log in result.logs if (r := _from_log(state, log)) is not None]
    if not requests:
        return []
    tree = _branch(state)
    out: list[Withdrawal] = []
    for r in requests:
        w = Withdrawal(
            env.chain_id,
            tree.count,
            r.sender,
            r.target,
            r.value,
            r.l1_token,
            r.token_amount,
            r.gas_limit,
            r.data,
        )
        state.set(_RECORD + w.nonce.to_bytes(8, "big"), _encode_record(w))
        tree = append_leaf(tree, w.hash)
        out.append(w)
    state.set(_COUNT, encode_int(tree.count))
    for level, node in enumerate(tree.branch):
        state.set(_TREE + bytes((level,)), node if node != bytes(32) else None)
    nonce, _balance = get_account(state, L2_TO_L1_ADDRESS)
    set_account(state, L2_TO_L1_ADDRESS, nonce, 0)  # the value leaves the chain's supply
    return out


def withdrawal_log(r: WithdrawalRequest) -> Log:
    """The WithdrawalInitiated log of L2ToL1 (vm/contracts/L2ToL1.sol) for `r`."""
    data = abi_encode(
        ["uint256", "address", "uint256", "uint64", "bytes"],
        [r.value, r.l1_token, r.token_amount, r.gas_limit, r.data],
    )
    topics = (WITHDRAWAL_INITIATED_TOPIC, bytes(12) + r.sender, bytes(12) + r.target)
    return Log(L2_TO_L1_ADDRESS, tuple(Hash32(t) for t in topics), data)


def _from_log(state: State, log: Log) -> WithdrawalRequest | None:
    """An L2ToL1 log's withdrawal; a token withdrawal counts only from the canonical token."""
    if log.address != L2_TO_L1_ADDRESS or not log.topics:
        return None
    if log.topics[0] != WITHDRAWAL_INITIATED_TOPIC or len(log.topics) != 3:
        return None
    try:
        value, token, amount, gas_limit, data = abi_decode(
            ["uint256", "address", "uint256", "uint64", "bytes"], log.data
        )
    except (DecodingError, ValueError):
        return None
    sender, target = Address(log.topics[1][12:]), Address(log.topics[2][12:])
    l1_token = Address(bytes.fromhex(token[2:]))
    if amount and not _is_canonical_caller(state, log, l1_token):
        return None
    if gas_limit > MAX_WITHDRAWAL_GAS or len(data) > MAX_DATA:
        return None
    return WithdrawalRequest(sender, target, value, l1_token, amount, gas_limit, data)


def _is_canonical_caller(state: State, log: Log, l1_token: bytes) -> bool:
    """A token withdrawal's log comes from a token's `withdraw` (L2ToL1 requires the caller to
    be `bridged_token_address(l1Token)`); here too: that token must be installed, for it."""
    return bridged_token_origin(state, bridged_token_address(l1_token)) == l1_token


def bridged_token_origin(state: State | StateReader, token: bytes) -> Address | None:
    """The L1 token whose canonical bridged token sits at `token`, or None if it is not one."""
    raw = state.get(_storage_key(token, TOKEN_SLOT_L1_TOKEN.to_bytes(32, "big")))
    if not raw or not get_code(state, token):
        return None
    l1_token = Address(raw.rjust(20, b"\x00")[-20:])
    return l1_token if bridged_token_address(l1_token) == token else None


def _encode_record(w: Withdrawal) -> bytes:
    return rlp.encode(
        [
            w.sender,
            w.target,
            encode_int(w.value),
            w.l1_token,
            encode_int(w.token_amount),
            encode_int(w.gas_limit),
            w.data,
        ]
    )


def withdrawal_at(state: State | StateReader, chain_id: int, nonce: int) -> Withdrawal | None:
    raw = state.get(_RECORD + nonce.to_bytes(8, "big"))
    if not raw:
        return None
    sender, target, value, token, amount, gas, data = (
        rlp.as_bytes(x) for x in rlp.as_list(rlp.decode(raw), 7)
    )
    return Withdrawal(
        chain_id,
        nonce,
        Address(sender),
        Address(target),
        decode_int(value),
        Address(token),
        decode_int(amount),
        decode_int(gas),
        data,
    )


def withdrawals_between(
    state: State | StateReader, chain_id: int, first: int, stop: int
) -> list[Withdrawal]:
    """Withdrawals `first <= nonce < stop` as recorded in `state`."""
    out = []
    for nonce in range(first, stop):
        w = withdrawal_at(state, chain_id, nonce)
        if w is None:
            raise KeyError(f"withdrawal {nonce} is not recorded")
        out.append(w)
    return out
