"""The chain store across framework versions: a database written before migrations (schema 2)
opens, is upgraded in place and serves the same chain; the revisions build exactly the tables
the code declares; a newer or older database is refused in one line."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from rollup.types import Address
from sequencer.harness import LocalChain
from sequencer.outbox import outbox_metadata
from sequencer.store import SCHEMA, Store, metadata
from storage.migrate import SchemaError, drift, head_of, revision_of
from vm.state import get_account

RECIPIENT = Address(b"\x42" * 20)

# What `Store` created before migrations (`meta.schema = 2`) on SQLite: the statements of its
# sqlite_master, reflowed.
SCHEMA_2 = """
CREATE TABLE blocks (
    number BIGINT NOT NULL, hash BLOB NOT NULL, header BLOB NOT NULL, body BLOB NOT NULL,
    receipts BLOB NOT NULL, changes BLOB NOT NULL, PRIMARY KEY (number), UNIQUE (hash));
CREATE TABLE state ("key" BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY ("key"))
    WITHOUT ROWID;
CREATE TABLE tx_index (hash BLOB NOT NULL, block BIGINT NOT NULL, position INTEGER NOT NULL,
    PRIMARY KEY (hash)) WITHOUT ROWID;
CREATE TABLE withdrawals (hash BLOB NOT NULL, nonce BIGINT NOT NULL, block BIGINT NOT NULL,
    PRIMARY KEY (hash)) WITHOUT ROWID;
CREATE TABLE meta ("key" VARCHAR(64) NOT NULL, value BIGINT NOT NULL, PRIMARY KEY ("key"));
CREATE TABLE outbox (dst_chain BIGINT NOT NULL, nonce BIGINT NOT NULL, block BIGINT NOT NULL,
    message BLOB NOT NULL, PRIMARY KEY (dst_chain, nonce)) WITHOUT ROWID;
CREATE TABLE bus_acks (dst_chain BIGINT NOT NULL, next_nonce BIGINT NOT NULL,
    PRIMARY KEY (dst_chain));
"""
TABLES = ("blocks", "state", "tx_index", "withdrawals", "meta", "outbox", "bus_acks")


def url(path: Path) -> str:
    return f"sqlite:///{path}"


def schema_2_copy(source: Path, target: Path) -> None:
    """A database of the schema before migrations, holding `source`'s rows (meta included:
    schema 2 and the checkpoint)."""
    db = sqlite3.connect(target)
    db.executescript(SCHEMA_2)
    db.execute("ATTACH DATABASE ? AS made", (str(source),))
    for table in TABLES:
        db.execute(f"INSERT INTO main.{table} SELECT * FROM made.{table}")
    db.commit()
    db.execute("DETACH DATABASE made")
    db.close()


def test_a_store_from_before_migrations_serves_the_same_chain(
    token_app: Path, tmp_path: Path
) -> None:
    made, old = tmp_path / "made.db", tmp_path / "old.db"
    with LocalChain.from_dir(token_app, url(made)) as chain:
        for i in range(4):
            chain.transfer(chain.accounts[i % 2], RECIPIENT, 1 + i)
        chain.node.checkpoint().result()  # state and tx_index rows, not only blocks
        chain.transfer(chain.accounts[2], RECIPIENT, 5)  # and a block after the checkpoint
        head = chain.node.committed
        store = chain.node.store
        head_hash = store.get_block(head.number).block.hash  # type: ignore[union-attr]
        tx_hash = store.get_block(2).block.transactions[0].hash  # type: ignore[union-attr]
        key, value = next(iter(store.all_state()))
    schema_2_copy(made, old)

    store = Store(url(old))
    try:
        with store.engine.connect() as conn:
            assert revision_of(conn) == head_of(SCHEMA) == "0002"
            assert drift(conn, metadata, outbox_metadata) == []
            assert conn.execute(text("SELECT value FROM meta WHERE key = 'schema'")).scalar() == 2
        assert "withdrawals_by_block" in {
            i["name"] for i in inspect(store.engine).get_indexes("withdrawals")
        }
        assert store.head_number() == head.number
        assert store.get_block(head.number).block.hash == head_hash  # type: ignore[union-attr]
        assert store.checkpoint() == head.number - 1
        assert store.get_state(key) == value
        assert store.tx_location(tx_hash) == (2, 0)
    finally:
        store.close()

    with LocalChain.from_dir(token_app, url(old)) as chain:  # the node on it, and writing
        assert chain.node.committed == head
        assert get_account(chain.node.state, RECIPIENT) == (0, 15)
        assert chain.transfer(chain.accounts[0], RECIPIENT, 6).status == 1
    with LocalChain.from_dir(token_app, url(old)) as chain:
        assert chain.node.committed.number == head.number + 1
        assert get_account(chain.node.state, RECIPIENT) == (0, 21)


def test_a_fresh_store_is_created_at_head_with_the_declared_tables(tmp_path: Path) -> None:
    store = Store(url(tmp_path / "chain.db"))
    try:
        with store.engine.connect() as conn:
            assert revision_of(conn) == head_of(SCHEMA)
            assert drift(conn, metadata, outbox_metadata) == []
    finally:
        store.close()


def test_a_store_an_older_node_was_killed_creating_is_completed(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "chain.db") as db:  # some tables, and no meta row yet
        db.executescript(SCHEMA_2.split("CREATE TABLE withdrawals")[0])
    store = Store(url(tmp_path / "chain.db"))
    try:
        assert store.head_number() is None
        with store.engine.connect() as conn:
            assert revision_of(conn) == head_of(SCHEMA)
            assert drift(conn, metadata, outbox_metadata) == []
    finally:
        store.close()


def test_a_store_of_a_newer_framework_is_refused_naming_both_revisions(tmp_path: Path) -> None:
    Store(url(tmp_path / "chain.db")).close()
    with sqlite3.connect(tmp_path / "chain.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(SchemaError) as refused:
        Store(url(tmp_path / "chain.db"))
    message = str(refused.value)
    assert message.startswith(
        "the chain database is at schema revision 0099, newer than this "
        f"framework's {head_of(SCHEMA)}"
    )
    assert "\n" not in message


def test_a_store_older_than_schema_2_is_refused(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "chain.db") as db:
        db.executescript(SCHEMA_2)
        db.execute("INSERT INTO meta VALUES ('schema', 1)")
    with pytest.raises(SchemaError, match="the chain database has schema 1, older than"):
        Store(url(tmp_path / "chain.db"))
    with sqlite3.connect(tmp_path / "chain.db") as db:  # untouched
        versioned = "SELECT name FROM sqlite_master WHERE name = 'alembic_version'"
        assert db.execute(versioned).fetchall() == []
