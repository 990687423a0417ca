"""The poster against fakes at its ports (a LocalChain, LocalDA, an in-memory inbox): order,
retries, restarts without gaps or duplicates, heads, the back-pressure gate, and batches it
did not build: never adopted, reported, and replaced after the inbox owner's revert; its
record written before migrations opens with its commitments."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from da.backend import DARef
from da.commitment import Commitment, decode_refs
from da.errors import TemporaryDAError
from da.local import LocalDA
from da.poster import (
    POSTER_SCHEMA,
    Backlog,
    ForeignBatch,
    Poster,
    PosterConfig,
    PosterStore,
    channel_id_for,
    poster_metadata,
)
from rollup.errors import LimitExceeded
from rollup.outputs import output_root
from storage.migrate import drift, head_of, revision_of
from tests.support import wait_for

FAST = PosterConfig(
    max_delay_s=0.0, poll_s=0.01, retry_initial_s=0.01, retry_max_s=0.05, finality_poll_s=0.0
)


def _wait(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """A poster thread's progress, polled at its own pace (FAST polls every 10 ms)."""
    wait_for(condition, what, timeout, interval=0.01)


class FlakyDA(LocalDA):
    """LocalDA that refuses `failures` submissions first, as a backend that is down."""

    def __init__(self, path: Path, failures: int = 0) -> None:
        super().__init__(path)
        self.failures = failures
        self.submitted = 0

    def submit(self, data: bytes) -> DARef:
        if self.failures > 0:
            self.failures -= 1
            raise TemporaryDAError("DA backend down (test)")
        self.submitted += 1
        return super().submit(data)


def _poster(
    tmp_path: Path,
    chain: Any,
    source: type,
    inbox: Any,
    backend: Any = None,
    config: PosterConfig = FAST,
    heads: list[tuple[int, int]] | None = None,
) -> Poster:
    store = PosterStore(tmp_path / "poster.sqlite")
    backend = backend if backend is not None else LocalDA(tmp_path / "da")

    def publish(safe: int, finalized: int) -> None:
        if heads is not None:
            heads.append((safe, finalized))

    return Poster(chain.node.chain_id, source(chain), backend, inbox, store, config, publish)


def _drain(poster: Poster) -> int:
    posted = 0
    while poster.step():
        posted += 1
    return posted


def _assert_contiguous(inbox: Any, head: int) -> None:
    ranges = [(c.first_block, c.last_block) for c in inbox.items]
    assert [c.index for c in inbox.items] == list(range(len(inbox.items)))
    assert ranges[0][0] == 1 and ranges[-1][1] == head
    assert all(b[0] == a[1] + 1 for a, b in zip(ranges, ranges[1:]))


def test_posts_committed_blocks_in_order(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    heads: list[tuple[int, int]] = []
    config = PosterConfig(max_delay_s=0.0, max_batch_blocks=3, finality_poll_s=0.0)
    poster = _poster(tmp_path, chain, chain_source, inbox, config=config, heads=heads)
    grow(chain, 7)
    assert _drain(poster) == 3  # 3 + 3 + 1 blocks
    _assert_contiguous(inbox, 7)
    last = inbox.items[-1]
    assert last.output_root == output_root(chain.node.block(7).header)
    assert poster.status.safe == 7 and chain.node.committed.number == 7
    assert heads[-1][0] == 7
    # the refs name the data, in the local store, under the deterministic channel id
    refs = decode_refs(last.da_ref)
    assert all(ref.backend == "local" for ref in refs)
    stored = LocalDA(tmp_path / "da", readonly=True).get(refs[0])
    assert channel_id_for(chain.node.chain_id, 7, 7) in stored


def test_finalized_head_follows_the_l1(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox(finality_lag=2)
    heads: list[tuple[int, int]] = []
    poster = _poster(tmp_path, chain, chain_source, inbox, heads=heads)
    grow(chain, 1)
    poster.step()
    assert poster.status.safe == 1 and poster.status.finalized == 0
    inbox.mine(2)
    poster.step()
    assert poster.status.finalized == 1 and heads[-1] == (1, 1)
    assert poster.store.get_meta("finalized") == 1


def test_a_down_backend_is_retried_and_nothing_is_lost_or_repeated(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    backend = FlakyDA(tmp_path / "da", failures=5)
    poster = _poster(tmp_path, chain, chain_source, inbox, backend=backend)
    grow(chain, 3)
    poster.start()
    try:
        _wait(lambda: poster.status.safe >= 3, "blocks 1-3 through the retries")
        grow(chain, 2)
        _wait(lambda: poster.status.safe >= 5, "blocks 4-5")
    finally:
        poster.stop()
    assert backend.failures == 0 and poster.status.error is None
    _assert_contiguous(inbox, 5)


def test_an_unreachable_l1_is_retried(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    inbox.down = True
    poster = _poster(tmp_path, chain, chain_source, inbox)
    grow(chain, 2)
    poster.start()
    try:
        _wait(lambda: poster.status.error is not None, "the poster to report the L1")
        assert "unreachable" in (poster.status.error or "")
        inbox.down = False
        _wait(lambda: poster.status.safe >= 2, "blocks 1-2 once the L1 is back")
    finally:
        poster.stop()
    _assert_contiguous(inbox, 2)


class CrashingStore(PosterStore):
    """Dies between the L1 commit and the local record, as a killed process would."""

    def add(self, c: Any, txs: int | None = None, size: int | None = None) -> None:
        raise SystemExit("killed after the commit")


def test_restart_after_a_crash_between_commit_and_record(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    grow(chain, 2)
    store = CrashingStore(tmp_path / "poster.sqlite")
    crashing = Poster(
        chain.node.chain_id, chain_source(chain), LocalDA(tmp_path / "da"), inbox, store, FAST
    )
    with pytest.raises(SystemExit):
        crashing.step()
    store.close()
    assert len(inbox.items) == 1  # committed on L1, not recorded locally
    grow(chain, 2)
    restarted = _poster(tmp_path, chain, chain_source, inbox)
    assert restarted.status.safe == 0  # the local record knows nothing yet
    _drain(restarted)
    _assert_contiguous(inbox, 4)
    assert [c.first_block for c in restarted.store.all()] == [1, 3]  # adopted from the L1


def test_restart_resumes_from_its_record(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    first = _poster(tmp_path, chain, chain_source, inbox)
    grow(chain, 3)
    _drain(first)
    first.store.close()
    grow(chain, 2)
    second = _poster(tmp_path, chain, chain_source, inbox)
    assert second.status.safe == 3  # known at once, before any L1 call
    _drain(second)
    _assert_contiguous(inbox, 5)


def test_an_l1_that_lost_commitments_gets_them_again(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    poster = _poster(tmp_path, chain, chain_source, inbox)
    grow(chain, 2)
    _drain(poster)
    grow(chain, 1)
    _drain(poster)
    del inbox.items[1:]  # an L1 reset (or reorg) dropped the second commitment
    grow(chain, 1)
    _drain(poster)
    _assert_contiguous(inbox, 4)
    assert [(c.first_block, c.last_block) for c in poster.store.all()] == [(1, 2), (3, 4)]


def test_the_batch_waits_for_its_delay(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    config = PosterConfig(max_delay_s=3600.0, max_batch_blocks=4, finality_poll_s=0.0)
    poster = _poster(tmp_path, chain, chain_source, inbox, config=config)
    grow(chain, 1)
    assert poster.step()  # the first cycle syncs with the L1 and posts what is there
    grow(chain, 2)
    assert not poster.step()  # 2 blocks, not yet a full batch, delay not over
    grow(chain, 2)
    assert poster.step() and inbox.items[-1].last_block == 5  # a full batch goes at once


class Chain:
    def __init__(self) -> None:
        self.committed = 0
        self.txs: dict[int, int] = {}

    def committed_number(self) -> int:
        return self.committed

    def tx_count(self, number: int) -> int:
        return self.txs[number]

    def add(self, txs: int) -> None:
        self.committed += 1
        self.txs[self.committed] = txs


def test_backlog_refuses_admission_past_its_bounds_and_recovers() -> None:
    chain, safe = Chain(), [0]
    gate = Backlog(chain, lambda: safe[0], max_blocks=5, max_txs=100)
    for _ in range(5):
        chain.add(10)
        gate.check()
    chain.add(10)
    with pytest.raises(LimitExceeded, match="6 blocks .*not yet posted"):
        gate.check()
    safe[0] = 4
    gate.check()
    assert gate.pending() == (2, 20)
    chain.add(95)
    with pytest.raises(LimitExceeded, match="115 transactions"):
        gate.check()
    safe[0] = 7
    gate.check()
    assert gate.pending() == (0, 0)


def test_the_poster_thread_survives_anything(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    class Broken:
        def next_block(self, chain_id: int) -> int:
            raise RuntimeError("boom")

        def l1_block_number(self, tag: str = "latest") -> int:
            return 0

    poster = _poster(tmp_path, chain, chain_source, Broken())
    grow(chain, 1)
    poster.start()
    try:
        _wait(lambda: poster.status.error is not None, "the poster to report the error", 10)
        assert poster.status.error == "RuntimeError: boom"
        assert poster._thread is not None and poster._thread.is_alive()
    finally:
        poster.stop()
    assert not any(t.name == "da-poster" and t.is_alive() for t in threading.enumerate())


def test_a_node_behind_its_own_posts_is_reported(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    inbox.commit(chain.node.chain_id, 1, 5, bytes(32), bytes(32), b"")  # posted, then DB lost
    grow(chain, 2)
    poster = _poster(tmp_path, chain, chain_source, inbox)
    assert poster.status.safe == 0
    grow(chain, 1)
    with pytest.raises(ForeignBatch, match="blocks up to 5 but this node's chain ends at 3"):
        poster.step()
    assert len(inbox.items) == 1  # nothing posted over it
    assert poster.status.safe == 0 and poster.store.all() == []  # nothing adopted


def test_a_backlog_bigger_than_a_batch_is_posted_without_waiting(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    config = PosterConfig(max_delay_s=3600.0, max_batch_txs=4, finality_poll_s=0.0)
    poster = _poster(tmp_path, chain, chain_source, inbox, config=config)
    grow(chain, 5)  # 2 transactions a block: batches of 2 blocks
    assert [poster.step() for _ in range(4)] == [True, True, True, False]
    assert [(c.first_block, c.last_block) for c in inbox.items] == [(1, 2), (3, 4), (5, 5)]


# ---- batches this chain did not build ----


def _revert(inbox: Any, from_index: int) -> None:
    """The inbox owner's revertBatches(chain, from_index)."""
    del inbox.items[from_index:]


def test_a_batch_ahead_of_the_chain_is_not_adopted_and_is_replaced_after_a_revert(
    tmp_path: Path,
    chain: Any,
    chain_source: type,
    memory_inbox: type,
    grow: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    inbox = memory_inbox()
    heads: list[tuple[int, int]] = []
    poster = _poster(tmp_path, chain, chain_source, inbox, heads=heads)
    grow(chain, 2)
    _drain(poster)
    honest = poster.store.all()
    # a leaked batcher key commits blocks 3..40 that this chain never built
    inbox.commit(chain.node.chain_id, 3, 40, bytes(32), bytes(32), b"fake")
    grow(chain, 2)
    caplog.set_level(logging.WARNING, logger="da.poster")
    poster.start()
    try:
        _wait(lambda: poster.status.error is not None, "the poster to report the batch")
        assert poster.status.error.startswith(
            "ForeignBatch: the L1 inbox holds blocks up to 40 but this node's chain ends at 4"
        )
        assert f"revertBatches({chain.node.chain_id}, 1)" in poster.status.error
        assert "ForeignBatch" in caplog.text
        time.sleep(0.2)  # a few retries: still nothing adopted, nothing posted over it
        assert poster.status.safe == 2 and heads[-1][0] == 2
        assert poster.store.all() == honest and len(inbox.items) == 2

        _revert(inbox, 1)
        _wait(lambda: poster.status.safe == 4, "the poster to post blocks 3-4 again")
        _wait(lambda: poster.status.error is None, "the error to clear")
    finally:
        poster.stop()
    _assert_contiguous(inbox, 4)
    assert inbox.items[1].output_root == output_root(chain.node.block(4).header)
    assert all(safe <= 4 for safe, _ in heads)  # never published the fake head


def test_a_batch_with_another_output_root_is_not_adopted(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    poster = _poster(tmp_path, chain, chain_source, inbox)
    grow(chain, 2)
    _drain(poster)
    grow(chain, 3)
    inbox.commit(chain.node.chain_id, 3, 4, bytes(32), b"\x66" * 32, b"fake")  # blocks we have
    with pytest.raises(
        ForeignBatch, match="claims output root 0x6666.*this chain's block 4 has 0x.*revertBatches"
    ):
        poster.step()
    assert poster.status.safe == 2 and len(poster.store.all()) == 1
    with pytest.raises(ForeignBatch):  # and again, until the owner acts
        poster.step()
    _revert(inbox, 1)
    _drain(poster)
    _assert_contiguous(inbox, 5)
    assert poster.status.safe == 5


def test_a_revert_of_posted_batches_is_noticed_while_idle_and_posted_again(
    tmp_path: Path, chain: Any, chain_source: type, memory_inbox: type, grow: Any
) -> None:
    inbox = memory_inbox()
    heads: list[tuple[int, int]] = []
    poster = _poster(tmp_path, chain, chain_source, inbox, heads=heads)
    grow(chain, 2)
    _drain(poster)
    grow(chain, 2)
    _drain(poster)
    assert poster.status.safe == 4 and len(inbox.items) == 2
    _revert(inbox, 1)  # the owner removed blocks 3-4: nothing new is committed meanwhile
    assert poster.step()  # notices, and posts them again at once
    assert (2, 0) in heads and poster.status.safe == 4
    _assert_contiguous(inbox, 4)
    assert [(c.first_block, c.last_block) for c in poster.store.all()] == [(1, 2), (3, 4)]


def test_batches_never_exceed_the_inbox_bound(
    tmp_path: Path,
    chain: Any,
    chain_source: type,
    memory_inbox: type,
    grow: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("da.poster.MAX_BATCH_BLOCKS", 2)  # the contract's bound, made small
    inbox = memory_inbox()
    config = PosterConfig(max_delay_s=0.0, max_batch_blocks=100, finality_poll_s=0.0)
    poster = _poster(tmp_path, chain, chain_source, inbox, config=config)
    grow(chain, 5)
    _drain(poster)
    assert [(c.first_block, c.last_block) for c in inbox.items] == [(1, 2), (3, 4), (5, 5)]


# What PosterStore created before migrations (raw sqlite3).
POSTER_BEFORE_MIGRATIONS = """
CREATE TABLE IF NOT EXISTS batches (
    idx INTEGER PRIMARY KEY, first_block INTEGER NOT NULL, last_block INTEGER NOT NULL,
    data_hash BLOB NOT NULL, output_root BLOB NOT NULL, da_ref BLOB NOT NULL,
    l1_block INTEGER NOT NULL, l1_tx BLOB NOT NULL,
    txs INTEGER, bytes INTEGER, posted_ms INTEGER);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def test_a_record_from_before_migrations_opens_with_its_commitments(tmp_path: Path) -> None:
    path = tmp_path / "da-poster.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(POSTER_BEFORE_MIGRATIONS)
        db.execute(
            "INSERT INTO batches VALUES (0, 1, 4, x'aa', x'bb', x'cc', 12, x'dd', 9, 300, 1)"
        )
        db.execute("INSERT INTO meta VALUES ('finalized', 4)")
    store = PosterStore(path)
    try:
        with store.engine.connect() as conn:
            assert revision_of(conn) == head_of(POSTER_SCHEMA)
            # the old DDL's primary keys lacked NOT NULL: a rowid and a key always given
            nullable = [(d[0][0], d[0][2], d[0][3]) for d in drift(conn, poster_metadata)]
            assert nullable == [
                ("modify_nullable", "batches", "idx"),
                ("modify_nullable", "meta", "key"),
            ]
        assert store.all() == [Commitment(0, 0, 1, 4, b"\xaa", b"\xbb", b"\xcc", 12, b"\xdd")]
        assert store.get_meta("finalized") == 4 and store.totals() == (9, 300)
        store.add(Commitment(0, 0, 1, 4, b"\xaa", b"\xbb", b"\xcc", 13, b"\xee"))  # replaces
        store.add(Commitment(0, 1, 5, 6, b"\x01", b"\x02", b"\x03", 14, b"\x04"), 2, 50)
        assert [(c.index, c.l1_block) for c in store.all()] == [(0, 13), (1, 14)]
        assert store.covering(5) == store.last() and store.finalized_upto(13) == 4
    finally:
        store.close()


def test_a_fresh_record_has_the_declared_tables(tmp_path: Path) -> None:
    store = PosterStore(f"sqlite:///{tmp_path / 'poster.sqlite'}")  # a URL works as a path does
    try:
        with store.engine.connect() as conn:
            assert drift(conn, poster_metadata) == []
    finally:
        store.close()
