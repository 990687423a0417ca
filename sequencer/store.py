"""Durable storage of one app chain (SQLAlchemy 2.x; SQLite WAL by default, PostgreSQL by URL).

The schema is versioned: `Store(url)` upgrades an older database in place and refuses a newer
one (storage/migrate.py; the revisions are in sequencer/migrations/). A change to the tables
here or in sequencer/outbox.py is a new revision there.

Write path, designed so storage does not cap throughput:
- a block is ONE row (header, body, receipts and its state diff as blobs) written in one
  transaction: an append on an integer key, no secondary index but the block hash;
- the flat `state` table and the `tx_index` are checkpoints, written in bounded chunks
  every few thousand blocks; what happened after the last checkpoint is re-derived at start
  from the block rows, whose diffs hold absolute values, so replaying them is idempotent and a
  checkpoint interrupted half-way is harmless.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    delete,
    func,
    select,
)

from rollup import rlp
from rollup.blocks import (
    decode_block_body,
    decode_block_receipts,
    decode_header,
    encode_block_body,
    encode_block_receipts,
    encode_header,
)
from rollup.types import Block, BlockHeader, Hash32
from sequencer.outbox import write_outbox_rows
from storage.engine import insert_ignore, make_engine, upsert
from storage.migrate import Schema, SchemaError, has_tables, upgrade
from vm.stf import SealedBlock

__all__ = ["Store", "StoredBlock", "SCHEMA", "metadata", "encode_changes", "decode_changes"]

metadata = MetaData()
blocks_table = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False, unique=True),
    Column("header", LargeBinary, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("receipts", LargeBinary, nullable=False),
    Column("changes", LargeBinary, nullable=False),
)
state_table = Table(
    "state",
    metadata,
    Column("key", LargeBinary(64), primary_key=True),
    Column("value", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
tx_index_table = Table(
    "tx_index",
    metadata,
    Column("hash", LargeBinary(32), primary_key=True),
    Column("block", BigInteger, nullable=False),
    Column("position", Integer, nullable=False),
    sqlite_with_rowid=False,
)
withdrawals_table = Table(  # hash -> where: rollup_getWithdrawalProof finds them by hash
    "withdrawals",
    metadata,
    Column("hash", LargeBinary(32), primary_key=True),
    Column("nonce", BigInteger, nullable=False),
    Column("block", BigInteger, nullable=False),
    Index("withdrawals_by_block", "block", "nonce"),  # withdrawals_upto: one seek
    sqlite_with_rowid=False,
)
meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


def _legacy(conn: Connection) -> bool:
    """A store from before migrations carries `meta.schema`: 2 is revision 0001. One created
    by such a node killed before that row (some tables, nothing in them) is not: revision 0001
    runs on it and creates what is missing."""
    if not has_tables(conn, "meta"):
        return False
    query = select(meta_table.c.value).where(meta_table.c.key == "schema")
    version = conn.execute(query).scalar()
    if version not in (None, 2):
        raise SchemaError(
            f"the chain database has schema {version}, older than the oldest this "
            "framework upgrades (schema 2, revision 0001): start a new database "
            "or open it with the framework version that wrote it"
        )
    return version == 2


SCHEMA = Schema("chain", Path(__file__).parent / "migrations", _legacy)


def encode_changes(changes: dict[bytes, tuple[bytes | None, bytes | None]]) -> bytes:
    """rlp([[key, flags, before, after], ...]).

    flags bit 0: a value existed before; bit 1: a value exists after.
    """
    items: list[rlp.RLPItem] = []
    for key, (before, after) in changes.items():
        flags = (1 if before is not None else 0) | (2 if after is not None else 0)
        items.append([key, bytes((flags,)), before or b"", after or b""])
    return rlp.encode(items)


def decode_changes(data: bytes) -> dict[bytes, tuple[bytes | None, bytes | None]]:
    out: dict[bytes, tuple[bytes | None, bytes | None]] = {}
    for item in rlp.as_list(rlp.decode(data)):
        key, flags, before, after = (rlp.as_bytes(x) for x in rlp.as_list(item, 4))
        out[key] = (before if flags[0] & 1 else None, after if flags[0] & 2 else None)
    return out


@dataclass(frozen=True, slots=True)
class StoredBlock:
    block: Block
    changes: dict[bytes, tuple[bytes | None, bytes | None]]


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        try:
            upgrade(self.engine, SCHEMA)  # metadata's tables and sequencer/outbox.py's
        except BaseException:
            self.engine.dispose()
            raise

    def close(self) -> None:
        self.engine.dispose()

    # ---- writes: each call is one unit of work, one transaction (a block, a chunk) ----

    def write_block(self, sealed: SealedBlock) -> None:
        block = sealed.block
        row = {
            "number": block.header.number,
            "hash": block.hash,
            "header": encode_header(block.header),
            "body": encode_block_body(block),
            "receipts": encode_block_receipts(block),
            "changes": encode_changes(sealed.changes),
        }
        with self.engine.begin() as conn:
            conn.execute(blocks_table.insert(), row)
            write_outbox_rows(conn, block)
            if block.withdrawals:
                rows = [
                    {"hash": w.hash, "nonce": w.nonce, "block": block.header.number}
                    for w in block.withdrawals
                ]
                conn.execute(withdrawals_table.insert(), rows)

    def checkpoint_chunk(
        self,
        values: Sequence[tuple[bytes, bytes | None]],
        tx_rows: Sequence[tuple[bytes, int, int]],
        upto_block: int | None,
    ) -> None:
        """Write part of a checkpoint; the last chunk passes `upto_block` to seal it."""
        upserts = [{"key": k, "value": v} for k, v in values if v is not None]
        deletes = [k for k, v in values if v is None]
        with self.engine.begin() as conn:
            if upserts:
                conn.execute(upsert(self.engine, state_table, ["key"], ["value"]), upserts)
            if deletes:
                conn.execute(delete(state_table).where(state_table.c.key.in_(deletes)))
            if tx_rows:
                rows = [{"hash": h, "block": b, "position": p} for h, b, p in tx_rows]
                conn.execute(insert_ignore(self.engine, tx_index_table, ["hash"]), rows)
            if upto_block is not None:
                conn.execute(
                    upsert(self.engine, meta_table, ["key"], ["value"]),
                    [{"key": "checkpoint", "value": upto_block}],
                )

    # ---- reads ----

    def head_number(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(blocks_table.c.number).order_by(blocks_table.c.number.desc()).limit(1)
            ).scalar()

    def checkpoint(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "checkpoint")
            ).scalar()
        return -1 if value is None else int(value)

    def get_state(self, key: bytes) -> bytes | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(state_table.c.value).where(state_table.c.key == key)
            ).scalar()

    def _row_to_block(self, row: Row[Any]) -> StoredBlock:
        header: BlockHeader = decode_header(row.header)
        body = decode_block_body(row.body, header.chain_id)
        receipts, inbound_receipts, deposit_receipts = decode_block_receipts(row.receipts)
        block = Block(
            header,
            Hash32(row.hash),
            body.transactions,
            receipts,
            body.inbound,
            inbound_receipts,
            body.outbound,
            body.deposits,
            deposit_receipts,
            body.withdrawals,
        )
        return StoredBlock(block, decode_changes(row.changes))

    def get_block(self, number: int) -> StoredBlock | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(blocks_table).where(blocks_table.c.number == number)).first()
        return None if row is None else self._row_to_block(row)

    def headers(self, start: int, stop: int) -> list[BlockHeader]:
        """The headers of blocks start <= number < stop, without their bodies (blooms first)."""
        query = select(blocks_table.c.header).where(
            blocks_table.c.number >= start, blocks_table.c.number < stop
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(blocks_table.c.number)).all()
        return [decode_header(row.header) for row in rows]

    def block_number_by_hash(self, block_hash: bytes) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(blocks_table.c.number).where(blocks_table.c.hash == block_hash)
            ).scalar()

    def iter_blocks(
        self, start: int, stop: int | None = None, chunk: int = 256
    ) -> Iterator[StoredBlock]:
        """Blocks with start <= number (< stop), in order, read in chunks."""
        cursor = start
        while True:
            query = select(blocks_table).where(blocks_table.c.number >= cursor)
            if stop is not None:
                query = query.where(blocks_table.c.number < stop)
            with self.engine.connect() as conn:
                rows = conn.execute(query.order_by(blocks_table.c.number).limit(chunk)).all()
            if not rows:
                return
            for row in rows:
                yield self._row_to_block(row)
            cursor = rows[-1].number + 1

    def withdrawal_location(self, withdrawal_hash: bytes) -> tuple[int, int] | None:
        """(nonce, block) of a withdrawal, by its hash."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(withdrawals_table.c.nonce, withdrawals_table.c.block).where(
                    withdrawals_table.c.hash == withdrawal_hash
                )
            ).first()
        return None if row is None else (int(row.nonce), int(row.block))

    def withdrawals_upto(self, block: int) -> int:
        """How many withdrawals blocks up to `block` started (the tree's size after it)."""
        table = withdrawals_table
        # nonces grow with blocks: the largest at or below `block` is the last entry of the
        # (block, nonce) index there, one seek (a max() would read every entry below it)
        query = (
            select(table.c.nonce)
            .where(table.c.block <= block)
            .order_by(table.c.block.desc(), table.c.nonce.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            top = conn.execute(query).scalar()
        return 0 if top is None else int(top) + 1

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(tx_index_table.c.block, tx_index_table.c.position).where(
                    tx_index_table.c.hash == tx_hash
                )
            ).first()
        return None if row is None else (int(row.block), int(row.position))

    def state_size(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(state_table)).scalar() or 0)

    def all_state(self) -> Iterable[tuple[bytes, bytes]]:
        with self.engine.connect() as conn:
            yield from conn.execute(select(state_table.c.key, state_table.c.value))
