"""The state root in block headers.

Interim scheme: a hash chain over each block's sorted state diff,
    root_n = keccak(root_{n-1} ++ keccak(rlp([[key, value], ...sorted by key])))
It is deterministic, cheap (only changed keys are hashed) and any re-execution must reproduce
it, so the verifier can compare roots block by block. It is not yet a commitment to the whole
state with inclusion proofs: the Merkle state tree replaces it behind this same function.
"""

from __future__ import annotations

from rollup import rlp
from rollup.crypto import keccak
from rollup.types import Hash32

__all__ = ["next_state_root"]


def next_state_root(
    previous: bytes, changes: dict[bytes, tuple[bytes | None, bytes | None]]
) -> Hash32:
    items: list[rlp.RLPItem] = [[key, changes[key][1] or b""] for key in sorted(changes)]
    return Hash32(keccak(previous + keccak(rlp.encode(items))))
