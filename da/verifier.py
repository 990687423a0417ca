"""The verifier: rebuild an app's chain from the L1 inbox and the DA layer alone, and check it.

    for each commitment of the chain on L1, in order (da/commitment.py):
        index == the next index?  first_block == head + 1?        (a gap, a reorder)
        derive_batch: refs -> payloads -> channel -> data hash -> batch   (da/derive.py)
        parent hash == hash(head)?
        L1 inputs (da/l1.py, with an L1): every origin canonical, at most the commitment's L1
                   block, never decreasing; each block's deposits the next ones, the L1's own
                   (from the Portal's logs), from at or below its origin
        every inbound message: in its source chain's DA data, at (src_block, src_index),
                   byte for byte?   (SourceOutbox: the source's batches on the same inbox,
                   derived with the source's chain id; the source is not re-executed)
        per block: execute_block (deposits from the L1, inbound messages, transactions), seal
                   (vm/stf.py, as the sequencer's builder does) -> every header rebuilt; the
                   hash chain links them; posted outbound messages == the ones execution sent?
        last block: state root == the batch's claim?  hash == the batch's claim?
                    output_root(header) == the commitment's output root on L1?
                    no deposit from L1 block D <= C - sequencing_window left out (C: the
                    commitment's L1 block)?  "deposit 0x.. (nonce n, L1 block D) due at L1
                    block D+W" otherwise, at the batch's last block
    -> "in sync at block N", or "diverged at block N: reason" (and it stops there)
The VM, the genesis header and state are the sequencer's own (built by the caller with the
sequencer's constructor, services/verifier.py), so the two cannot build different chains.
The batch claims only its last block's hash and state root (da/batch.py explains why), so a
mismatch there is reported at the batch's last block; an invalid transaction or signature is
reported at its own block. A backend or L1 that cannot answer, or data not (yet) there, sets
`waiting` and is retried; it never moves the verified head.

L1 reorgs: the verifier keeps the L1 blocks it relied on (scan tips, commitments' blocks, the
origins of the blocks it verified) with their hashes (da/l1.py's `L1Anchors`). Each step looks
at the newest first: if the L1 no longer has it, the newest anchor it still has is the fork
point F. When nothing verified relied on an L1 block after F (the verified commitments' L1
blocks and the head's origin are at or below F), it only reads the L1 again from there
(commitments queued, deposits loaded, other chains' commitments). Otherwise it re-derives from
the fork point: each verified commitment the L1 has not finalized keeps an undo log (each
state key its blocks changed with its value before, or its absence; the head, the L1 block
and the deposits before it; not a copy of the state), so it takes back, newest first, every
commitment whose L1 block or whose blocks' origins are after F, and reads the L1 again from
the newest one left ("re-deriving from block N (L1 block A)"). The inbox owner's revert of
batches from index i on is taken back the same way, to the commitment before i. The logs go
when the L1 finalizes their commitment (no reorg reaches below finality) or, oldest first,
past `max_undo_bytes`, so memory stays bounded; what they do not reach (a reorg under every
anchor, a revert of final batches) is re-derived from genesis with `rebuild` (`rewinds`).
A batch that diverges, or fails, part way through its replay is taken back at once, so the
replayer always stands on the last verified block, and a diverged verifier needs no rebuild.

Cross-app messages: a destination trusts a source's posted outbound list, and the source's
own verifier checks that list against re-execution, so together they check every message
without anyone re-executing another chain. The inbound messages of a whole batch are checked
before any of its blocks is executed: a source that has not posted the block a message comes
from makes the verifier wait (naming the source and block) with its head and state untouched;
a message the source's posted block does not hold is a divergence at the destination's block.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from da.backend import DABackend
from da.batch import BatchBlock
from da.commitment import CommitmentRecord, InboxReader, RevertRecord
from da.derive import (
    DerivedBatch,
    Divergence,
    SenderRecovery,
    SourceNotPosted,
    SourceOutbox,
    derive_batch,
    describe,
)
from da.errors import DataNotFound, TemporaryDAError
from da.l1 import (
    BlockInputs,
    L1Anchors,
    L1Inputs,
    L1NotReady,
    batch_inputs,
    overdue,
)
from rollup.blocks import block_hash
from rollup.deposits import Deposit
from rollup.messages import CrossMessage, encode_message
from rollup.outputs import output_root
from rollup.types import BlockHeader, Hash32, Transaction
from vm.bridge import InvalidDeposits, next_deposit_nonce
from vm.bus import InvalidInbound
from vm.commitment import StateTree
from vm.interface import ExecutionVM
from vm.state import DictReader, State
from vm.stf import InvalidBlockTransaction, L1Origin, execute_block

__all__ = ["MAX_UNDO_BYTES", "Replayer", "UndoLog", "Verifier", "VerifierStatus", "check_inbound"]

log = logging.getLogger(__name__)

MAX_UNDO_BYTES = 256 * 2**20  # undo logs kept (keys and prior values), the oldest dropped first


@dataclass(slots=True)
class UndoLog:
    """What execution changed since `Replayer.track`: each key's value before (None: absent),
    and the head before; `Replayer.undo` puts them back."""

    head: BlockHeader
    head_hash: Hash32
    prior: dict[bytes, bytes | None] = field(default_factory=dict)
    size: int = 0  # bytes of the keys and prior values held

    def keep(self, key: bytes, value: bytes | None) -> None:
        if key not in self.prior:  # the first change of a key has its value before the log
            self.prior[key] = value
            self.size += len(key) + len(value or b"")


class Replayer:
    """A chain re-executed in memory with the one state-transition function."""

    def __init__(
        self,
        chain_id: int,
        genesis: BlockHeader,
        state: dict[bytes, bytes],
        tree: StateTree,
        vm: ExecutionVM,
    ) -> None:
        if tree.root != genesis.state_root:
            raise ValueError("the genesis state does not match the genesis state root")
        self.chain_id, self.head, self.world = chain_id, genesis, state
        self.tree, self.vm = tree, vm
        self.head_hash = block_hash(genesis)
        self._log: UndoLog | None = None  # recording what execution changes, while set

    def track(self) -> UndoLog:
        """Record from here on what execution changes, to take it back with `undo`."""
        self._log = UndoLog(self.head, self.head_hash)
        return self._log

    def untrack(self) -> None:
        self._log = None

    def undo(self, log: UndoLog) -> None:
        """Take back what was executed since `log` began (newer logs first); the state tree
        too, so its root is the restored head's."""
        world = self.world
        for key, value in log.prior.items():
            if value is None:
                world.pop(key, None)
            else:
                world[key] = value
        self.tree.update(log.prior.items())
        self.head, self.head_hash, self._log = log.head, log.head_hash, None

    def next_deposit(self) -> int:
        """The nonce of the next L1 deposit the chain executes."""
        return next_deposit_nonce(DictReader(self.world))

    def execute(
        self,
        number: int,
        posted: BatchBlock,
        txs: list[Transaction],
        deposits: Sequence[Deposit] = (),
    ) -> BlockHeader:
        """Build block `number` on the head as the sequencer's builder does (deposits, inbound
        messages, transactions, then seal); `Divergence` if one could not have been included."""
        env = posted.env(number, self.chain_id)
        state = State(DictReader(self.world))
        try:
            executed = execute_block(
                state, env, self.vm, posted.inbound, txs, strict=True, deposits=deposits
            )
        except InvalidDeposits as exc:
            raise Divergence(number, f"deposits cannot be executed: {exc}") from None
        except InvalidInbound as exc:
            raise Divergence(number, f"inbound messages cannot be executed: {exc}") from None
        except InvalidBlockTransaction as exc:
            raise Divergence(number, str(exc)) from None
        if not _same_messages(executed.outbound, posted.outbound):
            log.error(
                "block %d sent %s, the batch posts %s",
                number,
                _ids(executed.outbound),
                _ids(posted.outbound),
            )
            raise Divergence(number, "posted outbound messages differ from execution")
        sealed = executed.seal(
            self.head,
            posted.timestamp_ms,
            self.tree,
            L1Origin(posted.l1_origin, posted.l1_origin_hash),
        )
        world, undo = self.world, self._log
        for key, (_before, after) in sealed.changes.items():
            if undo is not None:
                undo.keep(key, world.get(key))
            if after is None:
                world.pop(key, None)
            else:
                world[key] = after
        self.head, self.head_hash = sealed.block.header, sealed.block.hash
        return self.head


def _same_messages(a: Sequence[CrossMessage], b: Sequence[CrossMessage]) -> bool:
    return len(a) == len(b) and all(encode_message(x) == encode_message(y) for x, y in zip(a, b))


def _ids(messages: Sequence[CrossMessage]) -> list[str]:
    return ["0x" + m.id.hex() for m in messages]


def check_inbound(number: int, message: CrossMessage, sent: Mapping[int, CrossMessage]) -> None:
    """`message`, executed in block `number`, must be what its source posted at its place
    (`sent`: the source block's messages to this chain, by index); `Divergence` otherwise."""
    posted = sent.get(message.src_index)
    if posted is not None and encode_message(posted) == encode_message(message):
        return
    what = (
        f"inbound message 0x{message.id.hex()} from chain {message.src_chain} block "
        f"{message.src_block} index {message.src_index}"
    )
    data = f"chain {message.src_chain}'s DA data"
    elsewhere = [i for i, m in sorted(sent.items()) if m.id == message.id]
    if elsewhere:
        raise Divergence(number, f"{what} differs from {data} (it has it at index {elsewhere[0]})")
    raise Divergence(number, f"{what} is not in {data}")


@dataclass(slots=True)
class VerifierStatus:
    chain_id: int
    state: str = "in_sync"  # "in_sync" | "diverged"
    block: int = 0  # verified head, or the block of the divergence
    verified: int = 0  # verified head (re-executed and checked)
    head_hash: str = ""  # hex hash and state root of the verified head
    state_root: str = ""
    reason: str | None = None  # why it diverged
    waiting: str | None = None  # why it cannot progress right now (retried)
    batches: int = 0  # verified by this process
    blocks: int = 0
    txs: int = 0
    messages_checked: int = 0  # inbound messages found in their source chain's DA data
    finalized: int = 0  # newest verified block whose commitment the L1 has finalized
    rewinds: int = 0  # times it re-derived from genesis (a revert or reorg past its undo logs)
    rollbacks: int = 0  # times it took verified batches back with its undo logs (same causes)
    rolled_back_blocks: int = 0  # verified blocks taken back by those
    undoable: int = 0  # verified batches it can take back (not final, their undo logs kept)
    undo_bytes: int = 0  # held by those undo logs (keys and prior values)
    l1_reorgs: int = 0  # L1 reorgs under what it had read, followed
    l1_block: int = 0  # L1 block of the newest verified commitment
    seconds_replaying: float = 0.0
    updated_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)

    @property
    def message(self) -> str:
        if self.state == "diverged":
            return f"diverged at block {self.block}: {self.reason}"
        return f"in sync at block {self.block}"

    def as_dict(self) -> dict[str, object]:
        return {
            "chain_id": self.chain_id,
            "status": self.state,
            "block": self.block,
            "verified": self.verified,
            "head_hash": self.head_hash,
            "state_root": self.state_root,
            "message": self.message,
            "reason": self.reason,
            "waiting": self.waiting,
            "batches": self.batches,
            "blocks": self.blocks,
            "txs": self.txs,
            "messages_checked": self.messages_checked,
            "finalized": self.finalized,
            "l1_block": self.l1_block,
            "rewinds": self.rewinds,
            "rollbacks": self.rollbacks,
            "rolled_back_blocks": self.rolled_back_blocks,
            "undoable": self.undoable,
            "undo_bytes": self.undo_bytes,
            "l1_reorgs": self.l1_reorgs,
            "seconds_replaying": round(self.seconds_replaying, 3),
            "updated_ms": self.updated_ms,
        }


@dataclass(slots=True)
class _Applied:
    """A verified commitment the L1 has not finalized, and how to take it back."""

    index: int
    l1_block: int
    last_block: int
    origin: int  # the L1 origin of its last block
    before_l1: int  # the L1 block of the commitment before it
    before_origin: int  # the L1 origin of the block before it
    deposits: tuple[Deposit, ...]  # the L1 deposits its blocks executed
    undo: UndoLog | None  # None: dropped to bound memory (it cannot be taken back)


class Verifier:
    def __init__(
        self,
        replayer: Replayer,
        inbox: InboxReader,
        backends: Mapping[str, DABackend],
        from_l1_block: int = 0,
        recovery_threads: int = 2,
        sources: SourceOutbox | None = None,
        rebuild: Callable[[], Replayer] | None = None,
        l1: L1Inputs | None = None,
        max_undo_bytes: int = MAX_UNDO_BYTES,
    ) -> None:
        """`rebuild` makes a fresh replayer at genesis: when the inbox's owner reverts, or an
        L1 reorg removes, batches this verifier applied that its undo logs (at most
        `max_undo_bytes`) cannot take back, it starts over with it. `l1`: the L1's blocks and
        the Portal's deposits (without it, origins are not checked against the L1, blocks with
        deposits wait, and L1 reorgs are not followed)."""
        self.replayer = replayer
        self.l1 = l1
        self._feed = l1.feed(replayer.chain_id, from_l1_block) if l1 is not None else None
        self._anchors = L1Anchors()
        self._applied_l1 = from_l1_block - 1  # L1 block of the newest verified commitment
        self._rebuild, self._from_l1 = rebuild, from_l1_block
        self.max_undo_bytes, self._undo_bytes = max_undo_bytes, 0
        self.chain_id = replayer.chain_id
        self.inbox, self.backends = inbox, backends
        # the source chains commit to the same inbox, from the same L1 block on
        self.sources = sources or SourceOutbox(self.chain_id, inbox, backends, from_l1_block)
        head = replayer.head
        self._status = VerifierStatus(
            self.chain_id,
            block=head.number,
            verified=head.number,
            head_hash="0x" + replayer.head_hash.hex(),
            state_root="0x" + head.state_root.hex(),
        )
        self._lock = threading.Lock()
        self._scanned = from_l1_block - 1  # L1 blocks whose commitments are queued or done
        self._queue: deque[CommitmentRecord] = deque()
        self._next_index = 0
        self._verified: deque[_Applied] = deque()  # oldest first, not finalized
        self._pool = (
            ThreadPoolExecutor(recovery_threads, thread_name_prefix="recover")
            if recovery_threads > 0
            else None
        )

    def status(self) -> VerifierStatus:
        with self._lock:
            return replace(self._status)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- running ----

    def run(self, stop: threading.Event, poll_s: float = 0.5) -> None:
        """Verify until `stop` is set; never raises."""
        while not stop.is_set():
            try:
                progressed = self.step()
            except Exception as exc:  # noqa: BLE001 - report, retry; a verifier must not die
                log.exception("verifier step failed")
                self._update(waiting=f"internal error: {type(exc).__name__}: {exc}")
                progressed = False
            if not progressed:
                stop.wait(poll_s)

    def step(self) -> bool:
        """Verify what the L1 holds now; True if the verified head moved. A diverged verifier
        still reads the L1, for the owner's revert of the bad batch."""
        self.sources.new_round()
        try:
            self._follow_l1()
            self._scan()
            if self._status.state == "diverged":
                return False
            moved = self._drain()
            self._follow_finality()
        except (SourceNotPosted, L1NotReady) as exc:
            self._update(waiting=str(exc))
            return False
        except (TemporaryDAError, ConnectionError) as exc:
            self._update(waiting=f"unreachable: {exc}")
            return False
        except DataNotFound as exc:
            self._update(waiting=f"DA data not available: {exc}")
            return False
        except Divergence as exc:
            self._diverge(exc)
            return False
        except Exception as exc:  # a malformed L1 answer: report it, keep the head, retry
            self._update(waiting=f"cannot read the L1 inbox: {exc}")
            return False
        self._update(waiting=None)
        return moved

    def verify_until_idle(self, timeout: float = 60.0) -> VerifierStatus:
        """Step until nothing is left to verify (or the verifier diverged); for CLIs and tests."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.step():
            pass
        return self.status()

    # ---- one commitment ----

    def _scan(self) -> None:
        """Queue the commitments of the L1 blocks not scanned yet, the owner's reverts applied;
        with an L1, anchor their blocks and the scan's tip (read twice: a reorg while the
        inbox was read makes it read again)."""
        latest = self.inbox.l1_block_number("latest")
        if latest <= self._scanned:
            return
        tip = self._hash_of(latest) if self.l1 is not None else b""
        for revert in self.inbox.reverts(self.chain_id, self._scanned + 1, latest):
            if self._undo(revert):
                self._scan()  # rolled back: read the L1 again from there
                return
        found = [
            c
            for c in self.inbox.commitments(self.chain_id, self._scanned + 1, latest)
            if c.chain_id == self.chain_id and not self._applied(c)
        ]
        if self.l1 is not None:
            anchors = {c.l1_block: self._hash_of(c.l1_block) for c in found}
            if self._hash_of(latest) != tip:
                raise L1NotReady("the L1 reorganized while its inbox was read: reading again")
            for number, block_hash in (*anchors.items(), (latest, tip)):
                self._anchors.add(number, block_hash)
        self._queue.extend(found)
        self._scanned = latest

    def _applied(self, c: CommitmentRecord) -> bool:
        """Is `c` a commitment this verifier verified (read again after an L1 reorg)?"""
        return c.index < self._next_index and c.l1_block <= self._applied_l1

    def _hash_of(self, number: int) -> bytes:
        assert self.l1 is not None
        found = self.l1.blocks.l1_block_hash(number)
        if found is None:
            raise L1NotReady(f"L1 block {number} is not on the L1 (yet)")
        return found

    # ---- L1 reorgs and reverts ----

    def _follow_l1(self) -> None:
        """Find out whether the L1 still has the blocks this verifier relied on; follow a
        reorg that replaced some (see the module docstring)."""
        if self.l1 is None or self._anchors.holds(self.l1.blocks):
            return
        fork = self._anchors.fork_point(self.l1.blocks)
        with self._lock:
            self._status.l1_reorgs += 1
        why = f"an L1 reorg replaced L1 blocks after {fork}"
        index = None if fork is None else self._reorg_target(fork)
        if fork is None or index is None:
            relied = max(self._applied_l1, self.replayer.head.l1_origin)
            self._start_over(f"{why} (this verifier relied on L1 blocks up to {relied})")
            return
        if index == self._next_index and self._status.state != "diverged":
            log.warning(
                "%s, which nothing verified relied on: reading the L1 again from there", why
            )
            self._read_again(fork)
        elif not self._re_derive(index, why, fork):
            self._start_over(why)

    def _reorg_target(self, fork: int) -> int | None:
        """The first verified commitment that relied on an L1 block after `fork` (its own, or
        its blocks' origins): it and those after it are taken back (the next index: none).
        None when what stands before it relied on one too: only genesis is under that."""
        for entry in self._verified:
            if entry.l1_block > fork or entry.origin > fork:
                if entry.before_l1 > fork or entry.before_origin > fork:
                    return None
                return entry.index
        relied = max(self._applied_l1, self.replayer.head.l1_origin)
        return self._next_index if relied <= fork else None

    def _undo(self, revert: RevertRecord) -> bool:
        """Apply the owner's revert of commitments `from_index` on; True if that removed what
        this verifier applied (or the batch it diverged at), so it rolled back."""
        diverged = self._status.state == "diverged"
        if revert.from_index >= self._next_index + (1 if diverged else 0):
            self._queue = deque(c for c in self._queue if c.index < revert.from_index)
            return False
        why = (
            f"the inbox owner reverted batches from {revert.from_index} on "
            f"(chain resumes at block {revert.next_block}, L1 block {revert.l1_block})"
        )
        if not self._re_derive(revert.from_index, why, None):
            self._start_over(why)
        return True

    def _re_derive(self, index: int, why: str, fork: int | None) -> bool:
        """Take back the verified commitments from `index` on, newest first, and read the L1
        again from the newest one left (`fork`: an L1 reorg's fork point). False if the undo
        logs do not reach back there (nothing done) or the state root does not come back:
        the caller starts over."""
        if not self._reachable(index):
            return False
        verified = self.replayer.head.number
        undone = self._roll_back(index)
        head = self.replayer.head
        if self.replayer.tree.root != head.state_root:  # a bug: genesis is the safe way back
            log.error("the state root after a rollback to block %d differs", head.number)
            return False
        log.warning(
            "%s: re-deriving from block %d (L1 block %d)",
            why,
            head.number,
            max(self._applied_l1, self._from_l1),
        )
        self._read_again(fork)
        with self._lock:
            s = self._status
            s.state, s.reason, s.waiting = "in_sync", None, None
            s.l1_block = max(self._applied_l1, 0)
            if undone:
                s.rollbacks += 1
                s.rolled_back_blocks += verified - head.number
        self._show_head()
        return True

    def _reachable(self, index: int) -> bool:
        """Can the undo logs take back the verified commitments from `index` on?"""
        if index >= self._next_index:
            return True
        entry = next((e for e in self._verified if e.index == index), None)
        return entry is not None and entry.undo is not None  # (newer ones keep theirs)

    def _roll_back(self, index: int) -> int:
        """Take back the verified commitments from `index` on, newest first; how many."""
        undone = 0
        while self._verified and self._verified[-1].index >= index:
            entry = self._verified.pop()
            assert entry.undo is not None  # (`_reachable`)
            self.replayer.undo(entry.undo)
            self._forget(entry)
            if self._feed is not None:
                self._feed.restore(entry.deposits)
            self._applied_l1 = entry.before_l1
            undone += 1
        self._next_index = min(self._next_index, index)
        return undone

    def _read_again(self, fork: int | None) -> None:
        """Read the L1 again from the newest verified commitment's block (it may hold later
        ones too); after a reorg, forget what was read from L1 blocks after `fork`."""
        self._queue.clear()
        self._scanned = max(self._applied_l1 - 1, self._from_l1 - 1)
        if fork is None:
            return
        if self._feed is not None:
            self._feed.rewind(fork)
        self.sources.reset()

    def _start_over(self, why: str) -> None:
        if self._rebuild is None:
            raise Divergence(self.replayer.head.number, f"{why}; this verifier cannot undo")
        log.warning("%s: re-deriving from genesis", why)
        self.replayer = self._rebuild()
        self._queue.clear()
        self._verified.clear()
        self._anchors.clear()
        self._next_index, self._scanned = 0, self._from_l1 - 1
        self._applied_l1, self._undo_bytes = self._from_l1 - 1, 0
        if self.l1 is not None:
            self._feed = self.l1.feed(self.chain_id, self._from_l1)
        self.sources.reset()
        with self._lock:
            s = self._status
            s.state, s.reason, s.waiting = "in_sync", None, None
            s.finalized, s.rewinds = 0, s.rewinds + 1
        self._show_head()

    def _drain(self) -> bool:
        moved = False
        while self._queue:
            commitment = self._queue[0]
            self._verify(commitment)
            self._queue.popleft()
            moved = True
        return moved

    def _verify(self, c: CommitmentRecord) -> None:
        replayer = self.replayer
        self._check_place(c)
        started = time.perf_counter()
        derived = derive_batch(c, self.backends, self.chain_id)
        if derived.batch.parent_hash != replayer.head_hash:
            raise Divergence(
                c.first_block,
                f"{describe(c)}: its parent hash is not the hash of block {replayer.head.number}",
            )
        checked = self._check_inbound(derived)
        inputs = batch_inputs(
            derived.batch,
            c,
            replayer.head,
            replayer.next_deposit(),
            self.l1,
            self._feed,
            self._anchors,
        )
        before = (self._applied_l1, replayer.head.l1_origin)
        undo = self._execute(c, derived, inputs)
        self._applied_l1 = c.l1_block
        with self._lock:
            s = self._status
            s.batches, s.l1_block = s.batches + 1, c.l1_block
            s.blocks += len(derived.batch.blocks)
            s.txs += len(derived.posted)
            s.messages_checked += sum(checked.values())
            s.seconds_replaying += time.perf_counter() - started
        deposits = tuple(d for taken in inputs for d in taken.deposits)
        self._keep(
            _Applied(
                index=c.index,
                l1_block=c.l1_block,
                last_block=c.last_block,
                origin=replayer.head.l1_origin,
                before_l1=before[0],
                before_origin=before[1],
                deposits=deposits,
                undo=undo,
            )
        )
        self._next_index += 1
        self._show_head()
        for chain_id, block in _newest_sources(derived).items():
            self.sources.consumed(chain_id, block)

    def _check_place(self, c: CommitmentRecord) -> None:
        """`c` must be the next batch, from the block after the head."""
        expected = self.replayer.head.number + 1
        if c.index != self._next_index:
            raise Divergence(
                expected,
                f"{describe(c)} comes where batch {self._next_index} was "
                "expected (a batch is missing or out of order)",
            )
        if c.first_block != expected:
            if c.first_block > expected:
                what = f"a gap: blocks {expected}-{c.first_block - 1} were never posted"
            else:
                what = "blocks already posted (a reordered or repeated batch)"
            raise Divergence(expected, f"{describe(c)} starts at block {c.first_block}: {what}")

    def _execute(
        self, c: CommitmentRecord, derived: DerivedBatch, inputs: Sequence[BlockInputs]
    ) -> UndoLog:
        """Replay the batch and check what it claims; its undo log. A batch that fails part
        way is taken back at once: the replayer stays on the last verified block."""
        replayer = self.replayer
        undo = replayer.track()
        try:
            self._replay(derived, inputs)
            self._check_claims(derived)
            next_deposit = replayer.next_deposit()
            if self.l1 is not None:  # (nothing after the replay waits: it could not be retried)
                overdue(c, derived.batch.last_number, next_deposit, self.l1, self._feed)
        except BaseException:
            replayer.undo(undo)
            raise
        finally:
            replayer.untrack()
        if self._feed is not None:
            self._feed.executed(next_deposit)
        return undo

    def _check_inbound(self, derived: DerivedBatch) -> dict[int, int]:
        """Check every inbound message of the batch against its source chain's DA data,
        before anything is executed; returns how many were checked per source chain."""
        batch = derived.batch
        checked: dict[int, int] = {}
        for offset, block in enumerate(batch.blocks):
            number = batch.first_number + offset
            for message in block.inbound:
                try:
                    sent = self.sources.sent(message.src_chain, message.src_block)
                except SourceNotPosted as exc:
                    raise SourceNotPosted(
                        exc.chain_id,
                        exc.block,
                        f"{exc.reason}; inbound "
                        f"message 0x{message.id.hex()} of block {number} "
                        "comes from it",
                    ) from None
                check_inbound(number, message, sent)
                checked[message.src_chain] = checked.get(message.src_chain, 0) + 1
        return checked

    def _replay(self, derived: DerivedBatch, inputs: Sequence[BlockInputs]) -> None:
        recovery = SenderRecovery(derived, self._pool)
        try:
            for (number, txs), posted, taken in zip(
                recovery.blocks(), derived.batch.blocks, inputs, strict=True
            ):
                if taken.fault is not None:
                    raise taken.fault
                self.replayer.execute(number, posted, txs, taken.deposits)
        finally:
            recovery.cancel()

    def _check_claims(self, derived: DerivedBatch) -> None:
        head, batch, c = self.replayer.head, derived.batch, derived.commitment
        where = describe(c)
        if head.state_root != batch.state_root:
            raise Divergence(
                head.number,
                f"{where}: re-executed state root "
                f"0x{head.state_root.hex()}, the batch claims "
                f"0x{batch.state_root.hex()}",
            )
        if self.replayer.head_hash != batch.block_hash:
            raise Divergence(
                head.number,
                f"{where}: re-executed block hash "
                f"0x{self.replayer.head_hash.hex()}, the batch claims "
                f"0x{batch.block_hash.hex()} (a header field differs)",
            )
        computed = output_root(head)
        if computed != c.output_root:
            raise Divergence(
                head.number,
                f"{where}: output root 0x{computed.hex()}, the L1 "
                f"commitment says 0x{c.output_root.hex()}",
            )

    def _follow_finality(self) -> None:
        if not self._verified and not len(self._anchors):
            return
        finalized_l1 = self.inbox.l1_block_number("finalized")
        self._anchors.prune(finalized_l1)  # no reorg reaches below it
        newest = None
        while self._verified and self._verified[0].l1_block <= finalized_l1:
            entry = self._verified.popleft()  # final: its undo log is not needed any more
            self._forget(entry)
            newest = entry.last_block
        if newest is not None:
            with self._lock:
                self._status.finalized = newest
            self._show_head()

    # ---- undo logs ----

    def _keep(self, entry: _Applied) -> None:
        """Keep a verified commitment's undo log; drop the oldest past `max_undo_bytes`."""
        self._verified.append(entry)
        self._undo_bytes += entry.undo.size if entry.undo is not None else 0
        for older in self._verified:
            if self._undo_bytes <= self.max_undo_bytes:
                return
            self._forget(older)
            older.undo = None

    def _forget(self, entry: _Applied) -> None:
        if entry.undo is not None:
            self._undo_bytes -= entry.undo.size

    # ---- status ----

    def _show_head(self) -> None:
        replayer = self.replayer
        with self._lock:
            s = self._status
            s.block = s.verified = replayer.head.number
            s.head_hash = "0x" + replayer.head_hash.hex()
            s.state_root = "0x" + replayer.head.state_root.hex()
            s.undoable = sum(e.undo is not None for e in self._verified)
            s.undo_bytes = self._undo_bytes

    def _update(self, waiting: str | None) -> None:
        with self._lock:
            self._status.waiting = waiting
            self._status.updated_ms = time.time_ns() // 1_000_000

    def _diverge(self, exc: Divergence) -> None:
        log.error("%s", exc)
        with self._lock:
            s = self._status
            s.state, s.block, s.reason, s.waiting = "diverged", exc.block, exc.reason, None
            s.updated_ms = time.time_ns() // 1_000_000


def _newest_sources(derived: DerivedBatch) -> dict[int, int]:
    """The newest source block of each source chain whose messages the batch executed."""
    newest: dict[int, int] = {}
    for block in derived.batch.blocks:
        for m in block.inbound:
            newest[m.src_chain] = max(newest.get(m.src_chain, 0), m.src_block)
    return newest
