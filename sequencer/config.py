"""A node's limits: block contents, the pool, checkpoints, caches and history."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SequencerConfig"]


@dataclass(frozen=True, slots=True)
class SequencerConfig:
    max_block_txs: int = 2_000
    checkpoint_blocks: int = 2_000
    checkpoint_keys: int = 100_000
    checkpoint_txs: int = 200_000  # the in-memory tx index is emptied by a checkpoint
    checkpoint_chunk: int = 500
    history_entries: int = 500_000  # changed keys kept for reads at older blocks
    block_cache: int = 512
    block_cache_txs: int = 50_000  # full blocks hold ~1.5 KB a transaction
    max_pool: int = 200_000  # pooled transactions, executable and queued
    pool_account_slots: int = 16  # executable per sender that a full pool protects (geth)
    pool_account_queue: int = 64  # future-nonce transactions per sender (geth)
    pool_global_queue: int = 20_000  # future-nonce transactions in all: a tenth of the pool
    pool_lifetime: float = 900.0  # seconds a sender's queue may wait with no progress
    decode_threads: int = 1
    preload_max_keys: int = 5_000_000  # hold state in memory when it has at most this many keys
    max_block_messages: int = 2_000  # inbound cross-app messages per block
    max_block_deposits: int = 256  # L1 deposits per block (each up to 5M gas, not charged)
    # Test only: a sequencer that ignores deposits, to show that verifiers catch censorship.
    fault_ignore_deposits: bool = False
