"""Baseline: the poster's record as it was before migrations (batches, meta).

A database of that schema is stamped with this revision rather than run through it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("idx", INT, primary_key=True, autoincrement=False),
        sa.Column("first_block", INT, nullable=False),
        sa.Column("last_block", INT, nullable=False),
        sa.Column("data_hash", sa.LargeBinary, nullable=False),
        sa.Column("output_root", sa.LargeBinary, nullable=False),
        sa.Column("da_ref", sa.LargeBinary, nullable=False),
        sa.Column("l1_block", INT, nullable=False),
        sa.Column("l1_tx", sa.LargeBinary, nullable=False),
        sa.Column("txs", INT),
        sa.Column("bytes", INT),
        sa.Column("posted_ms", INT),
    )
    op.create_table(
        "meta",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", INT, nullable=False),
    )
