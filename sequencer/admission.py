"""Admission: is this transaction acceptable to the pool right now? geth's checks and words."""

from __future__ import annotations

from concurrent.futures import Executor

from rollup.errors import (
    FeeCapTooLow,
    GasLimitExceeded,
    InitcodeTooLarge,
    InsufficientFunds,
    IntrinsicGasTooLow,
    NonceTooLow,
    OversizedData,
    RollupError,
    TipAboveFeeCap,
    TxGasLimitTooHigh,
    TxRejected,
    UnsupportedTransaction,
)
from rollup.transactions import (
    MAX_INITCODE_SIZE,
    MAX_TX_GAS,
    MAX_TX_SIZE,
    decode_transaction,
    intrinsic_gas,
)
from rollup.types import Transaction

__all__ = ["check_static", "check_account", "decode_chunk", "decode_many"]


def check_static(tx: Transaction, base_fee: int, gas_limit: int, allow_create: bool) -> None:
    """Checks that depend on the transaction alone and the chain's parameters."""
    sender = "0x" + tx.sender.hex()
    if len(tx.raw) > MAX_TX_SIZE:
        raise OversizedData(len(tx.raw), MAX_TX_SIZE)
    if tx.to is None and not allow_create:
        raise UnsupportedTransaction("contract creation is not supported by this app's VM")
    if tx.to is None and len(tx.data) > MAX_INITCODE_SIZE:
        raise InitcodeTooLarge(len(tx.data), MAX_INITCODE_SIZE)
    if tx.max_priority_fee > tx.max_fee:
        raise TipAboveFeeCap(sender, tx.max_priority_fee, tx.max_fee)
    if tx.gas > gas_limit:
        raise GasLimitExceeded()
    if tx.gas > MAX_TX_GAS:
        raise TxGasLimitTooHigh(MAX_TX_GAS, tx.gas)
    needed = intrinsic_gas(tx)
    if tx.gas < needed:
        raise IntrinsicGasTooLow(tx.gas, needed)
    if tx.max_fee < base_fee:
        raise FeeCapTooLow(sender, tx.max_fee, base_fee)


def check_account(tx: Transaction, state_nonce: int, balance: int, owed: int) -> None:
    """Checks against the sender's account: its state nonce, and its balance less what its
    pooled transactions (executable and queued, `Mempool.owed`) may already cost."""
    if tx.nonce < state_nonce:
        raise NonceTooLow("0x" + tx.sender.hex(), tx.nonce, state_nonce)
    cost = tx.max_cost()
    if balance < cost + owed:
        raise InsufficientFunds(max(balance - owed, 0), cost)


def decode_chunk(raws: list[bytes], chain_id: int) -> list[Transaction | RollupError]:
    out: list[Transaction | RollupError] = []
    for raw in raws:
        try:
            out.append(decode_transaction(raw, chain_id))
        except TxRejected as exc:
            out.append(exc)
    return out


def decode_many(
    raws: list[bytes], chain_id: int, executor: Executor | None, chunk: int = 64
) -> list[Transaction | RollupError]:
    """Decode and recover senders; big batches are split across threads.

    coincurve releases the GIL while it recovers, so the threads run in parallel.
    """
    if executor is None or len(raws) <= chunk:
        return decode_chunk(raws, chain_id)
    parts = [raws[i : i + chunk] for i in range(0, len(raws), chunk)]
    futures = [executor.submit(decode_chunk, part, chain_id) for part in parts]
    out: list[Transaction | RollupError] = []
    for future in futures:
        out.extend(future.result())
    return out
