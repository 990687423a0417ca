"""`Sequencer`: one app's node, wiring admission, mempool, builder, chain state and store.

Threading: every method runs on the owner thread (the event loop in `services`, the test's
thread in the harness) except the store writes, which `commit` hands to one writer thread so
they stay in order. `mark_committed` must be called on the owner thread once a write is done;
only then do the block, its receipts and its state become visible to readers.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    TxRejected,
)
from rollup.manifest import Manifest, fee_vault
from rollup.messages import CrossMessage
from rollup.types import Address, Block, BlockEnv, BlockHeader, Receipt, Transaction
from sequencer.admission import check_account, check_static, decode_chunk
from sequencer.chain import ChainState
from sequencer.inbox import Inbox
from sequencer.l1view import L1View, PostedOutputs
from sequencer.mempool import Mempool
from sequencer.store import Store, StoredBlock
from vm.bridge import next_deposit_nonce
from vm.bus import inbound_progress
from vm.commitment import StateTree
from vm.evm import EvmVM
from vm.evm.artifact import Artifact
from vm.genesis import build_genesis
from vm.interface import ExecutionVM
from vm.native import AppRuntime, NativeVM
from vm.native.loader import load_app_class
from vm.state import DictReader, State, code_key, get_account
from vm.stf import InvalidTransaction, L1Origin, SealedBlock, execute_block

__all__ = ["Sequencer", "SequencerConfig", "TxStatus"]

log = logging.getLogger("sequencer")

Waiter = Callable[["Receipt | RollupError"], None]


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


@dataclass(frozen=True, slots=True)
class TxStatus:
    """Where a transaction is: in a committed block, or still pending."""

    tx: Transaction | Deposit  # a deposit only once in a block
    block: Block | None
    index: int  # as Ethereum tools number a block's transactions: deposits first


class Sequencer:
    def __init__(self, manifest: Manifest, app_code: str | Artifact | None, db_url: str,
                 config: SequencerConfig | None = None) -> None:  # fmt: skip
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
            max_size=self.config.max_pool, max_queued_per_sender=self.config.pool_account_queue,
            max_queued=self.config.pool_global_queue, account_slots=self.config.pool_account_slots,
            lifetime=self.config.pool_lifetime, base_fee=manifest.base_fee, clock=time.monotonic,
            on_discard=lambda tx, error: self._notify(tx.hash, error),
        )  # fmt: skip
        self.inbox = Inbox()  # cross-app messages received, not yet in a block
        self.l1: L1View | None = None  # services set it when the node follows an L1
        # the DA poster's record of posted batches (services/da_node.py): withdrawal proofs
        # name the output root that covers them (sequencer/withdrawals.py)
        self.posted: PostedOutputs | None = None
        self.coinbase = fee_vault(manifest.name)
        # Newest blocks the DA poster has posted / seen finalized on L1 (services/da_node.py
        # sets them); None without a poster, and the `safe`/`finalized` tags answer `latest`.
        self.safe_head: int | None = None
        self.finalized_head: int | None = None
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="store-writer")
        self.decoder = ThreadPoolExecutor(self.config.decode_threads, thread_name_prefix="recover")
        self._blocks: OrderedDict[int, StoredBlock] = OrderedDict()
        self._cached_txs = 0
        self._hash_to_number: dict[bytes, int] = {}
        self._recent_tx: dict[bytes, tuple[int, int]] = {}
        self._flushing_tx: dict[bytes, tuple[int, int]] = {}
        self._since_checkpoint: dict[bytes, bytes | None] = {}
        self._blocks_since_checkpoint = 0
        self._checkpoint_running = False
        self._checkpoint_done: Future[None] | None = None
        self._waiters: dict[bytes, list[Waiter]] = {}
        # owner-thread callbacks: a block became visible; a transaction entered the pool
        self.on_commit: list[Callable[[Block], None]] = []
        self.on_pending: list[Callable[[Transaction], None]] = []
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
            raise InvalidBlock(f"stored state does not match the state root of block "
                               f"{head.block.header.number}: the database is damaged")  # fmt: skip
        self.head: BlockHeader = head.block.header  # newest built
        self.committed: BlockHeader = head.block.header  # newest durable and visible
        log.info("opened chain %d at block %d", self.chain_id, self.head.number)

    def _build_tree(self) -> StateTree:
        if self.state.complete:
            return StateTree(self.state.items())
        tree = StateTree(self.store.all_state())
        tree.update(self._since_checkpoint.items())
        return tree

    def _all_items(self) -> Iterable[tuple[bytes, bytes | None]]:
        if self.state.complete:
            return self.state.items()
        return itertools.chain(self.store.all_state(), self._since_checkpoint.items())

    def _write_genesis(self, app: AppRuntime | str | Artifact | None) -> None:
        runtime = app if isinstance(app, (AppRuntime, Artifact)) else None
        header, changes = build_genesis(self.manifest, runtime, DictReader())
        block = Block(header, block_hash(header), (), ())
        self.store.write_block(SealedBlock(block, changes))

    # ---- admission ----

    def admit(self, tx: Transaction) -> bool:
        """Put a decoded transaction in the pool; True if executable now. Raises TxRejected."""
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

    # ---- building ----

    def has_work(self) -> bool:
        return (self.mempool.ready_count > 0 or self.inbox.ready(self.inbound_progress)
                or bool(self._due_deposits(self._next_origin(), 1)))  # fmt: skip

    # ---- deposits from the L1 ----

    def _next_origin(self) -> L1Origin:
        """The L1 origin of the next block: the view's, never older than the parent's."""
        parent = L1Origin(self.head.l1_origin, self.head.l1_origin_hash)
        if self.l1 is None:
            return parent
        origin = self.l1.origin()
        return origin if origin.number > parent.number else parent

    def _due_deposits(self, origin: L1Origin, limit: int) -> Sequence[Deposit]:
        if self.l1 is None or self.config.fault_ignore_deposits:
            return ()
        return self.l1.deposits(next_deposit_nonce(self.state), origin, limit)

    # ---- cross-app messages in ----

    def inbound_progress(self, src_chain: int) -> int:
        """The next nonce from `src_chain` that a block will execute (newest built state)."""
        return inbound_progress(self.state, src_chain)

    def receive(self, message: CrossMessage) -> bool:
        """Hold an arriving message for a block; False if it is executed or held already."""
        if message.dst_chain != self.chain_id:
            raise MalformedMessage(
                f"message for chain {message.dst_chain} delivered to chain {self.chain_id}"
            )
        return self.inbox.add(message, self.inbound_progress(message.src_chain))

    def build_block(self, now_ms: int, empty_ok: bool = False) -> SealedBlock | None:
        """Execute the next block from the inbox and the pool on top of the newest built block;
        `empty_ok`: build it even with nothing to put in it (a heartbeat)."""
        inbound = self.inbox.take(self.inbound_progress, self.config.max_block_messages)
        txs = self.mempool.take(self.config.max_block_txs)
        origin = self._next_origin()
        deposits = self._due_deposits(origin, self.config.max_block_deposits)
        if not txs and not inbound and not deposits and not empty_ok:
            return None
        parent = self.head
        env = BlockEnv(
            number=parent.number + 1,
            timestamp=max(parent.timestamp, now_ms // 1000),
            coinbase=self.coinbase,
            base_fee=self.manifest.base_fee,
            gas_limit=self.manifest.gas_limit,
            chain_id=self.chain_id,
        )
        executed = execute_block(State(self.state), env, self.vm, inbound, txs, strict=False,
                                 deposits=deposits)  # fmt: skip
        for tx, exc in executed.dropped:
            self._drop(tx, exc)
        if executed.leftover:
            self._requeue(executed.state, executed.leftover)
        if not executed.transactions and not inbound and not deposits and not empty_ok:
            return None
        timestamp_ms = max(parent.timestamp_ms, now_ms)
        sealed = executed.seal(parent, timestamp_ms, self.tree, origin)
        self.state.apply(env.number, sealed.changes)
        self.head = sealed.block.header
        return sealed

    def _requeue(self, state: State, txs: list[Transaction]) -> None:
        """Put back in front what did not fit, against the nonces of the block being built."""
        self.mempool.requeue(txs, lambda sender: get_account(state, sender)[0])

    def _drop(self, tx: Transaction, reason: InvalidTransaction) -> None:
        error = TxRejected(str(reason))
        self._notify(tx.hash, error)
        for other in self.mempool.drop_sender_from(tx.sender, tx.nonce):
            self._notify(other.hash, error)

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
        self._maybe_checkpoint()

    def produce(self, now_ms: int) -> SealedBlock | None:
        """Build, write and publish one block synchronously (harness and tests)."""
        sealed = self.build_block(now_ms)
        if sealed is not None:
            self.commit(sealed).result()
            self.mark_committed(sealed)
        return sealed

    def _index_committed(self, stored: StoredBlock) -> None:
        number = stored.block.header.number
        self._cache_block(stored)
        for index, entry in enumerate(block_entries(stored.block)):
            self._recent_tx[entry.hash] = (number, index)
        for key, (_before, after) in stored.changes.items():
            self._since_checkpoint[key] = after
        self._blocks_since_checkpoint += 1

    def _cache_block(self, stored: StoredBlock) -> None:
        number = stored.block.header.number
        self._blocks[number] = stored
        self._hash_to_number[stored.block.hash] = number
        self._cached_txs += len(stored.block.transactions)
        while len(self._blocks) > 1 and (len(self._blocks) > self.config.block_cache
                                         or self._cached_txs > self.config.block_cache_txs):
            _, old = self._blocks.popitem(last=False)
            self._hash_to_number.pop(old.block.hash, None)
            self._cached_txs -= len(old.block.transactions)

    # ---- checkpoints ----

    def _maybe_checkpoint(self) -> None:
        if self._checkpoint_running:
            return
        if (self._blocks_since_checkpoint < self.config.checkpoint_blocks
                and len(self._since_checkpoint) < self.config.checkpoint_keys
                and len(self._recent_tx) < self.config.checkpoint_txs):  # fmt: skip
            return
        self.checkpoint()

    def checkpoint(self) -> Future[None]:
        """Flush state and the tx index as of the newest committed block, in chunks.

        The owner thread only swaps the dicts out (they are not touched again); the writer
        thread turns them into rows, so a large checkpoint does not stall block production.
        """
        values, self._since_checkpoint = self._since_checkpoint, {}
        self._flushing_tx, self._recent_tx = self._recent_tx, {}
        flushing_tx = self._flushing_tx
        self._blocks_since_checkpoint = 0
        self._checkpoint_running = True
        upto = self.committed.number
        done: Future[None] = Future()
        size = self.config.checkpoint_chunk

        def write_chunk(items: Iterator[tuple[bytes, bytes | None]],
                        rows: Iterator[tuple[bytes, tuple[int, int]]]) -> None:  # fmt: skip
            try:
                part = list(itertools.islice(items, size))
                tx_part = [(h, b, i) for h, (b, i) in itertools.islice(rows, size)]
                last = len(part) < size and len(tx_part) < size
                self.store.checkpoint_chunk(part, tx_part, upto if last else None)
                if last:
                    self._checkpoint_running = False
                    done.set_result(None)
                else:  # queue behind any block writes that arrived meanwhile
                    self._writer.submit(write_chunk, items, rows)
            except BaseException as exc:  # pragma: no cover - surfaced through the future
                self._checkpoint_running = False
                log.exception("checkpoint failed")
                done.set_exception(exc)

        self._writer.submit(write_chunk, iter(values.items()), iter(flushing_tx.items()))
        self._checkpoint_done = done
        return done

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
        location = (self._recent_tx.get(tx_hash) or self._flushing_tx.get(tx_hash)
                    or self.store.tx_location(tx_hash))  # fmt: skip
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
        if self._checkpoint_done is not None:
            # its chunks queue themselves on the writer: let the last one land first
            with contextlib.suppress(Exception):
                self._checkpoint_done.result(timeout=120)
        self._writer.shutdown(wait=True)
        self.decoder.shutdown(wait=False)
        self.store.close()
