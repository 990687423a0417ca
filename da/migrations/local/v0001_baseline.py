"""Baseline: the local DA index as it was before migrations (`PRAGMA user_version = 1`).

A database of that schema is stamped with this revision rather than run through it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

INT = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submissions",
        # AUTOINCREMENT: a seq is never used twice, even after the newest row is gone
        sa.Column("seq", INT, primary_key=True, autoincrement=True),
        sa.Column("id", sa.LargeBinary, nullable=False, unique=True),
        sa.Column("size", INT, nullable=False),
        sa.Column("submitted_ms", INT, nullable=False),
        sqlite_autoincrement=True,
    )
