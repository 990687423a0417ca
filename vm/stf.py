"""The state-transition function: one transaction, one block, one genesis.

The sequencer builds blocks with `execute_block` + `seal`; the verifier replays them with
`apply_block`, which calls the same two and then compares every commitment in the header, as
execution-specs' `state_transition` does. A block runs, in order: its deposits from the L1
(`vm.bridge.apply_deposits`), its inbound cross-app messages (`vm.bus.apply_inbound`), its
transactions. Withdrawals any of them start join the withdrawals tree as they happen
(`vm.bridge.record_withdrawals`), and the header commits to the tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rollup.blocks import block_hash, messages_root, receipts_root, transactions_root
from rollup.bloom import bloom_add
from rollup.deposits import Deposit
from rollup.errors import Action, InvalidBlock, RollupError
from rollup.messages import CrossMessage
from rollup.transactions import MAX_INITCODE_SIZE, MAX_TX_GAS, intrinsic_gas
from rollup.types import ZERO_HASH, Block, BlockEnv, BlockHeader, Hash32, Receipt, Transaction
from vm.bridge import (
    InvalidDeposits,
    apply_deposits,
    record_withdrawals,
    withdrawal_count,
    withdrawals_between,
    withdrawals_root_of,
)
from vm.bus import InvalidInbound, apply_inbound, collect, sent_messages
from vm.commitment import StateTree
from vm.interface import ExecutionVM, Message
from vm.state import State, add_balance, code_key, get_account, set_account

__all__ = [
    "ExecutedBlock",
    "BlockFull",
    "InvalidBlockTransaction",
    "execute_block",
    "InvalidTransaction",
    "begin_block",
    "apply_transaction",
    "seal_block",
    "apply_block",
    "SealedBlock",
    "L1Origin",
    "env_of",
]


class InvalidTransaction(RollupError):
    """The transaction cannot be included at all; state is untouched."""

    action = Action.FIX_INPUT


class BlockFull(InvalidTransaction):
    """The transaction's gas does not fit in what is left of the block's: a later block may
    take it (the builder leaves it and the rest over)."""

    action = Action.RETRY

    def __init__(self) -> None:
        super().__init__("gas limit reached")


@dataclass(frozen=True, slots=True)
class SealedBlock:
    block: Block
    changes: dict[bytes, tuple[bytes | None, bytes | None]]  # key -> (before, after)


def _check(
    state: State, env: BlockEnv, tx: Transaction, block_gas_used: int
) -> tuple[int, int, int]:
    """Validity before execution; returns (intrinsic gas, sender nonce, sender balance)."""
    nonce, balance = get_account(state, tx.sender)
    if tx.nonce != nonce:
        raise InvalidTransaction(f"nonce mismatch: tx {tx.nonce}, state {nonce}")
    if tx.chain_id is not None and tx.chain_id != env.chain_id:
        raise InvalidTransaction("wrong chain id")
    if tx.max_fee < env.base_fee:
        raise InvalidTransaction("max fee per gas less than block base fee")
    if tx.max_priority_fee > tx.max_fee:
        raise InvalidTransaction("max priority fee per gas higher than max fee per gas")
    if state.get(code_key(tx.sender)):
        raise InvalidTransaction("sender not an eoa")  # EIP-3607
    if tx.to is None and len(tx.data) > MAX_INITCODE_SIZE:
        raise InvalidTransaction("max initcode size exceeded")  # EIP-3860
    intrinsic = intrinsic_gas(tx)
    if tx.gas < intrinsic:
        raise InvalidTransaction("intrinsic gas too low")
    if tx.gas > MAX_TX_GAS:
        raise InvalidTransaction("transaction gas limit too high")  # EIP-7825
    if block_gas_used + tx.gas > env.gas_limit:
        raise BlockFull()
    if balance < tx.gas * tx.max_fee + tx.value:
        raise InvalidTransaction("insufficient funds for gas * price + value")
    return intrinsic, nonce, balance


def begin_block(state: State, env: BlockEnv, vm: ExecutionVM) -> None:
    """What every block does before its first transaction."""
    vm.begin_block(state, env)
    state.commit()


def apply_transaction(
    state: State,
    env: BlockEnv,
    vm: ExecutionVM,
    tx: Transaction,
    block_gas_used: int,
    outbox: list[CrossMessage] | None = None,
) -> Receipt:
    """Execute `tx`; a failure inside execution is a receipt with status 0, never an error.

    Fees are credited to the coinbase once per block, in `seal_block`. Cross-app messages the
    transaction sends are appended to `outbox` (the block's outbound list).
    """
    intrinsic, nonce, balance = _check(state, env, tx, block_gas_used)
    price = tx.effective_gas_price(env.base_fee)
    if tx.to is not None and not vm.runs_code(state, tx.to):
        # A call that runs no code needs no VM, as in Ethereum: one debit, one credit.
        set_account(state, tx.sender, nonce + 1, balance - intrinsic * price - tx.value)
        add_balance(state, tx.to, tx.value)
        state.commit()
        return Receipt(1, intrinsic, block_gas_used + intrinsic, price, ())
    set_account(state, tx.sender, nonce + 1, balance - tx.gas * price)
    msg = Message(
        tx.sender, tx.to, tx.value, tx.data, tx.gas - intrinsic, tx.sender, price, tx.access_list
    )
    result = vm.execute(state, env, msg)
    if result.success:
        record_withdrawals(state, env, result)
    sent = sent_messages(state, env, result)
    if sent:
        if outbox is None:
            raise RuntimeError("a transaction sent cross-app messages; pass an outbox")
        collect(outbox, sent)
    gas_used = min(tx.gas, intrinsic + result.gas_used)
    add_balance(state, tx.sender, (tx.gas - gas_used) * price)
    state.commit()
    return Receipt(
        status=1 if result.success else 0,
        gas_used=gas_used,
        cumulative_gas_used=block_gas_used + gas_used,
        effective_gas_price=price,
        logs=result.logs if result.success else (),
        contract_address=result.contract_address,
        return_data=result.output,
    )


@dataclass(frozen=True, slots=True)
class L1Origin:
    """The L1 block a block names: the newest whose deposits it may include."""

    number: int = 0
    hash: Hash32 = ZERO_HASH


def seal_block(
    state: State,
    parent: BlockHeader,
    env: BlockEnv,
    timestamp_ms: int,
    transactions: Sequence[Transaction],
    receipts: Sequence[Receipt],
    tree: StateTree,
    origin: L1Origin = L1Origin(),
    inbound: Sequence[CrossMessage] = (),
    inbound_receipts: Sequence[Receipt] = (),
    outbound: Sequence[CrossMessage] = (),
    deposits: Sequence[Deposit] = (),
    deposit_receipts: Sequence[Receipt] = (),
    first_withdrawal: int | None = None,
) -> SealedBlock:
    """Pay the block's fees to its coinbase, then compute every commitment of the block.
    `first_withdrawal`: the withdrawal count before the block (its withdrawals follow it)."""
    fees = sum(r.gas_used * r.effective_gas_price for r in receipts)
    if fees:
        add_balance(state, env.coinbase, fees)
        state.commit()
    changes = state.changes()
    bloom = 0
    for receipt in (*deposit_receipts, *inbound_receipts, *receipts):  # every log of the block
        for log in receipt.logs:
            bloom = bloom_add(bloom, log)
    count = withdrawal_count(state)
    first = count if first_withdrawal is None else first_withdrawal
    header = BlockHeader(
        number=env.number,
        parent_hash=block_hash(parent),
        timestamp=env.timestamp,
        timestamp_ms=timestamp_ms,
        coinbase=env.coinbase,
        state_root=Hash32(tree.update((key, after) for key, (_, after) in changes.items())),
        transactions_root=transactions_root(transactions, deposits),
        receipts_root=receipts_root(receipts, deposit_receipts),
        messages_root=messages_root(outbound, inbound, inbound_receipts),
        withdrawals_root=Hash32(withdrawals_root_of(state)),
        logs_bloom=bloom.to_bytes(256, "big"),
        gas_limit=env.gas_limit,
        gas_used=receipts[-1].cumulative_gas_used if receipts else 0,
        base_fee=env.base_fee,
        l1_origin=origin.number,
        chain_id=env.chain_id,
        l1_origin_hash=origin.hash,
    )
    withdrawals = tuple(withdrawals_between(state, env.chain_id, first, count))
    block = Block(
        header,
        block_hash(header),
        tuple(transactions),
        tuple(receipts),
        tuple(inbound),
        tuple(inbound_receipts),
        tuple(outbound),
        tuple(deposits),
        tuple(deposit_receipts),
        withdrawals,
    )
    return SealedBlock(block, changes)


def env_of(header: BlockHeader) -> BlockEnv:
    return BlockEnv(
        number=header.number,
        timestamp=header.timestamp,
        coinbase=header.coinbase,
        base_fee=header.base_fee,
        gas_limit=header.gas_limit,
        chain_id=header.chain_id,
    )


@dataclass(slots=True)
class ExecutedBlock:
    """A block's execution before its seal: what `execute_block` included and left out."""

    state: State
    env: BlockEnv
    inbound: Sequence[CrossMessage]
    inbound_receipts: list[Receipt]
    transactions: list[Transaction]
    receipts: list[Receipt]
    outbound: list[CrossMessage]
    dropped: list[tuple[Transaction, InvalidTransaction]]  # lenient mode: could not be included
    leftover: list[Transaction]  # lenient mode: did not fit the block's gas
    deposits: Sequence[Deposit] = ()
    deposit_receipts: list[Receipt] = field(default_factory=list)
    first_withdrawal: int = 0  # the withdrawal count before the block

    def seal(
        self,
        parent: BlockHeader,
        timestamp_ms: int,
        tree: StateTree,
        origin: L1Origin = L1Origin(),
    ) -> SealedBlock:
        return seal_block(
            self.state,
            parent,
            self.env,
            timestamp_ms,
            self.transactions,
            self.receipts,
            tree,
            origin,
            self.inbound,
            self.inbound_receipts,
            self.outbound,
            self.deposits,
            self.deposit_receipts,
            self.first_withdrawal,
        )


class InvalidBlockTransaction(InvalidTransaction):
    """Strict mode: transaction `index` of the block could not be included."""

    action = Action.STOP

    def __init__(self, index: int, tx: Transaction, reason: InvalidTransaction) -> None:
        super().__init__(f"transaction {index} (0x{tx.hash.hex()}) cannot be included: {reason}")
        self.index, self.tx, self.reason = index, tx, reason


def execute_block(
    state: State,
    env: BlockEnv,
    vm: ExecutionVM,
    inbound: Sequence[CrossMessage],
    transactions: Sequence[Transaction],
    strict: bool,
    deposits: Sequence[Deposit] = (),
) -> ExecutedBlock:
    """Run a block's body: its deposits, its inbound messages, then its transactions.

    The sequencer builds with `strict=False`: a transaction that cannot be included is dropped
    (or, once the block's gas is used up, it and the rest are left over). A verifier replays
    with `strict=True`: any such transaction raises `InvalidBlockTransaction`. Deposits and
    inbound messages out of order raise `InvalidDeposits` / `InvalidInbound` in both modes,
    before they change anything.
    """
    begin_block(state, env, vm)
    first_withdrawal = withdrawal_count(state)
    deposit_receipts = apply_deposits(state, env, vm, deposits)
    outbound: list[CrossMessage] = []
    inbound_receipts = apply_inbound(state, env, vm, inbound, outbound)
    done = ExecutedBlock(
        state,
        env,
        inbound,
        inbound_receipts,
        [],
        [],
        outbound,
        [],
        [],
        deposits,
        deposit_receipts,
        first_withdrawal,
    )
    gas = 0
    for index, tx in enumerate(transactions):
        try:
            receipt = apply_transaction(state, env, vm, tx, gas, outbound)
        except InvalidTransaction as exc:
            if strict:
                raise InvalidBlockTransaction(index, tx, exc) from None
            if isinstance(exc, BlockFull):
                done.leftover = list(transactions[index:])
                break
            done.dropped.append((tx, exc))
            continue
        done.transactions.append(tx)
        done.receipts.append(receipt)
        gas = receipt.cumulative_gas_used
    return done


def apply_block(
    state: State, parent: BlockHeader, block: Block, vm: ExecutionVM, tree: StateTree
) -> SealedBlock:
    """Re-execute `block` on top of `parent`'s state and check every commitment.

    `tree` must hold `parent`'s state; it holds `block`'s after, and is left as it was if the
    block is invalid.
    """
    header = block.header
    if header.number != parent.number + 1 or header.parent_hash != block_hash(parent):
        raise InvalidBlock(f"block {header.number} does not extend block {parent.number}")
    try:
        executed = execute_block(
            state,
            env_of(header),
            vm,
            block.inbound,
            block.transactions,
            strict=True,
            deposits=block.deposits,
        )
    except (InvalidDeposits, InvalidInbound, InvalidTransaction) as exc:
        raise InvalidBlock(f"block {header.number}: {exc}") from None
    origin = L1Origin(header.l1_origin, header.l1_origin_hash)
    sealed = executed.seal(parent, header.timestamp_ms, tree, origin)
    try:
        _compare(header, sealed.block.header)
    except InvalidBlock:
        tree.update((key, before) for key, (before, _) in sealed.changes.items())
        raise
    return sealed


def _compare(claimed: BlockHeader, computed: BlockHeader) -> None:
    for name in (
        "state_root",
        "transactions_root",
        "receipts_root",
        "messages_root",
        "withdrawals_root",
        "logs_bloom",
        "gas_used",
    ):
        if getattr(claimed, name) != getattr(computed, name):
            raise InvalidBlock(f"block {claimed.number}: {name} mismatch")
