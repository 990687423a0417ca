"""The store's own queries, on rows written directly: withdrawals by hash and by block (one
index seek), and the outbox's channels and acknowledgements."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from sequencer.outbox import Outbox, outbox_table
from sequencer.store import Store, withdrawals_table


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path / 'chain.db'}")
    yield opened
    opened.close()


def _hash(n: int) -> bytes:
    return n.to_bytes(32, "big")


def test_withdrawals_by_hash_and_the_tree_size_after_a_block(store: Store) -> None:
    # block 2 starts withdrawals 0 and 1, block 5 withdrawal 2, block 9 withdrawals 3-5
    rows = [(2, 0), (2, 1), (5, 2), (9, 3), (9, 4), (9, 5)]
    with store.engine.begin() as conn:
        conn.execute(
            withdrawals_table.insert(),
            [{"hash": _hash(n), "nonce": n, "block": b} for b, n in rows],
        )
    sizes = {block: store.withdrawals_upto(block) for block in (0, 1, 2, 4, 5, 8, 9, 100)}
    assert sizes == {0: 0, 1: 0, 2: 2, 4: 2, 5: 3, 8: 3, 9: 6, 100: 6}
    assert store.withdrawal_location(_hash(4)) == (4, 9)
    assert store.withdrawal_location(_hash(99)) is None


def test_the_tree_size_after_a_block_is_one_index_seek(store: Store) -> None:
    statements: list[tuple[str, Any]] = []

    def seen(_conn: object, _cursor: object, statement: str, parameters: Any, *_: object) -> None:
        statements.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", seen)
    store.withdrawals_upto(7)
    event.remove(store.engine, "before_cursor_execute", seen)
    [(statement, parameters)] = statements
    with store.engine.connect() as conn:
        plan = " ".join(
            str(row[-1])
            for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    assert "withdrawals_by_block" in plan and "TEMP B-TREE" not in plan


def test_the_outbox_forgets_what_its_destination_acknowledged(store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            outbox_table.insert(),
            [
                {"dst_chain": dst, "nonce": n, "block": 10 + n, "message": bytes([dst, n])}
                for dst in (7, 8)
                for n in range(3)
            ],
        )
    outbox = Outbox(store.engine)
    assert outbox.channels() == {7: (0, 2), 8: (0, 2)}
    assert outbox.messages(7, 1, 10) == [(11, bytes([7, 1])), (12, bytes([7, 2]))]
    outbox.acknowledge([(7, 2), (8, 1)])
    outbox.acknowledge([(8, 3)])  # a later acknowledgement replaces the earlier one
    assert outbox.acked() == {7: 2, 8: 3}
    assert outbox.channels() == {7: (2, 2)}
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == 1
