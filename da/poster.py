"""The poster: an app's committed blocks, batched, on the DA backend and committed on L1.

One cycle (`Poster.step`), run by a thread beside the sequencer (services/da_node.py):
    first  = inbox.next_block(chain)          the L1 says where to resume: no gap, no duplicate
    blocks = first .. min(committed, first + max_batch_blocks - 1), cut at max_batch_txs
             (max_batch_blocks is at most the inbox's MAX_BATCH_BLOCKS)
    batch -> channel -> payloads (da/channel.py) -> backend.submit each -> refs
    inbox.commit(chain, first, last, keccak(channel), output_root(last), refs)
    record it (PosterStore) -> safe head = last
A cycle posts when the oldest unposted block has waited `max_delay_s` or a full batch is
ready. Any failure (DA or L1 down, a refused transaction) ends the cycle; the loop retries
with exponential back-off (`retry_initial_s` doubling up to `retry_max_s`) and never exits.
Payloads already submitted for the same range are reused on retry (their channel id is
derived from the range, so a retry produces the same bytes).

Heads: safe = the last block of the newest commitment the L1 included; finalized = the last
block of the newest commitment in an L1 block at or below the L1's `finalized` block. Both
are recorded in the poster's database (PosterStore) with every commitment, so a restart
knows them at once; the L1 stays the authority, within what this chain built. The poster
reads the inbox's position at start, before each batch, and every `finality_poll_s`:
    next_block == safe + 1            in step
    next_block <= safe                the owner reverted batches (or the L1 lost them): forget
                                      the records from there and post those blocks again
    next_block >  safe + 1            commitments this poster did not record: adopt them only
                                      if each covers blocks this chain has committed and claims
                                      this chain's output root (a crash between commit and
                                      record); otherwise raise `ForeignBatch` and adopt nothing:
                                      the error is logged and in `status.error`, the records and
                                      heads stay, and posting resumes once the inbox's owner
                                      reverted the foreign batches (`revertBatches`)
L1 reorgs: at the same times the poster reads its commitments not yet final on the L1 (from
the L1's `finalized` block on: no reorg reaches below it) and compares them with its records.
A reorg that removed a commitment moves the inbox's position back (`next_block <= safe`
above): the blocks are posted again, DA payloads included (their references may have gone
with the reorg). A reorg that included the same commitment again in another L1 block moves
its record there, so finality is counted from where it now is. Another commitment under the
same index (not this chain's batch) makes the poster forget its records from there; the next
position check adopts or refuses it as above.

Back-pressure: memory holds one batch at most (`max_batch_txs` bounds it). The backlog of
committed but unposted blocks lives in the node's database; `Backlog` bounds it by making
admission refuse new transactions (JSON-RPC -32005) while it is above `max_backlog_blocks`
blocks or `max_backlog_txs` transactions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import (
    Column,
    LargeBinary,
    MetaData,
    Select,
    Table,
    Text,
    delete,
    func,
    select,
    update,
)

from da.backend import DABackend, DARef
from da.batch import encode_blocks
from da.commitment import (
    MAX_BATCH_BLOCKS,
    Commitment,
    CommitmentRecord,
    InboxWriter,
    encode_refs,
)
from da.compress import Compressor
from da.errors import DAError
from da.frames import CHANNEL_ID_SIZE, encode_frames, encode_payload
from rollup.crypto import keccak
from rollup.errors import Busy, RollupError
from rollup.outputs import output_root
from rollup.types import Block
from storage.engine import Int64, make_engine, sqlite_url, upsert
from storage.migrate import Schema, has_tables, upgrade

__all__ = [
    "ForeignBatch",
    "PosterConfig",
    "BlockSource",
    "PosterStore",
    "POSTER_SCHEMA",
    "poster_metadata",
    "Poster",
    "PosterStatus",
    "Backlog",
    "channel_id_for",
]

log = logging.getLogger(__name__)


class ForeignBatch(DAError):
    """The L1 inbox holds a commitment of this chain that this chain did not build (blocks it
    does not have, or another output root): the poster adopts nothing and retries, and only
    the inbox owner's `revertBatches` lets it go on."""


@dataclass(frozen=True, slots=True)
class PosterConfig:
    max_batch_blocks: int = 2_000
    max_batch_txs: int = 20_000
    max_delay_s: float = 1.0  # post at least this often while there are unposted blocks
    poll_s: float = 0.05
    retry_initial_s: float = 0.5
    retry_max_s: float = 30.0
    finality_poll_s: float = 1.0
    max_backlog_blocks: int = 10_000
    max_backlog_txs: int = 500_000  # ~45 MB of DA at ~90 B a transaction
    compressor: Compressor = field(default_factory=Compressor)


class BlockSource(Protocol):
    """Committed blocks of the chain; called from the poster's thread."""

    def committed_number(self) -> int: ...

    def block(self, number: int) -> Block: ...


def channel_id_for(chain_id: int, first: int, last: int) -> bytes:
    """A channel id derived from the range: a retry of the same range yields the same bytes."""
    numbers = b"".join(n.to_bytes(8, "big") for n in (chain_id, first, last))
    return keccak(b"app-rollup:channel" + numbers)[:CHANNEL_ID_SIZE]


# ---- what was posted, on disk ----

poster_metadata = MetaData()
batches_table = Table(
    "batches",
    poster_metadata,
    Column("idx", Int64, primary_key=True, autoincrement=False),
    Column("first_block", Int64, nullable=False),
    Column("last_block", Int64, nullable=False),
    Column("data_hash", LargeBinary, nullable=False),
    Column("output_root", LargeBinary, nullable=False),
    Column("da_ref", LargeBinary, nullable=False),
    Column("l1_block", Int64, nullable=False),
    Column("l1_tx", LargeBinary, nullable=False),
    Column("txs", Int64),
    Column("bytes", Int64),
    Column("posted_ms", Int64),
)
poster_meta_table = Table(
    "meta",
    poster_metadata,
    Column("key", Text, primary_key=True),
    Column("value", Int64, nullable=False),
)
# the first eight columns are a Commitment's fields after its chain id, in order
_commitment = select(*list(batches_table.c)[:8])
POSTER_SCHEMA = Schema(
    "DA poster",
    Path(__file__).parent / "migrations" / "poster",
    lambda conn: has_tables(conn, "batches"),
)


class PosterStore:
    """The poster's record: every commitment it knows of, and the finalized head.

    A database of its own (a path: SQLite with synchronous=FULL; or a URL), versioned like
    the chain's (da/migrations/poster/). Each method is one transaction, from any thread.
    `bytes` and `txs` are the DA bytes submitted and the transactions carried (NULL for
    commitments learned from the L1 after a crash)."""

    def __init__(self, where: Path | str) -> None:
        if isinstance(where, Path):
            where.parent.mkdir(parents=True, exist_ok=True)
            where = sqlite_url(where)
        self.engine = make_engine(where, synchronous="FULL")
        try:
            upgrade(self.engine, POSTER_SCHEMA)
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    def add(self, c: CommitmentRecord, txs: int | None = None, size: int | None = None) -> None:
        row = {
            "idx": c.index,
            "first_block": c.first_block,
            "last_block": c.last_block,
            "data_hash": bytes(c.data_hash),
            "output_root": bytes(c.output_root),
            "da_ref": bytes(c.da_ref),
            "l1_block": c.l1_block,
            "l1_tx": bytes(c.l1_tx),
            "txs": txs,
            "bytes": size,
            "posted_ms": time.time_ns() // 1_000_000,
        }
        columns = [name for name in row if name != "idx"]
        with self.engine.begin() as conn:
            conn.execute(upsert(self.engine, batches_table, ["idx"], columns), row)

    def last(self) -> Commitment | None:
        rows = self._query(_commitment.order_by(batches_table.c.idx.desc()).limit(1))
        return rows[0] if rows else None

    def all(self) -> list[Commitment]:
        return self._query(_commitment.order_by(batches_table.c.idx))

    def covering(self, block: int) -> Commitment | None:
        """The oldest commitment whose range reaches `block`: the first output root that
        proves what happened in it (a withdrawal's finalization clock starts there)."""
        query = _commitment.where(batches_table.c.last_block >= block)
        rows = self._query(query.order_by(batches_table.c.idx).limit(1))
        return rows[0] if rows else None

    def after_l1(self, l1_block: int) -> list[Commitment]:
        """The commitments recorded in L1 blocks after `l1_block`, oldest first."""
        query = _commitment.where(batches_table.c.l1_block > l1_block)
        return self._query(query.order_by(batches_table.c.idx))

    def moved(self, index: int, l1_block: int, l1_tx: bytes) -> None:
        """Commitment `index` is now in L1 block `l1_block`, by transaction `l1_tx`."""
        change = (
            update(batches_table)
            .where(batches_table.c.idx == index)
            .values(l1_block=l1_block, l1_tx=bytes(l1_tx))
        )
        with self.engine.begin() as conn:
            conn.execute(change)

    def drop_from_block(self, first_block: int) -> int:
        """Forget commitments from `first_block` on (the L1 no longer has them)."""
        forget = delete(batches_table).where(batches_table.c.last_block >= first_block)
        with self.engine.begin() as conn:
            return int(conn.execute(forget).rowcount)

    def finalized_upto(self, l1_block: int) -> int:
        """The last block of the newest commitment included at or below `l1_block`."""
        table = batches_table
        query = select(func.max(table.c.last_block)).where(table.c.l1_block <= l1_block)
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar() or 0)

    def totals(self) -> tuple[int, int]:
        """(transactions, DA bytes) of the batches this poster submitted itself."""
        table = batches_table
        query = select(func.sum(table.c.txs), func.sum(table.c.bytes)).where(
            table.c.bytes.is_not(None)
        )
        with self.engine.connect() as conn:
            txs, size = conn.execute(query).one()
        return int(txs or 0), int(size or 0)

    def get_meta(self, key: str) -> int | None:
        query = select(poster_meta_table.c.value).where(poster_meta_table.c.key == key)
        with self.engine.connect() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else int(value)

    def set_meta(self, key: str, value: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                upsert(self.engine, poster_meta_table, ["key"], ["value"]),
                {"key": key, "value": value},
            )

    def _query(self, query: Select[Any]) -> list[Commitment]:
        with self.engine.connect() as conn:
            return [Commitment(0, *row) for row in conn.execute(query)]


# ---- the poster ----


@dataclass(slots=True)
class PosterStatus:
    safe: int = 0
    finalized: int = 0
    batches: int = 0  # posted by this process
    error: str | None = None  # the last cycle's failure, None once a cycle succeeds
    last_post_ms: int = 0
    bytes: int = 0  # DA payload bytes this process submitted
    failures: int = 0  # cycles that failed (each retried)


class Poster:
    def __init__(
        self,
        chain_id: int,
        source: BlockSource,
        backend: DABackend,
        inbox: InboxWriter,
        store: PosterStore,
        config: PosterConfig | None = None,
        on_heads: Callable[[int, int], None] | None = None,
        inbox_from_l1_block: int = 0,
    ) -> None:
        """`on_heads(safe, finalized)` is called from the poster's thread when either moves;
        `inbox_from_l1_block`: where to look for commitments (the inbox's deployment)."""
        self.chain_id = chain_id
        self.inbox_from_l1_block = inbox_from_l1_block
        self.source, self.backend, self.inbox, self.store = source, backend, inbox, store
        self.config = config or PosterConfig()
        self.on_heads = on_heads
        self.status = PosterStatus()
        last = store.last()
        self.status.safe = last.last_block if last is not None else 0
        self.status.finalized = min(store.get_meta("finalized") or 0, self.status.safe)
        self._synced = False
        self._next_position_check = 0.0
        self._next_finality = 0.0
        # blocks unposted at start have waited an unknown time: the first batch goes at once
        self._waiting_since: float | None = float("-inf")
        self._submitted: dict[bytes, DARef] = {}  # payload hash -> ref, for the range in hand
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # called from the poster's thread with each batch's posting time (the node's metrics)
        self.on_posted: Callable[[float], None] | None = None
        self._publish()

    # -- running

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="da-poster", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = self.config.retry_initial_s
        while not self._stop.is_set():
            try:
                posted = self.step()
            except Exception as exc:  # noqa: BLE001 - the poster must outlive any failure
                self.status.error = f"{type(exc).__name__}: {exc}"
                self.status.failures += 1
                expected = isinstance(exc, (ConnectionError, RollupError))  # DA/L1 trouble
                log.log(
                    logging.WARNING if expected else logging.ERROR,
                    "DA poster cycle failed (retry in %.1f s): %s",
                    delay,
                    self.status.error,
                    exc_info=not expected,
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            delay = self.config.retry_initial_s
            self.status.error = None
            if not posted:
                self._stop.wait(self.config.poll_s)

    def step(self) -> bool:
        """One cycle: follow the L1's position and finality, post one batch if one is due.
        True if it posted."""
        committed = self.source.committed_number()
        now = time.monotonic()
        if not self._synced or now >= self._next_position_check:  # restart, revert, reorg
            self._follow_commitments()
            self._sync(self.inbox.next_block(self.chain_id), committed)
            self._next_position_check = now + self.config.finality_poll_s
        self._follow_finality()
        self._check_behind(committed)
        if committed <= self.status.safe or not self._due(committed):
            return False
        first = self.inbox.next_block(self.chain_id)
        self._sync(first, committed)
        if first > committed:  # everything is posted already (a restart's adoption)
            return False
        self._post(first, committed)
        return True

    def _check_behind(self, committed: int) -> None:
        if self.status.safe > committed:
            raise RuntimeError(
                f"the L1 inbox holds blocks up to {self.status.safe} but this "
                f"node's chain ends at {committed}: its database lost blocks it "
                "had posted"
            )

    # -- one batch

    def _due(self, committed: int) -> bool:
        now = time.monotonic()
        if self._waiting_since is None:
            self._waiting_since = now
        if committed - self.status.safe >= min(self.config.max_batch_blocks, MAX_BATCH_BLOCKS):
            return True
        return now - self._waiting_since >= self.config.max_delay_s

    def _post(self, first: int, committed: int) -> None:
        started = time.monotonic()
        blocks = self._read(first, committed)
        last = blocks[-1].header.number
        # the blocks' decoded transactions are encoded directly: no second decode of each
        channel = self.config.compressor.compress(encode_blocks(self.chain_id, blocks))
        frames = encode_frames(
            channel_id_for(self.chain_id, first, last), channel, self.backend.max_blob_size - 1
        )
        payloads = [encode_payload([frame]) for frame in frames]
        refs = [self._submit(payload) for payload in payloads]
        record = self.inbox.commit(
            self.chain_id,
            first,
            last,
            keccak(channel),
            output_root(blocks[-1].header),
            encode_refs(refs),
        )
        txs, size = sum(len(b.transactions) for b in blocks), sum(map(len, payloads))
        self.store.add(record, txs, size)
        self._submitted.clear()
        # a batch cut short by its bounds leaves a full one behind: post it at once
        self._waiting_since = float("-inf") if last < committed else None
        self.status.batches += 1
        self.status.bytes += size
        self.status.last_post_ms = time.time_ns() // 1_000_000
        self.status.safe = last
        self._publish()
        if self.on_posted is not None:
            self.on_posted(time.monotonic() - started)
        log.info(
            "posted blocks %d-%d (%d txs, %d bytes in %d payloads) as batch %d at L1 block %d",
            first,
            last,
            txs,
            len(channel),
            len(payloads),
            record.index,
            record.l1_block,
        )

    def _read(self, first: int, committed: int) -> list[Block]:
        """Blocks from `first`, at most max_batch_blocks of them, cut at max_batch_txs."""
        blocks: list[Block] = []
        txs = 0
        end = min(committed, first + min(self.config.max_batch_blocks, MAX_BATCH_BLOCKS) - 1)
        for number in range(first, end + 1):
            block = self.source.block(number)
            if blocks and txs + len(block.transactions) > self.config.max_batch_txs:
                break
            blocks.append(block)
            txs += len(block.transactions)
        return blocks

    def _submit(self, payload: bytes) -> DARef:
        key = keccak(payload)
        ref = self._submitted.get(key)
        if ref is None:
            ref = self._submitted[key] = self.backend.submit(payload)
        return ref

    # -- heads

    def _sync(self, first: int, committed: int) -> None:
        """Adopt the L1's position: it may hold commitments we did not record (we crashed
        after committing: adopted only if they are this chain's) or lack ones we did (the
        owner reverted them, or the L1 lost them)."""
        local_next = self.status.safe + 1
        if first > local_next:
            self._synced = False  # until the L1's position is one this chain has
            self._adopt(local_next, first, committed)
            log.info(
                "resumed from the L1 inbox: blocks %d-%d were committed before a restart",
                local_next,
                first - 1,
            )
        elif first < local_next:
            dropped = self.store.drop_from_block(first)
            log.warning(
                "the L1 inbox expects block %d but %d commitment(s) from there were "
                "recorded (reverted by the inbox owner, or lost by the L1); posting "
                "them again",
                first,
                dropped,
            )
        if first != local_next or not self._synced:
            self._synced = True
            self.status.safe = first - 1
            self.status.finalized = min(self.status.finalized, self.status.safe)
            self._submitted.clear()
            self._publish()

    def _adopt(self, local_next: int, first: int, committed: int) -> None:
        """Record the L1's commitments of blocks local_next..first-1, each checked to be
        this chain's own; ForeignBatch (and nothing recorded) if one is not."""
        last = self.store.last()
        since = last.l1_block if last else self.inbox_from_l1_block
        found = [
            r for r in self.inbox.commitments(self.chain_id, since) if r.first_block >= local_next
        ]
        expected = local_next
        for record in found:
            self._check_ours(record, expected, first, committed)
            expected = record.last_block + 1
        if expected != first:
            raise RollupError(
                f"the L1 inbox expects block {first} next, but its commitments "
                f"since L1 block {since} end at block {expected - 1}"
            )
        for record in found:
            self.store.add(record)

    def _check_ours(
        self, record: CommitmentRecord, expected: int, first: int, committed: int
    ) -> None:
        what = (
            f"batch {record.index} (blocks {record.first_block}-{record.last_block}, L1 "
            f"tx 0x{record.l1_tx.hex()})"
        )
        fix = (
            f"not adopting it; the inbox owner can remove it with revertBatches("
            f"{self.chain_id}, {record.index})"
        )
        if record.first_block != expected:
            raise RollupError(f"the L1 inbox's {what} does not follow block {expected - 1}")
        if record.last_block > committed:
            raise ForeignBatch(
                f"the L1 inbox holds blocks up to {first - 1} but this node's "
                f"chain ends at {committed}: {what} is not this chain's (its "
                "database lost them, or another key committed them); "
                f"{fix}"
            )
        ours = output_root(self.source.block(record.last_block).header)
        if record.output_root != ours:
            raise ForeignBatch(
                f"the L1 inbox's {what} claims output root "
                f"0x{record.output_root.hex()}, but this chain's block "
                f"{record.last_block} has 0x{ours.hex()}: a batch this chain did "
                f"not build; {fix}"
            )

    def _follow_commitments(self) -> None:
        """Compare the records not final on the L1 with the L1's commitments (module docstring:
        L1 reorgs)."""
        final_l1 = self.inbox.l1_block_number("finalized")
        records = self.store.after_l1(final_l1)
        if not records:
            return
        on_l1 = {c.index: c for c in self.inbox.commitments(self.chain_id, final_l1 + 1)}
        for record in records:
            found = on_l1.get(record.index)
            if found is None or _where(found) == _where(record):
                continue  # unchanged, or gone: the inbox's position says so (`_sync`)
            if _content(found) == _content(record):
                log.info(
                    "an L1 reorg moved batch %d (blocks %d-%d) from L1 block %d to %d",
                    record.index,
                    record.first_block,
                    record.last_block,
                    record.l1_block,
                    found.l1_block,
                )
                self.store.moved(record.index, found.l1_block, bytes(found.l1_tx))
                continue
            log.warning(
                "after an L1 reorg, batch %d of the inbox is not the one this poster "
                "recorded (blocks %d-%d): forgetting the records from there",
                record.index,
                record.first_block,
                record.last_block,
            )
            self.store.drop_from_block(record.first_block)
            self.status.safe = record.first_block - 1
            self.status.finalized = min(self.status.finalized, self.status.safe)
            self._synced = False
            self._publish()
            return

    def _follow_finality(self) -> None:
        now = time.monotonic()
        if now < self._next_finality:
            return
        self._next_finality = now + self.config.finality_poll_s
        finalized = min(
            self.store.finalized_upto(self.inbox.l1_block_number("finalized")), self.status.safe
        )
        if finalized != self.status.finalized:
            self.status.finalized = finalized
            self.store.set_meta("finalized", finalized)
            self._publish()

    def _publish(self) -> None:
        if self.on_heads is not None:
            self.on_heads(self.status.safe, self.status.finalized)


def _where(c: CommitmentRecord) -> tuple[int, bytes]:
    return c.l1_block, bytes(c.l1_tx)


def _content(c: CommitmentRecord) -> tuple[int, int, bytes, bytes]:
    return c.first_block, c.last_block, bytes(c.data_hash), bytes(c.output_root)


# ---- back-pressure ----


class ChainView(Protocol):
    """What admission knows of the chain (owner thread)."""

    def committed_number(self) -> int: ...

    def tx_count(self, number: int) -> int: ...


class Backlog:
    """Refuses admission while too much committed data is not yet posted.

    Runs on the node's owner thread at every admission: it counts each newly committed
    block's transactions once (a deque of unposted blocks, trimmed as the safe head
    advances), so a check is O(1) amortized."""

    def __init__(
        self, chain: ChainView, safe_head: Callable[[], int], max_blocks: int, max_txs: int
    ) -> None:
        self.chain, self.safe_head = chain, safe_head
        self.max_blocks, self.max_txs = max_blocks, max_txs
        self._counted = chain.committed_number()
        self._unposted: deque[tuple[int, int]] = deque()  # (block, transactions)
        self._txs = 0

    def check(self) -> None:
        blocks, txs = self.refresh()
        if blocks > self.max_blocks or txs > self.max_txs:
            raise Busy(
                f"DA backlog full: {blocks} blocks ({txs} transactions) are not yet "
                f"posted (limits {self.max_blocks} blocks, {self.max_txs} transactions); "
                "retry once the DA poster catches up"
            )

    def refresh(self) -> tuple[int, int]:
        """Count the newly committed blocks and forget the posted ones: (unposted blocks,
        their transactions). Admission calls it through `check`, the metrics directly."""
        committed, safe = self.chain.committed_number(), self.safe_head()
        self._count_new(committed, safe)
        while self._unposted and self._unposted[0][0] <= safe:
            self._txs -= self._unposted.popleft()[1]
        return committed - safe, self._txs

    def pending(self) -> tuple[int, int]:
        """(unposted blocks, unposted transactions counted so far)."""
        return self.chain.committed_number() - self.safe_head(), self._txs

    def _count_new(self, committed: int, safe: int) -> None:
        start = max(self._counted + 1, safe + 1)
        for number in range(start, committed + 1):
            count = self.chain.tx_count(number)
            self._unposted.append((number, count))
            self._txs += count
        self._counted = max(self._counted, committed)
