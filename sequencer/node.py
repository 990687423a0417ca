"""`Sequencer`: one app's node, wiring admission, mempool, builder, chain state and store.

Threading: every method runs on the owner thread (the event loop in `services`, the test's
thread in the harness) except the store writes, which `commit` hands to one writer thread so
they stay in order. `mark_committed` must be called on the owner thread once a write is done;
only then do the block, its receipts and its state become visible to readers.

An operator may pause the sequencer (`pause`, `resume`; services/rpc/admin.py): while paused
it refuses new transactions (`SequencerPaused`, retry later), keeps its pool and builds no
block; resuming continues from the newest built block, and `on_resume` listeners (the block
producer's wake-up) hear of it.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from rollup.blocks import block_entries, block_hash
from rollup.deposits import Deposit
from rollup.errors import (
    InvalidBlock,
    InvalidParams,
    MalformedMessage,
    RollupError,
    SenderNotEOA,
    SequencerPaused,
)
from rollup.manifest import Manifest, fee_vault
from rollup.messages import CrossMessage
from rollup.types import Address, Block, BlockHeader, Receipt, Transaction
from sequencer.admission import check_account, check_static, decode_chunk
from sequencer.builder import BlockBuilder
from sequencer.chain import ChainState
from sequencer.checkpoint import Checkpoints
from sequencer.config import SequencerConfig
from sequencer.inbox import Inbox
from sequencer.l1view import L1View, PostedOutputs
from sequencer.mempool import Mempool
from sequencer.store import Store, StoredBlock
from vm.commitment import StateTree
from vm.evm import EvmVM
from vm.evm.artifact import Artifact
from vm.genesis import build_genesis
from vm.interface import ExecutionVM
from vm.native import AppRuntime, NativeVM
from vm.native.loader import load_app_class
from vm.state import DictReader, State, code_key, get_account
from vm.stf import SealedBlock

__all__ = ["Sequencer", "SequencerConfig", "TxStatus"]

log = logging.getLogger(__name__)

Waiter = Callable[["Receipt | RollupError"], None]


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction is: in a committed block, or still pending."""

    tx: Transaction | Deposit  # a deposit only once in a block
    block: Block | None
    index: int  # as Ethereum tools number a block's transactions: deposits first


class Sequencer:
    def __init__(
        self,
        manifest: Manifest,
        app_code: str | Artifact | None,
        db_url: str,
        config: SequencerConfig | None = None,
    ) -> None:
        """`app_code`: a native app's source, or an EVM app's compiled contract."""
        self.manifest = manifest
        self.config = config or SequencerConfig()
        self.chain_id = manifest.chain_id
        self.runtime = self._load_runtime(manifest, app_code)
        self.vm: ExecutionVM = NativeVM([self.runtime] if self.runtime else [])
        self.evm = manifest.vm == "evm"
        self.store = Store(db_url)
        self.state = ChainState(self.store.get_state, self.config.history_entries)
        self.mempool = Mempool(
            max_size=self.config.max_pool,
            max_queued_per_sender=self.config.pool_account_queue,
            max_queued=self.config.pool_global_queue,
            account_slots=self.config.pool_account_slots,
            lifetime=self.config.pool_lifetime,
            base_fee=manifest.base_fee,
            clock=time.monotonic,
            on_discard=lambda tx, error: self._notify(tx.hash, error),
        )
        self.inbox = Inbox()  # cross-app messages received, not yet in a block
        # the DA poster's record of posted batches (services/da_node.py): withdrawal proofs
        # name the output root that covers them (sequencer/withdrawals.py)
        self.posted: PostedOutputs | None = None
        self.coinbase = fee_vault(manifest.name)
        self.builder = BlockBuilder(
            manifest,
            self.config,
            self.state,
            self.mempool,
            self.inbox,
            self.coinbase,
            lambda tx, error: self._notify(tx.hash, error),
        )
        # Newest blocks the DA poster has posted / seen finalized on L1 (services/da_node.py
        # sets them); None without a poster, and the `safe`/`finalized` tags answer `latest`.
        self.safe_head: int | None = None
        self.finalized_head: int | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self.checkpoints = Checkpoints(self.store, self._writer, self.config)
        self.decoder = ThreadPoolExecutor(self.config.decode_threads, thread_name_prefix="recover")
        self._blocks: OrderedDict[int, StoredBlock] = OrderedDict()
        self._cached_txs = 0
        self._hash_to_number: dict[bytes, int] = {}
        self._waiters: dict[bytes, list[Waiter]] = {}
        # owner-thread callbacks: a block became visible; a transaction entered the pool
        self.on_commit: list[Callable[[Block], None]] = []
        self.on_pending: list[Callable[[Transaction], None]] = []
        self.on_resume: list[Callable[[], None]] = []
        self._open(app_code)

    # ---- start-up ----

    @staticmethod
    def _load_runtime(manifest: Manifest, code: str | Artifact | None) -> AppRuntime | None:
        if manifest.vm == "evm":
            if not isinstance(code, Artifact):
                raise RollupError("an evm app needs its compiled contract")
            return None
        if code is None:
            return None
        if not isinstance(code, str):
            raise RollupError("a native app needs its Python source")
        app_class = load_app_class(code, manifest.code, manifest.class_name)
        return AppRuntime(app_class, manifest.address, code)

    def _open(self, app_code: str | Artifact | None) -> None:
        if self.store.head_number() is None:
            self._write_genesis(app_code if self.evm else self.runtime)
        checkpoint = self.store.checkpoint()
        if self.store.state_size() <= self.config.preload_max_keys:
            self.state.preload(self.store.all_state())
        head: StoredBlock | None = None
        for stored in self.store.iter_blocks(checkpoint + 1):
            self.state.apply(stored.block.header.number, stored.changes)
            self._index_committed(stored)
            head = stored
        if head is None:
            head = self.store.get_block(checkpoint)
            assert head is not None, "database has a checkpoint but no block at it"
            self._cache_block(head)
            self.state.executed = checkpoint
        self.state.oldest_history = max(checkpoint, 0)
        self.tree = self._build_tree()
        if self.evm:
            self.vm = EvmVM(self.chain_id, self.manifest.gas_limit, self._all_items())
        if self.tree.root != head.block.header.state_root:
            raise InvalidBlock(
                f"stored state does not match the state root of block "
                f"{head.block.header.number}: the database is damaged"
            )
        self.head: BlockHeader = head.block.header  # newest built
        self.committed: BlockHeader = head.block.header  # newest durable and visible
        log.info("opened chain %d at block %d", self.chain_id, self.head.number)

    def _build_tree(self) -> StateTree:
        if self.state.complete:
            return StateTree(self.state.items())
        tree = StateTree(self.store.all_state())
        tree.update(self.checkpoints.changes.items())
        return tree

    def _all_items(self) -> Iterable[tuple[bytes, bytes | None]]:
        if self.state.complete:
            return self.state.items()
        return itertools.chain(self.store.all_state(), self.checkpoints.changes.items())

    def _write_genesis(self, app: AppRuntime | str | Artifact | None) -> None:
        runtime = app if isinstance(app, (AppRuntime, Artifact)) else None
        header, changes = build_genesis(self.manifest, runtime, DictReader())
        block = Block(header, block_hash(header), (), ())
        self.store.write_block(SealedBlock(block, changes))

    # ---- admission ----

    def admit(self, tx: Transaction) -> bool:
        """Put a decoded transaction in the pool; True if executable now. Raises TxRejected."""
        if self.paused:
            raise SequencerPaused()
        check_static(tx, self.manifest.base_fee, self.manifest.gas_limit, allow_create=self.evm)
        code = self.state.get(code_key(tx.sender))
        if code:  # EIP-3607
            raise SenderNotEOA("0x" + tx.sender.hex(), len(code))
        state_nonce, balance = get_account(self.state, tx.sender)
        check_account(tx, state_nonce, balance, self.mempool.owed(tx.sender, tx.nonce))
        ready = self.mempool.add(tx, state_nonce)
        self.mempool.revalidate(tx.sender, state_nonce, balance)  # later queued ones make way
        for listener in self.on_pending:
            listener(tx)
        return ready

    def submit_raw(self, raw: bytes) -> Transaction:
        """Decode, check and pool one raw transaction (the harness and single sends)."""
        result = decode_chunk([raw], self.chain_id)[0]
        if isinstance(result, RollupError):
            raise result
        self.admit(result)
        return result

    def watch(self, tx_hash: bytes, waiter: Waiter) -> None:
        """Call `waiter` with the receipt once the transaction's block is committed, or with the
        error if the builder had to drop it."""
        self._waiters.setdefault(tx_hash, []).append(waiter)

    def drop_transaction(self, tx_hash: bytes) -> list[Transaction]:
        """An operator lets go of a pooled transaction: it and its sender's later nonces leave
        the pool (their waiters hear TxDropped); the sender may send that nonce again."""
        dropped = self.mempool.drop(tx_hash, "an operator removed it")
        if dropped:
            log.warning(
                "operator dropped %d pooled transaction(s) from 0x%s, from nonce %d",
                len(dropped),
                dropped[0].sender.hex(),
                dropped[0].nonce,
            )
        return dropped

    # ---- pausing ----

    @property
    def paused(self) -> bool:
        return self.builder.paused

    def pause(self) -> None:
        """Refuse new transactions and build no blocks until `resume`; the pool is kept."""
        if not self.builder.paused:
            log.warning("sequencer of chain %d paused at block %d", self.chain_id, self.head.number)
        self.builder.paused = True

    def resume(self) -> None:
        """Accept transactions and build again, from the newest built block."""
        if self.builder.paused:
            log.warning(
                "sequencer of chain %d resumed at block %d", self.chain_id, self.head.number
            )
        self.builder.paused = False
        for listener in self.on_resume:
            listener()

    # ---- building ----

    @property
    def l1(self) -> L1View | None:
        """The L1 the node follows for deposits and origins; services set it."""
        return self.builder.l1

    @l1.setter
    def l1(self, view: L1View | None) -> None:
        self.builder.l1 = view

    def has_work(self) -> bool:
        return self.builder.has_work(self.head)

    def inbound_progress(self, src_chain: int) -> int:
        """The next nonce from `src_chain` that a block will execute (newest built state)."""
        return self.builder.inbound_progress(src_chain)

    def receive(self, message: CrossMessage) -> bool:
        """Hold an arriving message for a block; False if it is executed or held already."""
        if message.dst_chain != self.chain_id:
            raise MalformedMessage(
                f"message for chain {message.dst_chain} delivered to chain {self.chain_id}"
            )
        return self.inbox.add(message, self.inbound_progress(message.src_chain))

    def build_block(self, now_ms: int, empty_ok: bool = False) -> SealedBlock | None:
        """Execute the next block on top of the newest built one (sequencer/builder.py);
        `empty_ok`: build it even with nothing to put in it (a heartbeat)."""
        sealed = self.builder.build(self.head, self.vm, self.tree, now_ms, empty_ok)
        if sealed is not None:
            self.head = sealed.block.header
        return sealed

    def _notify(self, tx_hash: bytes, result: Receipt | RollupError) -> None:
        for waiter in self._waiters.pop(tx_hash, ()):
            waiter(result)

    # ---- committing ----

    def commit(self, sealed: SealedBlock) -> Future[None]:
        """Write the block in the writer thread; call `mark_committed` when the future is done."""
        return self._writer.submit(self.store.write_block, sealed)

    def mark_committed(self, sealed: SealedBlock) -> None:
        stored = StoredBlock(sealed.block, sealed.changes)
        self._index_committed(stored)
        self.committed = sealed.block.header
        for tx, receipt in zip(sealed.block.transactions, sealed.block.receipts, strict=True):
            self._notify(tx.hash, receipt)
        # The block changed these accounts: their pooled transactions must still be usable and
        # affordable at the newest built state (the pool's view); waiters of dropped ones hear.
        for key in sealed.changes:
            if key[0] == 0 and self.mempool.holds(key[1:]):  # an account key (vm.state)
                nonce, balance = get_account(self.state, key[1:])
                self.mempool.revalidate(Address(key[1:]), nonce, balance)
        self.mempool.expire()
        for listener in self.on_commit:
            listener(sealed.block)
        if self.checkpoints.due():
            self.checkpoint()

    def produce(self, now_ms: int) -> SealedBlock | None:
        """Build, write and publish one block synchronously (harness and tests)."""
        sealed = self.build_block(now_ms)
        if sealed is not None:
            self.commit(sealed).result()
            self.mark_committed(sealed)
        return sealed

    def _index_committed(self, stored: StoredBlock) -> None:
        self._cache_block(stored)
        self.checkpoints.record(stored)

    def cached(self) -> tuple[int, int]:
        """(blocks, transactions) held in the block cache (the soak benchmark reads them)."""
        return len(self._blocks), self._cached_txs

    def _cache_block(self, stored: StoredBlock) -> None:
        number = stored.block.header.number
        self._blocks[number] = stored
        self._hash_to_number[stored.block.hash] = number
        self._cached_txs += len(stored.block.transactions)
        while len(self._blocks) > 1 and (
            len(self._blocks) > self.config.block_cache
            or self._cached_txs > self.config.block_cache_txs
        ):
            _, old = self._blocks.popitem(last=False)
            self._hash_to_number.pop(old.block.hash, None)
            self._cached_txs -= len(old.block.transactions)

    def checkpoint(self) -> Future[None]:
        """Flush state and the tx index as of the newest committed block (checkpoint.py)."""
        return self.checkpoints.start(self.committed.number)

    # ---- reads (committed data only) ----

    def block(self, number: int) -> Block | None:
        if number > self.committed.number or number < 0:
            return None
        stored = self._blocks.get(number) or self.store.get_block(number)
        return None if stored is None else stored.block

    def headers(self, start: int, stop: int) -> list[BlockHeader]:
        """Committed headers start <= number < stop, from the cache or the store's header
        column (a scan over many blocks reads no bodies)."""
        stop = min(stop, self.committed.number + 1)
        if start >= stop:
            return []
        cached = [self._blocks.get(n) for n in range(start, stop)]  # may race with eviction
        if all(cached):
            return [stored.block.header for stored in cached if stored is not None]
        return self.store.headers(start, stop)

    def block_by_hash(self, block_hash: bytes) -> Block | None:
        number = self._hash_to_number.get(block_hash)
        if number is None:
            number = self.store.block_number_by_hash(block_hash)
        return None if number is None else self.block(number)

    def transaction(self, tx_hash: bytes) -> TxStatus | None:
        location = self.checkpoints.tx_location(tx_hash) or self.store.tx_location(tx_hash)
        if location is not None and location[0] <= self.committed.number:
            block = self.block(location[0])
            if block is not None:
                return TxStatus(block_entries(block)[location[1]], block, location[1])
        pending = self.mempool.by_hash.get(tx_hash)
        if pending is not None:
            return TxStatus(pending, None, -1)
        return None

    def state_at(self, number: int) -> State:
        if number > self.committed.number:
            raise InvalidParams(f"block {number} is in the future")
        return State(self.state.reader_at(number))

    def close(self) -> None:
        self.checkpoints.wait(timeout=120)
        self._writer.shutdown(wait=True)
        self.decoder.shutdown(wait=False)
        self.store.close()
