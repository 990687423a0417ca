"""Checkpoints: what the node holds in memory since the last one, and flushing it.

Every block's writes are durable at once (the store keeps each block with its state changes),
but the store's state table and transaction index are brought up to date only by a
checkpoint: until then the changed keys and the new transactions' locations live here. A
checkpoint swaps these maps out on the owner thread (they are not touched again) and the
store's writer thread turns them into rows in chunks, each queued behind any block writes
that arrived meanwhile, so a large checkpoint does not stall block production. On restart
the node replays the blocks after the store's checkpoint (sequencer/node.py).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

from rollup.blocks import block_entries
from sequencer.config import SequencerConfig
from sequencer.store import Store, StoredBlock

__all__ = ["Checkpoints"]

log = logging.getLogger(__name__)

TxLocation = tuple[int, int]  # (block number, index in the block's entries)


class Checkpoints:
    def __init__(self, store: Store, writer: ThreadPoolExecutor, config: SequencerConfig) -> None:
        self.store, self.writer, self.config = store, writer, config
        self.changes: dict[bytes, bytes | None] = {}  # state since the last checkpoint
        self._recent_tx: dict[bytes, TxLocation] = {}
        self._flushing_tx: dict[bytes, TxLocation] = {}  # being written by a checkpoint
        self._blocks = 0
        self.running = False
        self._done: Future[None] | None = None

    def record(self, stored: StoredBlock) -> None:
        """A committed (or replayed) block: its transactions and state changes."""
        number = stored.block.header.number
        for index, entry in enumerate(block_entries(stored.block)):
            self._recent_tx[entry.hash] = (number, index)
        for key, (_before, after) in stored.changes.items():
            self.changes[key] = after
        self._blocks += 1

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        """Where a transaction not yet in the store's index is; None if not held here."""
        return self._recent_tx.get(tx_hash) or self._flushing_tx.get(tx_hash)

    @property
    def held_transactions(self) -> int:
        return len(self._recent_tx) + len(self._flushing_tx)

    def due(self) -> bool:
        return not self.running and (
            self._blocks >= self.config.checkpoint_blocks
            or len(self.changes) >= self.config.checkpoint_keys
            or len(self._recent_tx) >= self.config.checkpoint_txs
        )

    def start(self, upto: int) -> Future[None]:
        """Flush state and the tx index as of block `upto` (the newest committed), in chunks."""
        values, self.changes = self.changes, {}
        self._flushing_tx, self._recent_tx = self._recent_tx, {}
        self._blocks = 0
        self.running = True
        done: Future[None] = Future()
        rows = iter(self._flushing_tx.items())
        self.writer.submit(self._write_chunk, iter(values.items()), rows, upto, done)
        self._done = done
        return done

    def _write_chunk(
        self,
        items: Iterator[tuple[bytes, bytes | None]],
        rows: Iterator[tuple[bytes, TxLocation]],
        upto: int,
        done: Future[None],
    ) -> None:
        size = self.config.checkpoint_chunk
        try:
            part = list(itertools.islice(items, size))
            tx_part = [(h, b, i) for h, (b, i) in itertools.islice(rows, size)]
            last = len(part) < size and len(tx_part) < size
            self.store.checkpoint_chunk(part, tx_part, upto if last else None)
            if last:
                self.running = False
                done.set_result(None)
            else:  # queue behind any block writes that arrived meanwhile
                self.writer.submit(self._write_chunk, items, rows, upto, done)
        except BaseException as exc:  # pragma: no cover - surfaced through the future
            self.running = False
            log.exception("checkpoint failed")
            done.set_exception(exc)

    def wait(self, timeout: float) -> None:
        """Let a running checkpoint's last chunk land (its chunks queue themselves)."""
        if self._done is not None:
            with contextlib.suppress(Exception):
                self._done.result(timeout=timeout)
