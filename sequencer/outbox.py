"""The outbox: every cross-app message this chain sent, until its destination has executed it.

    outbox    (dst_chain, nonce) -> (block, message)   written by `Store.write_block` in the
                                                      block's own DB transaction
    bus_acks  dst_chain -> next_nonce                 the destination's progress last heard

The outbox is the source of truth of delivery: a transport may lose, repeat or reorder what it
carries, and the bus service re-sends from here whatever the destination has not acknowledged,
also after a restart of either side; with each message it reads the source block, whose stored
header and messages give the proof again. Rows below an acknowledgement are deleted, and only
acknowledgements the destination signed (services/bus/service.py) ever reach `acknowledge`.
The tables live in the chain store's database and its revisions (sequencer/migrations/).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    Table,
    and_,
    delete,
    func,
    select,
)

from rollup.messages import encode_message
from rollup.types import Block
from storage.engine import upsert

__all__ = ["Outbox", "outbox_metadata", "write_outbox_rows"]

outbox_metadata = MetaData()
outbox_table = Table(
    "outbox",
    outbox_metadata,
    Column("dst_chain", BigInteger, primary_key=True, autoincrement=False),
    Column("nonce", BigInteger, primary_key=True, autoincrement=False),
    Column("block", BigInteger, nullable=False),
    Column("message", LargeBinary, nullable=False),
    sqlite_with_rowid=False,
)
acks_table = Table(
    "bus_acks",
    outbox_metadata,
    Column("dst_chain", BigInteger, primary_key=True, autoincrement=False),
    Column("next_nonce", BigInteger, nullable=False),
)


def write_outbox_rows(conn: Connection, block: Block) -> None:
    """Part of the block's write transaction: the caller owns the unit of work."""
    if not block.outbound:
        return
    number = block.header.number
    rows = [
        {
            "dst_chain": m.dst_chain,
            "nonce": m.channel_nonce,
            "block": number,
            "message": encode_message(m),
        }
        for m in block.outbound
    ]
    conn.execute(outbox_table.insert(), rows)


class Outbox:
    """Reads and acknowledgements, each its own short transaction (any thread)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def channels(self) -> dict[int, tuple[int, int]]:
        """dst_chain -> (lowest, highest) nonce still in the outbox."""
        query = select(
            outbox_table.c.dst_chain, func.min(outbox_table.c.nonce), func.max(outbox_table.c.nonce)
        ).group_by(outbox_table.c.dst_chain)
        with self.engine.connect() as conn:
            return {int(d): (int(lo), int(hi)) for d, lo, hi in conn.execute(query)}

    def messages(self, dst_chain: int, from_nonce: int, limit: int) -> list[tuple[int, bytes]]:
        """(source block, encoded message) of messages to `dst_chain` from `from_nonce` on, in
        nonce order: the block is what re-sending needs to prove each message again."""
        query = (
            select(outbox_table.c.block, outbox_table.c.message)
            .where(and_(outbox_table.c.dst_chain == dst_chain, outbox_table.c.nonce >= from_nonce))
            .order_by(outbox_table.c.nonce)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [(int(row[0]), bytes(row[1])) for row in conn.execute(query)]

    def acked(self) -> dict[int, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(acks_table.c.dst_chain, acks_table.c.next_nonce))
            return {int(d): int(n) for d, n in rows}

    def acknowledge(self, acks: Sequence[tuple[int, int]]) -> None:
        """Record each destination's progress and forget what it has executed."""
        if not acks:
            return
        record = upsert(self.engine, acks_table, ["dst_chain"], ["next_nonce"])
        with self.engine.begin() as conn:
            conn.execute(record, [{"dst_chain": d, "next_nonce": n} for d, n in acks])
            for dst_chain, next_nonce in acks:
                conn.execute(
                    delete(outbox_table).where(
                        and_(
                            outbox_table.c.dst_chain == dst_chain, outbox_table.c.nonce < next_nonce
                        )
                    )
                )
