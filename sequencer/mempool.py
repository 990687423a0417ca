"""Transactions waiting for a block: executable ones in arrival order, future ones held back.

A sender's transactions leave in nonce order. One whose nonce is beyond the sender's next
expected nonce waits in `queued` until the gap fills (at most `max_queued_per_sender`); a
transaction with the same sender and nonce as a waiting one replaces it only with a fee bump of
at least 10%, as geth requires.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from rollup.errors import AlreadyKnown, NonceTooHigh, ReplacementUnderpriced, TxPoolFull
from rollup.types import Address, Transaction

__all__ = ["Mempool"]

PRICE_BUMP_PERCENT = 10


@dataclass(slots=True)
class _Slot:
    tx: Transaction
    dropped: bool = False


@dataclass(slots=True)
class _Sender:
    next_nonce: int  # the nonce the next executable transaction must carry
    ready: dict[int, _Slot] = field(default_factory=dict)
    queued: dict[int, Transaction] = field(default_factory=dict)
    cost: int = 0  # max cost of the ready transactions


class Mempool:
    def __init__(self, max_size: int = 200_000, max_queued_per_sender: int = 64) -> None:
        self._ready: deque[_Slot] = deque()
        self._senders: dict[Address, _Sender] = {}
        self.by_hash: dict[bytes, Transaction] = {}
        self.max_size = max_size
        self.max_queued = max_queued_per_sender

    def __len__(self) -> int:
        return len(self.by_hash)

    @property
    def ready_count(self) -> int:
        return len(self._ready)

    def next_nonce(self, sender: Address, state_nonce: int) -> int:
        entry = self._senders.get(sender)
        return state_nonce if entry is None else max(entry.next_nonce, state_nonce)

    def owed(self, sender: Address, replacing_nonce: int) -> int:
        """What `sender`'s executable transactions may cost, less the one a new one replaces."""
        entry = self._senders.get(sender)
        if entry is None:
            return 0
        slot = entry.ready.get(replacing_nonce)
        return entry.cost - (slot.tx.max_cost() if slot is not None else 0)

    def pending_cost(self, sender: Address) -> int:
        entry = self._senders.get(sender)
        return 0 if entry is None else entry.cost

    def add(self, tx: Transaction, state_nonce: int) -> bool:
        """Add an admitted transaction; True if it is executable now, False if queued."""
        if tx.hash in self.by_hash:
            raise AlreadyKnown()
        entry = self._senders.get(tx.sender)
        if entry is None:
            entry = self._senders[tx.sender] = _Sender(state_nonce)
        elif entry.next_nonce < state_nonce:
            entry.next_nonce = state_nonce
        if tx.nonce < entry.next_nonce:
            return self._replace(entry, tx)
        if len(self.by_hash) >= self.max_size:
            raise TxPoolFull()
        if tx.nonce > entry.next_nonce:
            return self._queue(entry, tx, state_nonce)
        self._make_ready(entry, tx)
        self._promote(entry)
        return True

    def _replace(self, entry: _Sender, tx: Transaction) -> bool:
        slot = entry.ready.get(tx.nonce)
        if slot is None:  # caller checked the state nonce, so this one is already in a block
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
        slot.tx = tx
        self.by_hash[tx.hash] = tx
        return True

    def _queue(self, entry: _Sender, tx: Transaction, state_nonce: int) -> bool:
        old = entry.queued.get(tx.nonce)
        if old is None and len(entry.queued) >= self.max_queued:
            raise NonceTooHigh("0x" + tx.sender.hex(), tx.nonce, state_nonce)
        if old is not None:
            bump = 100 + PRICE_BUMP_PERCENT
            if tx.max_fee * 100 < old.max_fee * bump:
                raise ReplacementUnderpriced()
            del self.by_hash[old.hash]
        entry.queued[tx.nonce] = tx
        self.by_hash[tx.hash] = tx
        return False

    def _make_ready(self, entry: _Sender, tx: Transaction) -> None:
        slot = _Slot(tx)
        entry.ready[tx.nonce] = slot
        entry.next_nonce = tx.nonce + 1
        entry.cost += tx.max_cost()
        self._ready.append(slot)
        self.by_hash[tx.hash] = tx

    def _promote(self, entry: _Sender) -> None:
        while entry.next_nonce in entry.queued:
            tx = entry.queued.pop(entry.next_nonce)
            del self.by_hash[tx.hash]
            self._make_ready(entry, tx)

    def take(self, limit: int) -> list[Transaction]:
        """Up to `limit` executable transactions, oldest first, removed from the pool."""
        out: list[Transaction] = []
        ready = self._ready
        while ready and len(out) < limit:
            slot = ready.popleft()
            if slot.dropped:
                continue
            tx = slot.tx
            entry = self._senders[tx.sender]
            del entry.ready[tx.nonce]
            entry.cost -= tx.max_cost()
            del self.by_hash[tx.hash]
            if not entry.ready and not entry.queued:
                del self._senders[tx.sender]
            out.append(tx)
        return out

    def drop_sender_from(self, sender: Address, nonce: int) -> list[Transaction]:
        """A transaction of `sender` could not be included: its successors cannot be either."""
        entry = self._senders.pop(sender, None)
        if entry is None:
            return []
        dropped: list[Transaction] = []
        for slot in entry.ready.values():
            slot.dropped = True
            dropped.append(slot.tx)
        dropped.extend(entry.queued.values())
        for tx in dropped:
            self.by_hash.pop(tx.hash, None)
        return [tx for tx in dropped if tx.nonce >= nonce]
