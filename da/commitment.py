"""Batch commitments: what the L1 inbox records of each batch, and the ports that write and
read them (implemented over web3 in bridge/inbox.py, and by fakes in tests).

    commitment  = (chain_id, index, first_block, last_block, data_hash, output_root, da_ref)
    data_hash   = keccak(channel)                     the compressed batch, before framing
    output_root = rollup.outputs.output_root(header of last_block)
    da_ref      = rlp([DARef.encode(), ...])          where the channel's frames are, in order
The inbox numbers an app's commitments 0, 1, 2, ... and accepts one only if it starts at the
block after the previous one and covers at most MAX_BATCH_BLOCKS blocks
(bridge/contracts/BatchInbox.sol), so the poster can resume from the inbox after a crash
without a gap or a duplicate. The verifier checks the numbering and the ranges again itself:
it trusts the inbox for nothing but authorship.

The inbox's owner can remove a bad batch (a leaked batcher key, a buggy poster):

    revert      = (chain_id, from_index, next_block)  removes the commitments with
                  index >= from_index included before it; the chain resumes at next_block
                  (the first block of batch from_index), and the next commitment is
                  numbered from_index again
The valid commitments of a chain are its commitments in L1 log order with each revert
applied where it comes; `InboxReader.commitments` returns them so for its L1 range, and
`InboxReader.reverts` the reverts themselves. A reader that follows the L1 in steps (the
verifier) keeps the next index it expects: a revert with from_index below it means that
commitments it already applied are gone, and it must go back to block next_block - 1 (the
fork point) and apply what comes after the revert from there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from da.backend import DARef
from da.errors import CodecError
from rollup import rlp

__all__ = [
    "MAX_REFS",
    "MAX_BATCH_BLOCKS",
    "Commitment",
    "CommitmentRecord",
    "RevertRecord",
    "InboxWriter",
    "InboxReader",
    "encode_refs",
    "decode_refs",
]

MAX_REFS = 1 << 16  # a channel has at most that many frames, one a submission
MAX_BATCH_BLOCKS = 4096  # BatchInbox.MAX_BATCH_BLOCKS (tests/bridge/test_inbox.py checks it)


class CommitmentRecord(Protocol):
    """One commitment as the inbox reports it, with where on L1 it was included."""

    @property
    def chain_id(self) -> int: ...
    @property
    def index(self) -> int: ...
    @property
    def first_block(self) -> int: ...
    @property
    def last_block(self) -> int: ...
    @property
    def data_hash(self) -> bytes: ...
    @property
    def output_root(self) -> bytes: ...
    @property
    def da_ref(self) -> bytes: ...
    @property
    def l1_block(self) -> int: ...
    @property
    def l1_tx(self) -> bytes: ...


class RevertRecord(Protocol):
    """The owner's removal of a chain's commitments from `from_index` on, with where on L1
    it was included; the chain resumes at `next_block`."""

    @property
    def chain_id(self) -> int: ...
    @property
    def from_index(self) -> int: ...
    @property
    def next_block(self) -> int: ...
    @property
    def l1_block(self) -> int: ...
    @property
    def l1_tx(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Commitment:
    """A `CommitmentRecord` as plain data (the poster's own records, fakes)."""

    chain_id: int
    index: int
    first_block: int
    last_block: int
    data_hash: bytes
    output_root: bytes
    da_ref: bytes
    l1_block: int
    l1_tx: bytes


class InboxWriter(Protocol):
    """The poster's side of the inbox. Raises ConnectionError (or a subclass) while the L1
    cannot be reached; any other error means the L1 refused the call."""

    def next_block(self, chain_id: int) -> int:
        """The first block of the next commitment the inbox will accept for `chain_id`."""
        ...

    def commit(
        self,
        chain_id: int,
        first_block: int,
        last_block: int,
        data_hash: bytes,
        output_root: bytes,
        da_ref: bytes,
    ) -> CommitmentRecord:
        """Record a batch; returns once the L1 included it."""
        ...

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[CommitmentRecord]:
        """The commitments of `chain_id` included in L1 blocks of the range, oldest first,
        less those a revert later in the range removed."""
        ...

    def l1_block_number(self, tag: str = "latest") -> int:
        """The L1's block number at `tag` ("latest", "safe" or "finalized")."""
        ...


class InboxReader(Protocol):
    """The verifier's side (same errors as `InboxWriter`).

    `commitments` gives the valid commitments of the L1 range (see the module docstring):
    read from the inbox's deployment on, the chain's valid set. `reverts` gives the owner's
    reverts of the range, oldest first, so a reader that consumed earlier ranges can tell
    which of the commitments it applied are gone: those with index >= from_index."""

    def commitments(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[CommitmentRecord]: ...

    def reverts(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[RevertRecord]: ...

    def l1_block_number(self, tag: str = "latest") -> int: ...


def encode_refs(refs: Sequence[DARef]) -> bytes:
    if not 1 <= len(refs) <= MAX_REFS:
        raise CodecError(f"a commitment names 1 to {MAX_REFS} DA references, not {len(refs)}")
    return rlp.encode([ref.encode() for ref in refs])


def decode_refs(data: bytes) -> list[DARef]:
    """The DA references of a commitment; `CodecError` on any defect."""
    try:
        items = rlp.as_list(rlp.decode(data))
        refs = [DARef.decode(rlp.as_bytes(item)) for item in items]
    except rlp.RLPError as exc:
        raise CodecError(f"DA reference list: {exc}") from None
    if not 1 <= len(refs) <= MAX_REFS:
        raise CodecError(f"a commitment names 1 to {MAX_REFS} DA references, not {len(refs)}")
    return refs
