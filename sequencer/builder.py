"""The block builder: what goes in the next block, and executing it on the newest built one.

A block takes, in this order: the L1 deposits that are due (by the L1 view's origin, in
deposit-nonce order), the inbound cross-app messages that continue each channel's run, and
the pool's executable transactions. Transactions the STF refuses are dropped with their
sender's later ones (`on_drop` tells their waiters); those that did not fit go back to the
front of the pool. Building applies the block to the chain state at once (the next block
builds on it) and leaves writing it to the node.

A paused builder (`paused`, set by the operator through the node: sequencer/node.py) has no
work and builds nothing, not even a heartbeat; the pool, the inbox and the deposits wait, and
the first block after it resumes continues on the newest built one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rollup.deposits import Deposit
from rollup.errors import TxRejected
from rollup.manifest import Manifest
from rollup.types import Address, BlockEnv, BlockHeader, Transaction
from sequencer.chain import ChainState
from sequencer.config import SequencerConfig
from sequencer.inbox import Inbox
from sequencer.l1view import L1View
from sequencer.mempool import Mempool
from vm.bridge import next_deposit_nonce
from vm.bus import inbound_progress
from vm.commitment import StateTree
from vm.interface import ExecutionVM
from vm.state import State, get_account
from vm.stf import InvalidTransaction, L1Origin, SealedBlock, execute_block

__all__ = ["BlockBuilder"]

OnDrop = Callable[[Transaction, TxRejected], None]


class BlockBuilder:
    def __init__(
        self,
        manifest: Manifest,
        config: SequencerConfig,
        state: ChainState,
        mempool: Mempool,
        inbox: Inbox,
        coinbase: Address,
        on_drop: OnDrop,
    ) -> None:
        self.manifest, self.config = manifest, config
        self.state, self.mempool, self.inbox = state, mempool, inbox
        self.coinbase, self.on_drop = coinbase, on_drop
        self.l1: L1View | None = None  # services set it when the node follows an L1
        self.paused = False

    def inbound_progress(self, src_chain: int) -> int:
        """The next nonce from `src_chain` that a block will execute (newest built state)."""
        return inbound_progress(self.state, src_chain)

    def has_work(self, parent: BlockHeader) -> bool:
        if self.paused:
            return False
        return (
            self.mempool.ready_count > 0
            or self.inbox.ready(self.inbound_progress)
            or bool(self._due_deposits(self._next_origin(parent), 1))
        )

    def build(
        self,
        parent: BlockHeader,
        vm: ExecutionVM,
        tree: StateTree,
        now_ms: int,
        empty_ok: bool = False,
    ) -> SealedBlock | None:
        """Execute the next block on `parent` (the newest built block); None when there was
        nothing to put in it, unless `empty_ok` (a heartbeat); None while paused."""
        if self.paused:
            return None
        inbound = self.inbox.take(self.inbound_progress, self.config.max_block_messages)
        txs = self.mempool.take(self.config.max_block_txs)
        origin = self._next_origin(parent)
        deposits = self._due_deposits(origin, self.config.max_block_deposits)
        if not txs and not inbound and not deposits and not empty_ok:
            return None
        env = BlockEnv(
            number=parent.number + 1,
            timestamp=max(parent.timestamp, now_ms // 1000),
            coinbase=self.coinbase,
            base_fee=self.manifest.base_fee,
            gas_limit=self.manifest.gas_limit,
            chain_id=self.manifest.chain_id,
        )
        executed = execute_block(
            State(self.state), env, vm, inbound, txs, strict=False, deposits=deposits
        )
        for tx, exc in executed.dropped:
            self._drop(tx, exc)
        if executed.leftover:
            self._requeue(executed.state, executed.leftover)
        if not executed.transactions and not inbound and not deposits and not empty_ok:
            return None
        sealed = executed.seal(parent, max(parent.timestamp_ms, now_ms), tree, origin)
        self.state.apply(env.number, sealed.changes)
        return sealed

    # ---- deposits from the L1 ----

    def _next_origin(self, parent: BlockHeader) -> L1Origin:
        """The L1 origin of the next block: the view's, never older than the parent's."""
        previous = L1Origin(parent.l1_origin, parent.l1_origin_hash)
        if self.l1 is None:
            return previous
        origin = self.l1.origin()
        return origin if origin.number > previous.number else previous

    def _due_deposits(self, origin: L1Origin, limit: int) -> Sequence[Deposit]:
        if self.l1 is None or self.config.fault_ignore_deposits:
            return ()
        return self.l1.deposits(next_deposit_nonce(self.state), origin, limit)

    # ---- what did not go in ----

    def _requeue(self, state: State, txs: list[Transaction]) -> None:
        """Put back in front what did not fit, against the nonces of the block being built."""
        self.mempool.requeue(txs, lambda sender: get_account(state, sender)[0])

    def _drop(self, tx: Transaction, reason: InvalidTransaction) -> None:
        error = TxRejected(str(reason))
        self.on_drop(tx, error)
        for other in self.mempool.drop_sender_from(tx.sender, tx.nonce):
            self.on_drop(other, error)
