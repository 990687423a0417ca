"""The output root: the one value the L1 records of an app chain at a block.

    output_root = keccak(version(32) ++ state_root(32) ++ withdrawals_root(32) ++ block_hash(32))
    version     = 32 zero bytes (v0)
OP Stack's output root v0, with our withdrawals root where OP has the message passer's storage
root. The DA poster posts it with each batch (da/poster.py); verifiers recompute it; bridges
prove withdrawals and state against it.
"""

from __future__ import annotations

from rollup.blocks import block_hash
from rollup.crypto import keccak
from rollup.types import BlockHeader, Hash32

__all__ = ["OUTPUT_VERSION", "output_root"]

OUTPUT_VERSION = bytes(32)


def output_root(header: BlockHeader) -> Hash32:
    return Hash32(
        keccak(OUTPUT_VERSION + header.state_root + header.withdrawals_root + block_hash(header))
    )
