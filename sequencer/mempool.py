"""Transactions waiting for a block, and the rules that keep anyone from flooding the pool.

A sender's transactions leave in nonce order. Executable ones (a run of nonces from the
sender's next expected nonce) wait in arrival order for `take`; one beyond a gap is queued until
the gap fills. geth's txpool is the reference for the rules:

- Cost: the max cost (gas * fee cap + value) of all a sender's pooled transactions, executable
  and queued, never exceeds its balance. Admission checks a new one against `owed` (what goes
  before it); `revalidate` drops what the account's nonce has passed and, from the highest
  nonce down, what its balance does not pay for: after an admission, and when a block
  changes the account.
- Slots: at most `max_queued_per_sender` queued per sender ("nonce too high" beyond) and
  `max_queued` in all. Executable ones are not limited per sender while the pool has room;
  when it is full, only the first `account_slots` of each sender are protected.
- Lifetime: a sender's queued transactions are dropped once it has made no progress (its first
  one queued, or one promoted) for `lifetime` seconds of the injected `clock`.
- A full pool: a transaction's standing is its class (queued < executable beyond its sender's
  `account_slots` < executable within them), then its effective gas price. A new transaction
  takes the place of the lowest-standing evictable one if it stands higher itself, else
  "txpool is full". Only the last transaction of a sender's executable run or of its queue is
  evictable, so an eviction strands no successor; the new one's own sender is never evicted.
- Replacement: the same sender and nonce need a fee bump of 10% (fee cap and tip), as geth.

Whatever the pool lets go of after accepting it goes to `on_discard` with the error its waiter
should see. Cost: `add` and `take` are O(1) while the pool has room. The heap of evictable
transactions exists only under pressure: built from each sender's last transactions when the
pool first fills, kept with one push per add, cleaned lazily (an entry is checked when it
reaches the top), and let go once the pool drains below 90%.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from rollup.errors import (
    AlreadyKnown,
    InsufficientFunds,
    NonceTooHigh,
    NonceTooLow,
    ReplacementUnderpriced,
    TxDropped,
    TxPoolFull,
    TxRejected,
)
from rollup.types import Address, Transaction

__all__ = ["Mempool", "Discard", "QUEUED", "EXCESS", "PROTECTED"]

PRICE_BUMP_PERCENT = 10
QUEUED, EXCESS, PROTECTED = 0, 1, 2  # a transaction's class in a full pool: lowest goes first

Discard = Callable[[Transaction, TxRejected], None]


@dataclass(slots=True, eq=False)
class _Slot:
    tx: Transaction
    queued: bool = False
    dropped: bool = False  # left the pool: the arrival queue skips it


@dataclass(slots=True)
class _Sender:
    next_nonce: int  # one past the executable run (where the run would start if it is empty)
    ready: dict[int, _Slot] = field(default_factory=dict)  # the run: a contiguous range
    queued: dict[int, _Slot] = field(default_factory=dict)  # beyond a gap
    cost: int = 0  # max cost of every pooled transaction, executable and queued

    @property
    def first_ready(self) -> int:
        return self.next_nonce - len(self.ready)

    def last(self) -> _Slot:
        """The transaction with the highest nonce."""
        if self.queued:
            return self.queued[max(self.queued)]
        return self.ready[self.next_nonce - 1]


_HeapEntry = tuple[int, int, int, _Slot]  # (class, price, push order, slot): oldest goes first


class Mempool:
    def __init__(
        self,
        max_size: int = 200_000,
        max_queued_per_sender: int = 64,
        max_queued: int = 20_000,
        account_slots: int = 16,
        lifetime: float = 900.0,
        base_fee: int = 0,
        clock: Callable[[], float] = time.monotonic,
        on_discard: Discard | None = None,
    ) -> None:
        self._ready: deque[_Slot] = deque()  # executable, in arrival order
        self._senders: dict[Address, _Sender] = {}
        # senders with queued transactions, by their last progress (oldest first)
        self._beats: OrderedDict[Address, float] = OrderedDict()
        # under pressure: each sender's last executable and last queued (and stale entries)
        self._heap: list[_HeapEntry] | None = None
        self._pushes = itertools.count()
        self._executable = 0
        self._queued = 0
        self.by_hash: dict[bytes, Transaction] = {}
        self.max_size = max_size
        self.max_queued_per_sender = max_queued_per_sender
        self.max_queued = max_queued
        self.account_slots = account_slots
        self.lifetime = lifetime
        self.base_fee = base_fee
        self.clock = clock
        self.on_discard = on_discard

    def __len__(self) -> int:
        return len(self.by_hash)

    @property
    def ready_count(self) -> int:
        return self._executable

    @property
    def queued_count(self) -> int:
        return self._queued

    def holds(self, sender: bytes) -> bool:
        return sender in self._senders

    def senders(self) -> list[Address]:
        return list(self._senders)

    def of_sender(self, sender: bytes) -> tuple[list[Transaction], list[Transaction]]:
        """The sender's executable and queued transactions, each in nonce order (txpool_*)."""
        entry = self._senders.get(Address(sender))
        if entry is None:
            return [], []
        ready = [entry.ready[n].tx for n in sorted(entry.ready)]
        return ready, [entry.queued[n].tx for n in sorted(entry.queued)]

    def next_nonce(self, sender: Address, state_nonce: int) -> int:
        entry = self._senders.get(sender)
        return state_nonce if entry is None else max(entry.next_nonce, state_nonce)

    def owed(self, sender: Address, nonce: int) -> int:
        """What `sender`'s pooled transactions that a new one with `nonce` does not push out
        may cost: all but the one it replaces if it replaces an executable one; else the
        executable ones and the queued ones before it. Queued ones after it make way if the
        balance cannot pay for all (the caller then trims with `revalidate`), so a sender's
        own future transactions never keep it from filling its nonce gap."""
        entry = self._senders.get(sender)
        if entry is None:
            return 0
        slot = entry.ready.get(nonce)
        if slot is not None:
            return entry.cost - slot.tx.max_cost()
        if not entry.queued:
            return entry.cost
        after = sum(s.tx.max_cost() for n, s in entry.queued.items() if n >= nonce)
        return entry.cost - after

    def pending_cost(self, sender: Address) -> int:
        """The max cost of all `sender`'s pooled transactions, executable and queued."""
        entry = self._senders.get(sender)
        return 0 if entry is None else entry.cost

    # ---- in ----

    def add(self, tx: Transaction, state_nonce: int) -> bool:
        """Add an admitted transaction; True if it is executable now, False if queued.

        Raises AlreadyKnown, NonceTooLow, ReplacementUnderpriced, NonceTooHigh (the sender's
        queue is full) or TxPoolFull (nothing of lower standing to make room for it)."""
        by_hash = self.by_hash
        if tx.hash in by_hash:
            raise AlreadyKnown()
        nonce, sender = tx.nonce, tx.sender
        if nonce < state_nonce:
            raise NonceTooLow("0x" + sender.hex(), nonce, state_nonce)
        entry = self._senders.get(sender)
        if entry is not None and entry.next_nonce - len(entry.ready) < state_nonce:
            self._advance(sender, entry, state_nonce)  # the caller knows a newer state
            entry = self._senders.get(sender)
        if entry is not None:
            if nonce < entry.next_nonce:
                return self._replace(entry, entry.ready.get(nonce), tx)
            if nonce in entry.queued:
                return self._replace(entry, entry.queued[nonce], tx)
        queued = nonce > (state_nonce if entry is None else entry.next_nonce)
        if queued and entry is not None and len(entry.queued) >= self.max_queued_per_sender:
            raise NonceTooHigh("0x" + sender.hex(), nonce, state_nonce)
        if len(by_hash) >= self.max_size or (queued and self._queued >= self.max_queued):
            standing = QUEUED if queued else self._standing_of_next(entry)
            self._make_room(sender, standing, tx.effective_gas_price(self.base_fee))
            entry = self._senders.get(sender)  # expiry may have emptied it
        if entry is None:
            entry = self._senders[sender] = _Sender(state_nonce)
        slot = _Slot(tx, queued)
        entry.cost += tx.max_cost()
        by_hash[tx.hash] = tx
        if queued:
            self._enqueue(sender, entry, slot)
            return False
        entry.ready[nonce] = slot
        entry.next_nonce = nonce + 1
        self._ready.append(slot)
        self._executable += 1
        if entry.queued:
            self._promote(sender, entry)
        if self._heap is not None:
            self._push_ready_tail(entry)
        return True

    def _standing_of_next(self, entry: _Sender | None) -> int:
        return PROTECTED if entry is None or len(entry.ready) < self.account_slots else EXCESS

    def _replace(self, entry: _Sender, slot: _Slot | None, tx: Transaction) -> bool:
        if slot is None:  # below the run: already taken for a block
            raise ReplacementUnderpriced()
        old = slot.tx
        bump = 100 + PRICE_BUMP_PERCENT
        if (
            tx.max_fee * 100 < old.max_fee * bump
            or tx.max_priority_fee * 100 < old.max_priority_fee * bump
        ):
            raise ReplacementUnderpriced()
        del self.by_hash[old.hash]
        entry.cost += tx.max_cost() - old.max_cost()
        slot.tx = tx  # a heap entry with the old price is corrected when it reaches the top
        self.by_hash[tx.hash] = tx
        return not slot.queued

    def _enqueue(self, sender: Address, entry: _Sender, slot: _Slot) -> None:
        nonce = slot.tx.nonce
        last = not entry.queued or nonce > max(entry.queued)
        if not entry.queued:
            self._beats[sender] = self.clock()
        entry.queued[nonce] = slot
        self._queued += 1
        if last:
            self._push(QUEUED, slot)

    def _promote(self, sender: Address, entry: _Sender) -> None:
        """Move queued transactions whose gap has filled to the end of the executable run."""
        if entry.next_nonce not in entry.queued:
            return
        while entry.next_nonce in entry.queued:
            slot = entry.queued.pop(entry.next_nonce)
            slot.queued = False
            entry.ready[slot.tx.nonce] = slot
            entry.next_nonce += 1
            self._ready.append(slot)
            self._executable += 1
            self._queued -= 1
        if entry.queued:
            self._beats[sender] = self.clock()  # progress: its lifetime starts again
            self._beats.move_to_end(sender)
        else:
            del self._beats[sender]

    def requeue(self, txs: list[Transaction], state_nonce: Callable[[Address], int]) -> None:
        """Put back in front, in order, what a block took but had no gas left for.

        Each sender's run must start at its nonce in the block's state and end where its
        pooled run starts; a run that does not (an earlier transaction of the sender was
        dropped from the block) is discarded."""
        runs: dict[Address, list[Transaction]] = {}
        for tx in txs:
            runs.setdefault(tx.sender, []).append(tx)
        back: set[Address] = set()
        for sender, run in runs.items():
            first = state_nonce(sender)
            entry = self._senders.get(sender)
            end = first + len(run) if entry is None else entry.first_ready
            if [tx.nonce for tx in run] != list(range(first, end)):
                error = TxDropped("an earlier transaction of its sender could not be included")
                for tx in run:
                    self._notify(tx, error)
                continue
            if entry is None:
                entry = self._senders[sender] = _Sender(end)
            for tx in run:
                entry.ready[tx.nonce] = _Slot(tx)
                entry.cost += tx.max_cost()
                self.by_hash[tx.hash] = tx
            back.add(sender)
        slots = [self._senders[tx.sender].ready[tx.nonce] for tx in txs if tx.sender in back]
        self._ready.extendleft(reversed(slots))
        self._executable += len(slots)
        if self._heap is not None:
            for sender in back:  # a longer run may have moved its last one out of the protected
                self._push_ready_tail(self._senders[sender])

    # ---- out ----

    def take(self, limit: int) -> list[Transaction]:
        """Up to `limit` executable transactions, oldest first, removed from the pool."""
        out: list[Transaction] = []
        ready = self._ready
        senders = self._senders
        by_hash = self.by_hash
        while ready and len(out) < limit:
            slot = ready.popleft()
            if slot.dropped:
                continue
            tx = slot.tx
            entry = senders[tx.sender]
            del entry.ready[tx.nonce]
            entry.cost -= tx.max_cost()
            del by_hash[tx.hash]
            if not entry.ready and not entry.queued:
                del senders[tx.sender]
            out.append(tx)
        self._executable -= len(out)
        if self._heap is not None and len(by_hash) * 10 < self.max_size * 9:
            self._heap = None  # no pressure: let go of it and the taken transactions it holds
        return out

    def drop_sender_from(self, sender: Address, nonce: int) -> list[Transaction]:
        """A transaction of `sender` could not be included: its successors cannot be either."""
        entry = self._senders.pop(sender, None)
        if entry is None:
            return []
        dropped: list[Transaction] = []
        for slot in itertools.chain(entry.ready.values(), entry.queued.values()):
            slot.dropped = True
            dropped.append(slot.tx)
            del self.by_hash[slot.tx.hash]
        self._executable -= len(entry.ready)
        self._queued -= len(entry.queued)
        self._beats.pop(sender, None)
        return [tx for tx in dropped if tx.nonce >= nonce]

    def drop(self, tx_hash: bytes, reason: str) -> list[Transaction]:
        """Let go of a pooled transaction and of its sender's later nonces, which cannot run
        without it (an operator's `admin_dropTransaction`); highest nonce first, so that each
        is its sender's last when it goes. Their waiters hear TxDropped. [] if it is not here."""
        tx = self.by_hash.get(tx_hash)
        if tx is None:
            return []
        entry = self._senders[tx.sender]
        later = [n for n in itertools.chain(entry.ready, entry.queued) if n > tx.nonce]
        follows = TxDropped(
            f"an earlier transaction of its sender (nonce {tx.nonce}) was dropped: {reason}"
        )
        dropped: list[Transaction] = []
        for nonce in sorted(later, reverse=True):
            slot = entry.ready.get(nonce) or entry.queued[nonce]
            dropped.append(slot.tx)
            self._discard(entry, slot, follows)
        slot = entry.ready.get(tx.nonce) or entry.queued[tx.nonce]
        self._discard(entry, slot, TxDropped(f"dropped from the pool: {reason}"))
        return [tx, *reversed(dropped)]

    def revalidate(self, sender: Address, state_nonce: int, balance: int) -> None:
        """`sender`'s account is now (`state_nonce`, `balance`), after a block or an admission:
        drop what its nonce has passed, then, from the highest nonce down, what its balance
        does not pay for."""
        entry = self._senders.get(sender)
        if entry is None:
            return
        if entry.first_ready < state_nonce or (entry.queued and min(entry.queued) < state_nonce):
            self._advance(sender, entry, state_nonce)
        while entry.cost > balance and (entry.ready or entry.queued):
            slot = entry.last()
            cost = slot.tx.max_cost()
            self._discard(entry, slot, InsufficientFunds(max(balance - entry.cost + cost, 0), cost))

    def expire(self) -> None:
        """Drop the queued transactions of senders that made no progress for `lifetime`."""
        deadline = self.clock() - self.lifetime
        beats = self._beats
        while beats:
            sender = next(iter(beats))
            if beats[sender] > deadline:
                return
            entry = self._senders[sender]
            error = TxDropped(
                f"queued transaction expired: its nonce gap stayed open for {self.lifetime:g} s"
            )
            for nonce in sorted(entry.queued):  # lowest first: no new last one to push
                self._discard(entry, entry.queued[nonce], error)

    def _advance(self, sender: Address, entry: _Sender, state_nonce: int) -> None:
        """The account's nonce is `state_nonce`: drop what it has passed, promote what follows."""
        hex_sender = "0x" + sender.hex()
        for nonce in range(entry.first_ready, min(entry.next_nonce, state_nonce)):
            self._discard(entry, entry.ready[nonce], NonceTooLow(hex_sender, nonce, state_nonce))
        for nonce in sorted(n for n in entry.queued if n < state_nonce):
            self._discard(entry, entry.queued[nonce], NonceTooLow(hex_sender, nonce, state_nonce))
        if entry.next_nonce < state_nonce:
            entry.next_nonce = state_nonce
        self._promote(sender, entry)
        if entry.ready and self._heap is not None:
            self._push_ready_tail(entry)

    def _discard(self, entry: _Sender, slot: _Slot, error: TxRejected) -> None:
        """Let go of one pooled transaction; a new last one of its kind becomes evictable."""
        tx = slot.tx
        slot.dropped = True
        if slot.queued:
            del entry.queued[tx.nonce]
            self._queued -= 1
            if not entry.queued:
                del self._beats[tx.sender]
            elif tx.nonce > max(entry.queued):
                self._push(QUEUED, entry.queued[max(entry.queued)])
        else:
            del entry.ready[tx.nonce]
            self._executable -= 1
            if tx.nonce == entry.next_nonce - 1:
                entry.next_nonce = tx.nonce  # the sender may send this nonce again
                if entry.ready and self._heap is not None:
                    self._push_ready_tail(entry)
        entry.cost -= tx.max_cost()
        del self.by_hash[tx.hash]
        if not entry.ready and not entry.queued:
            del self._senders[tx.sender]
        self._notify(tx, error)

    def _notify(self, tx: Transaction, error: TxRejected) -> None:
        if self.on_discard is not None:
            self.on_discard(tx, error)

    # ---- a full pool ----

    def _make_room(self, sender: Address, standing: int, price: int) -> None:
        """Evict the lowest-standing evictable transaction if it stands below (`standing`,
        `price`), never one of `sender`'s own; raise TxPoolFull if there is none."""
        self.expire()
        if len(self.by_hash) < self.max_size and (
            standing != QUEUED or self._queued < self.max_queued
        ):
            return  # expiry made room
        if self._heap is None:
            self._rebuild_heap()
        heap = self._heap
        assert heap is not None
        own: list[_HeapEntry] = []
        try:
            while heap:
                kind, slot_price, _order, slot = heap[0]
                current = self._evictable(slot)
                if current is None:
                    heapq.heappop(heap)
                    continue
                now_price = slot.tx.effective_gas_price(self.base_fee)
                if (current, now_price) != (kind, slot_price):  # it stands higher now
                    heapq.heapreplace(heap, (current, now_price, next(self._pushes), slot))
                elif slot.tx.sender == sender:
                    own.append(heapq.heappop(heap))
                elif (kind, slot_price) < (standing, price):
                    heapq.heappop(heap)
                    error = TxDropped("txpool is full: a higher-priced transaction took its place")
                    self._discard(self._senders[slot.tx.sender], slot, error)
                    return
                else:
                    break
            raise TxPoolFull()
        finally:
            for item in own:
                heapq.heappush(heap, item)

    def _evictable(self, slot: _Slot) -> int | None:
        """The class of `slot` if it is the last of its sender's run or queue, else None."""
        entry = self._senders.get(slot.tx.sender)
        if entry is None or slot.dropped:
            return None
        nonce = slot.tx.nonce
        if slot.queued:
            if entry.queued.get(nonce) is not slot or nonce != max(entry.queued):
                return None
            return QUEUED
        if entry.ready.get(nonce) is not slot or nonce != entry.next_nonce - 1:
            return None
        return PROTECTED if len(entry.ready) <= self.account_slots else EXCESS

    def _push_ready_tail(self, entry: _Sender) -> None:
        slot = entry.ready[entry.next_nonce - 1]
        self._push(PROTECTED if len(entry.ready) <= self.account_slots else EXCESS, slot)

    def _push(self, kind: int, slot: _Slot) -> None:
        heap = self._heap
        if heap is None:
            return
        price = slot.tx.effective_gas_price(self.base_fee)
        heapq.heappush(heap, (kind, price, next(self._pushes), slot))
        if len(heap) > 2 * len(self.by_hash) + 1024:
            self._rebuild_heap()

    def _rebuild_heap(self) -> None:
        """Each sender's last executable and last queued transaction, and nothing stale."""
        heap: list[_HeapEntry] = []
        for entry in self._senders.values():
            if entry.ready:
                slot = entry.ready[entry.next_nonce - 1]
                kind = PROTECTED if len(entry.ready) <= self.account_slots else EXCESS
                price = slot.tx.effective_gas_price(self.base_fee)
                heap.append((kind, price, next(self._pushes), slot))
            if entry.queued:
                slot = entry.queued[max(entry.queued)]
                price = slot.tx.effective_gas_price(self.base_fee)
                heap.append((QUEUED, price, next(self._pushes), slot))
        heapq.heapify(heap)
        self._heap = heap
