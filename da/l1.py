"""What derivation reads from the L1 besides the inbox: block hashes and the Portal's deposits.

    L1Blocks        l1_block_number(tag), l1_block_hash(number)     every verifier with an L1
    DepositReader   + deposits(chain_id, from_l1_block, to_l1_block)   with the Portal's address
(bridge/portal.py's `PortalDeposits` is both, over eth_getLogs; fakes replace it in tests.)

`batch_inputs` is the stage between a derived batch and its re-execution: it reads what the
batch's blocks take from the L1 (their origins' hashes, the deposits up to them) and checks
each block against it (below); `overdue` checks the sequencing window after the batch.

`DepositFeed` holds one chain's deposits as the L1 has them: loaded in L1 block order only as
far as a caller asks (the L1 block of the commitment whose batch takes deposits, else the
window's deadline before it), so nothing is read from L1 blocks the verifier has not anchored;
held from the next nonce the chain has not executed on.

`L1Anchors` are the L1 blocks a verifier relied on (the inbox's scan tips, the commitments'
blocks, the blocks' origins), by number and hash. A reorg that replaced any of them replaced
the newest too (each hash commits to its parent), so one look at the newest tells whether the
verifier still stands on the L1's chain; the fork point is the newest anchor the L1 still has,
found by bisection (anchors were all taken on one chain, so the ones still there are a prefix).

Errors: `L1NotReady` (a temporary `DAError`: the verifier waits) when the L1 does not have a
block yet, changed while it was read, or hands out deposits that do not start where the chain
is (deposits read from after the Portal's first one).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from da.batch import Batch, BatchBlock
from da.commitment import CommitmentRecord
from da.derive import Divergence, describe
from da.errors import TemporaryDAError
from rollup.deposits import Deposit
from rollup.types import ZERO_HASH, BlockHeader

__all__ = [
    "L1Blocks",
    "DepositReader",
    "L1Inputs",
    "L1NotReady",
    "DepositFeed",
    "L1Anchors",
    "BlockInputs",
    "batch_inputs",
    "overdue",
    "MAX_RECENT_DEPOSITS",
]

MAX_RECENT_DEPOSITS = 65_536  # executed deposits remembered by hash (to name a duplicate)


class L1NotReady(TemporaryDAError):
    """The L1 cannot answer this yet (a block not there, a reorg while reading): retry."""


class L1Blocks(Protocol):
    """The L1's blocks. Raises ConnectionError (or a subclass) while the L1 is unreachable."""

    def l1_block_number(self, tag: str = "latest") -> int: ...

    def l1_block_hash(self, number: int) -> bytes | None:
        """The hash of L1 block `number`, None if the L1 has no such block (yet)."""
        ...


class DepositReader(L1Blocks, Protocol):
    """The Portal's deposits (bridge/portal.py's port, of the same shape)."""

    def deposits(
        self, chain_id: int, from_l1_block: int, to_l1_block: int | None = None
    ) -> Sequence[Deposit]:
        """The chain's deposits in L1 blocks of the range (inclusive), in L1 log order, each
        with its `l1_block`."""
        ...


@dataclass(frozen=True, slots=True)
class L1Inputs:
    """What a verifier reads from the L1 besides the inbox (services/verifier.py builds it)."""

    blocks: L1Blocks  # origins are canonical, reorgs are followed
    deposits: DepositReader | None = None  # the Portal; None: blocks with deposits wait
    sequencing_window: int = 50  # rollup.toml [bridge]
    deposits_from: int | None = None  # L1 block of the Portal's first deposit, or before it
    # (None: the verifier's first L1 block)

    def feed(self, chain_id: int, from_l1_block: int) -> DepositFeed | None:
        """A fresh feed of the chain's deposits, None without the Portal."""
        if self.deposits is None:
            return None
        start = from_l1_block if self.deposits_from is None else self.deposits_from
        return DepositFeed(self.deposits, chain_id, start)


class DepositFeed:
    """Chain `chain_id`'s deposits from L1 block `from_l1_block` on, by nonce."""

    def __init__(self, reader: DepositReader, chain_id: int, from_l1_block: int) -> None:
        self.reader, self.chain_id = reader, chain_id
        self.loaded_to = from_l1_block - 1  # deposits of L1 blocks up to here are loaded
        self._held: dict[int, Deposit] = {}  # nonce -> deposit, not executed yet
        self._next_loaded: int | None = None  # the nonce the next loaded deposit must have
        self._recent: OrderedDict[bytes, Deposit] = OrderedDict()  # executed, by hash

    def load(self, to_l1_block: int, next_nonce: int) -> None:
        """Load the deposits of L1 blocks up to `to_l1_block`; `next_nonce`: the chain's next
        deposit (where the first ever loaded must start)."""
        if to_l1_block <= self.loaded_to:
            return
        found = self.reader.deposits(self.chain_id, self.loaded_to + 1, to_l1_block)
        expected = next_nonce if self._next_loaded is None else self._next_loaded
        for deposit in found:
            if deposit.nonce != expected:
                raise L1NotReady(
                    f"the L1's deposits of chain {self.chain_id} skip from nonce "
                    f"{expected} to {deposit.nonce} (L1 block {deposit.l1_block}): "
                    "are deposits read from before the Portal's first one "
                    "(--portal-from-block)?"
                )
            if not self.loaded_to < deposit.l1_block <= to_l1_block:
                raise L1NotReady(
                    f"the L1 returned deposit nonce {deposit.nonce} of L1 block "
                    f"{deposit.l1_block} for blocks {self.loaded_to + 1}-"
                    f"{to_l1_block}"
                )
            expected += 1
        for deposit in found:
            self._held[deposit.nonce] = deposit
        self._next_loaded, self.loaded_to = expected, to_l1_block

    def get(self, nonce: int) -> Deposit | None:
        """Deposit `nonce` if it is loaded and not executed."""
        return self._held.get(nonce)

    def first(self, nonce: int, at_or_below: int) -> Deposit | None:
        """Deposit `nonce` if it is loaded and from an L1 block at or below `at_or_below`: the
        oldest deposit not executed, when `nonce` is the chain's next (nonces follow L1 order)."""
        deposit = self._held.get(nonce)
        return deposit if deposit is not None and deposit.l1_block <= at_or_below else None

    def find(self, deposit_hash: bytes) -> Deposit | None:
        """A loaded deposit (executed recently, or not yet) with this transaction hash."""
        recent = self._recent.get(deposit_hash)
        if recent is not None:
            return recent
        return next((d for d in self._held.values() if d.hash == deposit_hash), None)

    def executed(self, next_nonce: int) -> None:
        """The chain executed every deposit below `next_nonce`: stop holding them."""
        for nonce in [n for n in self._held if n < next_nonce]:
            deposit = self._held.pop(nonce)
            self._recent[deposit.hash] = deposit
        while len(self._recent) > MAX_RECENT_DEPOSITS:
            self._recent.popitem(last=False)

    def restore(self, deposits: Sequence[Deposit]) -> None:
        """Hold again deposits the chain executed and then took back (a verifier's rollback):
        they are to be executed again."""
        for deposit in deposits:
            self._recent.pop(deposit.hash, None)
            self._held[deposit.nonce] = deposit

    def rewind(self, l1_block: int) -> None:
        """Forget what was loaded from L1 blocks after `l1_block` (a reorg replaced them; no
        executed deposit came from them: the caller restored those it took back, or starts
        over instead)."""
        if l1_block >= self.loaded_to:
            return
        gone = [n for n, d in self._held.items() if d.l1_block > l1_block]
        for nonce in gone:
            del self._held[nonce]
        if gone:  # nonces follow L1 order: every one from the first gone on was after it
            self._next_loaded = min(gone)
        self.loaded_to = l1_block


class L1Anchors:
    """L1 blocks relied on, by number, with the hash each had; bisected to find a fork point."""

    def __init__(self) -> None:
        self._hashes: dict[int, bytes] = {}
        self._sorted: list[int] = []

    def __len__(self) -> int:
        return len(self._sorted)

    def add(self, number: int, block_hash: bytes) -> None:
        known = self._hashes.get(number)
        if known is not None:
            if known != block_hash:
                raise L1NotReady(
                    f"L1 block {number} changed its hash while it was read (a reorg): reading again"
                )
            return
        self._hashes[number] = block_hash
        bisect.insort(self._sorted, number)

    def newest(self) -> tuple[int, bytes] | None:
        if not self._sorted:
            return None
        return self._sorted[-1], self._hashes[self._sorted[-1]]

    def holds(self, l1: L1Blocks) -> bool:
        """Does the L1 still have the newest anchor (and so every one)?"""
        newest = self.newest()
        return newest is None or l1.l1_block_hash(newest[0]) == newest[1]

    def fork_point(self, l1: L1Blocks) -> int | None:
        """The newest anchor the L1 still has (None: not even the oldest); drops the others."""
        lo, hi = 0, len(self._sorted)  # anchors below lo hold; from hi on they do not
        while lo < hi:
            mid = (lo + hi) // 2
            number = self._sorted[mid]
            if l1.l1_block_hash(number) == self._hashes[number]:
                lo = mid + 1
            else:
                hi = mid
        for number in self._sorted[lo:]:
            del self._hashes[number]
        del self._sorted[lo:]
        return self._sorted[-1] if self._sorted else None

    def prune(self, below: int) -> None:
        """Forget anchors below `below` (a finalized L1 block: no reorg goes under it), the
        newest of them excepted (a fork point to fall back on)."""
        cut = 0
        while cut + 1 < len(self._sorted) and self._sorted[cut + 1] <= below:
            cut += 1
        for number in self._sorted[:cut]:
            del self._hashes[number]
        del self._sorted[:cut]

    def clear(self) -> None:
        self._hashes.clear()
        self._sorted.clear()


# ---- a batch's L1 inputs ----


@dataclass(frozen=True, slots=True)
class BlockInputs:
    """What a block takes from the L1: its deposits, or why it cannot be what it claims
    (`fault`, raised when the verifier reaches the block: an earlier block's fault comes
    first)."""

    deposits: tuple[Deposit, ...] = ()
    fault: Divergence | None = None


def _followless(block: BatchBlock) -> bool:
    """Origin 0 with the zero hash: a block of a chain that follows no L1 (no deposits)."""
    return block.l1_origin == 0 and block.l1_origin_hash == ZERO_HASH


def deposit_name(d: Deposit) -> str:
    return f"deposit 0x{d.source_hash.hex()} (nonce {d.nonce}, L1 block {d.l1_block})"


def batch_inputs(
    batch: Batch,
    c: CommitmentRecord,
    head: BlockHeader,
    next_nonce: int,
    l1: L1Inputs | None,
    feed: DepositFeed | None,
    anchors: L1Anchors | None = None,
) -> list[BlockInputs]:
    """Each block's L1 inputs, checked, before any block is executed (`head`: the block
    before the batch; `next_nonce`: the chain's next deposit there). Reads the L1 (the
    origins' hashes, anchored in `anchors`; the deposits up to C, or to the window's deadline)
    and raises `L1NotReady` while it cannot answer; every rule a block breaks is its `fault`
    (without `l1`, only the rules that need no L1: a block with deposits waits):

    - origin: never below the block before's; at most the L1 block C that committed the batch
      (the sequencer cannot have seen a later one); its hash the L1's at that number
      (origin 0 with the zero hash is "no L1 followed", allowed while the chain has none);
    - deposits: the next ones in nonce order, each the L1's own (its hash), from an L1 block at
      or below the block's origin; else the deposit is named, and said skipped, reordered,
      repeated, altered or not on the L1.
    """
    last_origin = (head.l1_origin, head.l1_origin_hash)
    canonical = _origin_hashes(batch, c, l1.blocks) if l1 is not None else None
    for number, block_hash in (canonical or {}).items():
        if anchors is not None:
            anchors.add(number, block_hash)
    with_deposits = [b for b in batch.blocks if b.deposits]
    if feed is not None and l1 is not None:  # up to C when deposits are taken (C anchors it;
        # a deposit past its block's origin is then named as such), else to the window's
        feed.load(c.l1_block if with_deposits else c.l1_block - l1.sequencing_window, next_nonce)
    elif with_deposits:
        number = batch.first_number + batch.blocks.index(with_deposits[0])
        raise L1NotReady(
            f"block {number} executes L1 deposits, but this verifier was given "
            "no Portal to read them from (--portal)"
        )
    out = []
    for offset, block in enumerate(batch.blocks):
        number = batch.first_number + offset
        try:
            _check_origin(number, block, last_origin, c, canonical)
            deposits = _deposits(number, block, next_nonce, feed)
        except Divergence as fault:
            out.append(BlockInputs(fault=fault))
            out += [BlockInputs()] * (len(batch.blocks) - offset - 1)  # never reached
            return out
        out.append(BlockInputs(deposits))
        last_origin = (block.l1_origin, block.l1_origin_hash)
        next_nonce += len(deposits)
    return out


def _origin_hashes(batch: Batch, c: CommitmentRecord, l1: L1Blocks) -> dict[int, bytes]:
    """The L1's hash of each origin the batch names (at most c's L1 block; the others are
    faults); `L1NotReady` for one the L1 does not have (yet)."""
    out = {}
    for offset, block in enumerate(batch.blocks):
        origin = block.l1_origin
        if origin in out or origin > c.l1_block or _followless(block):
            continue
        found = l1.l1_block_hash(origin)
        if found is None:
            raise L1NotReady(
                f"L1 block {origin}, the L1 origin of block "
                f"{batch.first_number + offset}, is not on the L1 (yet)"
            )
        out[origin] = found
    return out


def _check_origin(
    number: int,
    block: BatchBlock,
    last: tuple[int, bytes],
    c: CommitmentRecord,
    canonical: dict[int, bytes] | None,
) -> None:
    origin, origin_hash = block.l1_origin, block.l1_origin_hash
    if origin < last[0]:
        raise Divergence(number, f"its L1 origin {origin} is below the block before's ({last[0]})")
    if origin == last[0] and origin_hash != last[1]:
        raise Divergence(
            number,
            f"it names L1 block {origin} as 0x{origin_hash.hex()}, the "
            f"block before as 0x{last[1].hex()}",
        )
    if _followless(block):
        return
    if origin > c.l1_block:
        raise Divergence(
            number,
            f"its L1 origin {origin} is after L1 block {c.l1_block}, which committed {describe(c)}",
        )
    if canonical is not None and canonical[origin] != origin_hash:
        raise Divergence(
            number,
            f"its L1 origin, block {origin} 0x{origin_hash.hex()}, is "
            f"not the L1's block {origin} (0x{canonical[origin].hex()})",
        )


def _deposits(
    number: int, block: BatchBlock, next_nonce: int, feed: DepositFeed | None
) -> tuple[Deposit, ...]:
    out: list[Deposit] = []
    if not block.deposits or feed is None:
        return ()
    for index, posted in enumerate(block.deposits):
        nonce = next_nonce + index
        expected = feed.get(nonce)
        if expected is None or expected.hash != posted:
            raise Divergence(number, _misplaced(block, index, nonce, expected, feed))
        if expected.l1_block > block.l1_origin:
            raise Divergence(
                number, f"{deposit_name(expected)} is after the block's L1 origin {block.l1_origin}"
            )
        out.append(expected)
    return tuple(out)


def _misplaced(
    block: BatchBlock, index: int, nonce: int, expected: Deposit | None, feed: DepositFeed
) -> str:
    """Why the block's deposit `index` (hash posted) is not the L1's deposit `nonce`."""
    posted = block.deposits[index]
    found = feed.find(posted)
    if found is not None and found.nonce < nonce:
        return f"{deposit_name(found)} is executed again (a duplicate)"
    if found is not None and expected is not None:
        if expected.hash in block.deposits[index + 1 :]:
            return (
                f"{deposit_name(found)} comes before {deposit_name(expected)} (the deposits "
                "are reordered)"
            )
        return f"{deposit_name(expected)} is skipped: the block executes nonce {found.nonce}"
    if expected is None:
        return (
            f"it executes deposit nonce {nonce} (transaction 0x{posted.hex()}), which the L1 "
            f"does not have at or below the block's L1 origin {block.l1_origin}"
        )
    return (
        f"its deposit nonce {nonce} is transaction 0x{posted.hex()}, not the L1's "
        f"{deposit_name(expected)}, transaction 0x{expected.hash.hex()} (altered)"
    )


def overdue(
    c: CommitmentRecord, last_number: int, next_nonce: int, l1: L1Inputs, feed: DepositFeed | None
) -> None:
    """The window (bridge/README.md): a deposit from L1 block D must be in a batch committed by
    L1 block D + W. After batch `c` (committed at C, the chain's next deposit `next_nonce`),
    a deposit not executed from a block D <= C - W is overdue: `Divergence` at the batch's
    last block `last_number` (the block that should at the latest have held it)."""
    if feed is None:
        return
    window = l1.sequencing_window
    late = feed.first(next_nonce, c.l1_block - window)
    if late is not None:
        raise Divergence(
            last_number,
            f"{deposit_name(late)} due at L1 block "
            f"{late.l1_block + window}; {describe(c)} leaves it out",
        )
