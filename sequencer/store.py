"""Durable storage of one app chain (SQLAlchemy 2.x; SQLite WAL by default, PostgreSQL by URL).

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

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

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
from sequencer.outbox import outbox_metadata, write_outbox_rows
from vm.stf import SealedBlock

__all__ = ["Store", "StoredBlock", "SCHEMA_VERSION", "encode_changes", "decode_changes"]

SCHEMA_VERSION = 2  # 2: headers name their L1 origin hash; bodies carry deposits, withdrawals

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
    sqlite_with_rowid=False,
)
meta_table = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", BigInteger, nullable=False),
)


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


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode survives a killed process (SIGKILL); FULL also survives power loss.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, pool_size=8, max_overflow=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_size=8, max_overflow=8, pool_pre_ping=True)


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        metadata.create_all(self.engine)
        outbox_metadata.create_all(self.engine)  # cross-app messages (sequencer/outbox.py)
        self._dialect = self.engine.dialect.name
        with self.engine.begin() as conn:
            version = conn.execute(
                select(meta_table.c.value).where(meta_table.c.key == "schema")
            ).scalar()
            if version is None:
                conn.execute(meta_table.insert().values(key="schema", value=SCHEMA_VERSION))
            elif version != SCHEMA_VERSION:
                raise RuntimeError(f"database schema {version}, this node needs {SCHEMA_VERSION}")

    def close(self) -> None:
        self.engine.dispose()

    # ---- writes: the caller owns nothing; each call is one transaction ----

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
                rows = [{"hash": w.hash, "nonce": w.nonce, "block": block.header.number}
                        for w in block.withdrawals]  # fmt: skip
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
                conn.execute(self._upsert(state_table, ["key"], ["value"]), upserts)
            if deletes:
                conn.execute(delete(state_table).where(state_table.c.key.in_(deletes)))
            if tx_rows:
                rows = [{"hash": h, "block": b, "position": p} for h, b, p in tx_rows]
                conn.execute(self._insert_ignore(tx_index_table, ["hash"]), rows)
            if upto_block is not None:
                conn.execute(self._upsert(meta_table, ["key"], ["value"]),
                             [{"key": "checkpoint", "value": upto_block}])  # fmt: skip

    def _upsert(self, table: Table, keys: list[str], values: list[str]):
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        stmt = dialect.insert(table)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={v: stmt.excluded[v] for v in values}
        )

    def _insert_ignore(self, table: Table, keys: list[str]):
        dialect = postgresql if self._dialect == "postgresql" else sqlite
        return dialect.insert(table).on_conflict_do_nothing(index_elements=keys)

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

    def _row_to_block(self, row: object) -> StoredBlock:
        header: BlockHeader = decode_header(row.header)  # type: ignore[attr-defined]
        body = decode_block_body(row.body, header.chain_id)  # type: ignore[attr-defined]
        receipts, inbound_receipts, deposit_receipts = decode_block_receipts(
            row.receipts  # type: ignore[attr-defined]
        )
        block = Block(header, Hash32(row.hash), body.transactions, receipts,  # type: ignore[attr-defined]
                      body.inbound, inbound_receipts, body.outbound, body.deposits,
                      deposit_receipts, body.withdrawals)  # fmt: skip
        return StoredBlock(block, decode_changes(row.changes))  # type: ignore[attr-defined]

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
        with self.engine.connect() as conn:
            table = withdrawals_table
            query = select(func.max(table.c.nonce)).where(table.c.block <= block)
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
