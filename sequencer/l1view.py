"""The node's ports to the L1: which L1 block its next block names as origin and the
deposits it must include (`L1View`), and the batches its DA poster posted (`PostedOutputs`,
which withdrawal proofs name). bridge/README.md has the design.

`L1View` is the port; services/l1follow.py follows a real L1 (the Portal's events, with a
number of confirmations, following block hashes through reorgs). A node without an L1 has
none: its blocks name origin 0 and carry no deposits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from rollup.deposits import Deposit
from vm.stf import L1Origin

__all__ = ["L1View", "PostedBatch", "PostedOutputs"]


class L1View(Protocol):
    def origin(self) -> L1Origin:
        """The newest L1 block the next block may name: `confirmations` deep, canonical."""
        ...

    def deposits(self, next_nonce: int, origin: L1Origin, limit: int) -> Sequence[Deposit]:
        """Up to `limit` deposits from nonce `next_nonce` on, in nonce order, each from an
        L1 block at most `origin.number` (none past a gap in the nonces)."""
        ...


class PostedBatch(Protocol):
    @property
    def index(self) -> int: ...
    @property
    def last_block(self) -> int: ...
    @property
    def output_root(self) -> bytes: ...
    @property
    def l1_block(self) -> int: ...


class PostedOutputs(Protocol):
    def covering(self, block: int) -> PostedBatch | None:
        """The oldest posted batch whose range reaches `block`."""
        ...
