"""Baseline: the chain store as `meta.schema = 2` wrote it before migrations.

A database of that schema is stamped with this revision rather than run through it. One that
such a node was killed while creating (some tables, no `meta.schema` row, no rows) is
completed by running this, hence IF NOT EXISTS.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False, unique=True),
        sa.Column("header", sa.LargeBinary, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("receipts", sa.LargeBinary, nullable=False),
        sa.Column("changes", sa.LargeBinary, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "state",
        sa.Column("key", sa.LargeBinary(64), primary_key=True),
        sa.Column("value", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "tx_index",
        sa.Column("hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "withdrawals",
        sa.Column("hash", sa.LargeBinary(32), primary_key=True),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    meta = op.create_table(
        "meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    op.create_table(
        "outbox",
        sa.Column("dst_chain", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("nonce", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("block", sa.BigInteger, nullable=False),
        sa.Column("message", sa.LargeBinary, nullable=False),
        sqlite_with_rowid=False,
        if_not_exists=True,
    )
    op.create_table(
        "bus_acks",
        sa.Column("dst_chain", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("next_nonce", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    # nodes from before migrations read it and refuse any other value
    op.bulk_insert(meta, [{"key": "schema", "value": 2}])
