"""Index withdrawals by (block, nonce).

`Store.withdrawals_upto(block)` answers every withdrawal proof (the size of the withdrawals
tree after a block). Without this index it scanned the whole table; with it, it is one seek:
nonces grow with blocks, so the largest nonce at or below a block is the last index entry
there.
"""

from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("withdrawals_by_block", "withdrawals", ["block", "nonce"])
