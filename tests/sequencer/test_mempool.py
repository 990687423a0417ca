"""The mempool alone: nonce order, replacement, and the rules that keep it from being flooded
(cost against balance, per-sender and global slots, lifetime, eviction by standing)."""

from __future__ import annotations

import contextlib
import itertools
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.crypto import keccak
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
from rollup.genesis import DEV_KEYS
from rollup.transactions import decode_transaction
from rollup.types import Address, Hash32, Transaction
from sequencer.mempool import EXCESS, PROTECTED, QUEUED, Mempool

CHAIN = 7
GWEI = 10**9
BASE_FEE = GWEI


def tx(key: int, nonce: int, fee: int = 10**9) -> Transaction:
    raw = Account.sign_transaction(
        {
            "type": 2,
            "chainId": CHAIN,
            "nonce": nonce,
            "to": "0x" + "11" * 20,
            "value": 1,
            "gas": 21000,
            "maxFeePerGas": fee,
            "maxPriorityFeePerGas": fee // 10,
        },
        DEV_KEYS[key],
    ).raw_transaction
    return decode_transaction(bytes(raw), CHAIN)


_serial = itertools.count()


def sender(index: int) -> Address:
    return Address(index.to_bytes(20, "big"))


def make(who: int, nonce: int, tip: int = 0, value: int = 0) -> Transaction:
    """A transfer from `sender(who)` paying the base fee plus `tip` a gas (the pool checks no
    signatures: plain data is enough here)."""
    return Transaction(
        tx_type=2,
        chain_id=CHAIN,
        nonce=nonce,
        max_priority_fee=tip,
        max_fee=BASE_FEE + tip,
        gas=21_000,
        to=Address(b"\x11" * 20),
        value=value,
        data=b"",
        access_list=(),
        v=0,
        r=1,
        s=1,
        sender=sender(who),
        hash=Hash32(keccak(next(_serial).to_bytes(8, "big"))),
        raw=b"",
    )


COST = 21_000 * BASE_FEE  # max cost of `make(...)` with no tip and no value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Pool:
    """A mempool with an injected clock that records what it lets go of."""

    pool: Mempool
    clock: Clock
    discarded: list[tuple[Transaction, TxRejected]] = field(default_factory=list)

    @classmethod
    def new(cls, **limits: int | float) -> Pool:
        clock = Clock()
        made = cls(Mempool(base_fee=BASE_FEE, clock=clock, **limits), clock)  # type: ignore[arg-type]
        made.pool.on_discard = lambda t, error: made.discarded.append((t, error))
        return made

    def gone(self) -> list[tuple[int, int, type[TxRejected]]]:
        """(sender, nonce, error class) of each discarded transaction, in order."""
        return [(int.from_bytes(t.sender, "big"), t.nonce, type(e)) for t, e in self.discarded]


def nonces(txs: list[Transaction]) -> list[tuple[int, int]]:
    return [(int.from_bytes(t.sender, "big"), t.nonce) for t in txs]


# ---- order and replacement ----


def test_future_nonces_wait_until_the_gap_fills() -> None:
    pool = Mempool()
    assert pool.add(tx(0, 2), state_nonce=0) is False
    assert pool.add(tx(0, 1), state_nonce=0) is False
    assert pool.take(10) == []
    assert pool.add(tx(0, 0), state_nonce=0) is True
    assert [t.nonce for t in pool.take(10)] == [0, 1, 2]
    assert len(pool) == 0


def test_senders_interleave_in_arrival_order_and_keep_nonce_order() -> None:
    pool = Mempool()
    for nonce in range(3):
        pool.add(tx(0, nonce), 0)
        pool.add(tx(1, nonce), 0)
    taken = pool.take(100)
    assert [(t.sender, t.nonce) for t in taken] == [
        (t.sender, t.nonce) for t in sorted(taken, key=lambda t: t.nonce)
    ]
    assert pool.take(1) == []


def test_duplicates_replacements_and_bounds() -> None:
    pool = Mempool(max_size=3, max_queued_per_sender=2)
    first = tx(0, 0)
    pool.add(first, 0)
    with pytest.raises(AlreadyKnown):
        pool.add(first, 0)
    with pytest.raises(ReplacementUnderpriced):
        pool.add(tx(0, 0, fee=10**9 + 1), 0)
    bumped = tx(0, 0, fee=2 * 10**9)
    assert pool.add(bumped, 0) is True
    assert pool.by_hash.keys() == {bumped.hash}
    pool.add(tx(0, 5), 0)
    pool.add(tx(0, 6), 0)
    with pytest.raises(NonceTooHigh):
        pool.add(tx(0, 7), 0)
    assert pool.take(5) == [bumped]
    with pytest.raises(NonceTooHigh):
        pool.add(tx(0, 7), 1)
    with pytest.raises(NonceTooLow):
        pool.add(tx(0, 0), 1)


def test_a_queued_transaction_is_replaced_only_with_a_bump_of_both_fees() -> None:
    p = Pool.new()
    low = make(1, 3, tip=10)
    p.pool.add(low, 0)
    with pytest.raises(ReplacementUnderpriced):  # fee cap up 10%, tip not
        p.pool.add(
            Transaction(
                **{**_fields(low), "max_fee": 2 * low.max_fee, "hash": Hash32(b"\x01" * 32)}
            ),
            0,
        )
    assert p.pool.add(make(1, 3, tip=BASE_FEE), 0) is False
    assert p.pool.pending_cost(sender(1)) == 21_000 * (BASE_FEE + BASE_FEE)
    assert len(p.pool) == 1 and p.pool.queued_count == 1


def _fields(t: Transaction) -> dict[str, object]:
    return {name: getattr(t, name) for name in Transaction.__dataclass_fields__}


# ---- cost against the balance ----


def test_queued_cost_counts_like_executable_cost() -> None:
    pool = Mempool()
    a, b, later = make(1, 0, value=5), make(1, 1, value=7), make(1, 4, value=11)
    pool.add(a, 0)
    pool.add(b, 0)
    pool.add(later, 0)
    assert pool.pending_cost(sender(1)) == a.max_cost() + b.max_cost() + later.max_cost()
    assert pool.next_nonce(sender(1), 0) == 2
    # what a new transaction must leave room for: everything before it ...
    assert pool.owed(sender(1), 2) == a.max_cost() + b.max_cost()
    assert pool.owed(sender(1), 9) == pool.pending_cost(sender(1))
    # ... and all but the one it replaces
    assert pool.owed(sender(1), 1) == a.max_cost() + later.max_cost()
    assert pool.owed(sender(1), 4) == a.max_cost() + b.max_cost()
    assert pool.owed(sender(2), 0) == 0


def test_revalidate_drops_from_the_highest_nonce_what_the_balance_no_longer_pays() -> None:
    p = Pool.new()
    for nonce in (0, 1, 2, 5, 6):
        p.pool.add(make(1, nonce), 0)
    p.pool.revalidate(sender(1), 0, 5 * COST)  # nothing to do
    assert p.discarded == []
    p.pool.revalidate(sender(1), 0, 2 * COST + COST // 2)
    assert p.gone() == [
        (1, 6, InsufficientFunds),
        (1, 5, InsufficientFunds),
        (1, 2, InsufficientFunds),
    ]
    assert "insufficient funds for gas * price + value" in p.discarded[0][1].message
    assert p.pool.pending_cost(sender(1)) == 2 * COST and p.pool.queued_count == 0
    assert p.pool.next_nonce(sender(1), 0) == 2  # nonce 2 may be sent again
    assert p.pool.add(make(1, 2), 0) is True
    assert nonces(p.pool.take(10)) == [(1, 0), (1, 1), (1, 2)]


def test_revalidate_drops_what_the_nonce_passed_and_promotes_what_follows() -> None:
    p = Pool.new()
    for nonce in (0, 1, 3, 4, 7):
        p.pool.add(make(1, nonce), 0)
    p.pool.revalidate(sender(1), 3, 10 * COST)  # nonces 0..2 went in elsewhere
    assert p.gone() == [(1, 0, NonceTooLow), (1, 1, NonceTooLow)]
    assert p.pool.ready_count == 2 and p.pool.queued_count == 1
    assert nonces(p.pool.take(10)) == [(1, 3), (1, 4)]
    p.pool.revalidate(sender(1), 9, 10 * COST)
    assert p.gone()[-1] == (1, 7, NonceTooLow)
    assert len(p.pool) == 0 and not p.pool.holds(sender(1))


# ---- slots ----


def test_per_sender_and_global_queue_caps() -> None:
    p = Pool.new(max_queued_per_sender=3, max_queued=5)
    for nonce in (1, 2, 3):
        p.pool.add(make(1, nonce), 0)
    with pytest.raises(NonceTooHigh):
        p.pool.add(make(1, 4), 0)
    p.pool.add(make(2, 1), 0)
    p.pool.add(make(2, 2), 0)
    with pytest.raises(TxPoolFull):  # the queue is full and this one pays no more
        p.pool.add(make(3, 1), 0)
    assert p.pool.add(make(0, 0), 0) is True  # executable ones are not held by the queue cap
    p.pool.add(make(3, 1, tip=1), 0)  # pays more: the oldest of the cheapest last ones goes
    assert p.gone() == [(1, 3, TxDropped)]
    assert "txpool is full" in p.discarded[0][1].message
    assert p.pool.queued_count == 5


def test_executable_beyond_the_protected_slots_while_there_is_room_and_first_to_go() -> None:
    p = Pool.new(max_size=40, account_slots=16)
    for nonce in range(40):  # one sender fills the whole pool: allowed while there is room
        assert p.pool.add(make(1, nonce), 0) is True
    for nonce in range(16):  # same price: another sender's first 16 beat sender 1's excess
        assert p.pool.add(make(2, nonce), 0) is True
    assert p.gone() == [(1, n, TxDropped) for n in range(39, 23, -1)]  # newest first
    with pytest.raises(TxPoolFull):  # excess against excess at the same price
        p.pool.add(make(2, 16), 0)
    for nonce in range(8):
        p.pool.add(make(3, nonce), 0)
    assert p.pool.next_nonce(sender(1), 0) == 16  # cut down to its protected 16, no further
    with pytest.raises(TxPoolFull):  # protected against protected at the same price
        p.pool.add(make(3, 8), 0)
    assert p.pool.add(make(4, 0, tip=1), 0) is True  # paying more, it takes the oldest last one
    assert p.gone()[-1] == (2, 15, TxDropped)
    with pytest.raises(TxPoolFull):  # sender 2 may send that nonce again: it must outbid too
        p.pool.add(make(2, 15), 0)
    assert p.pool.add(make(2, 15, tip=1), 0) is True
    assert p.gone()[-1] == (1, 15, TxDropped)


def test_a_full_pool_keeps_the_better_paying_and_strands_nobody() -> None:
    p = Pool.new(max_size=4)
    p.pool.add(make(1, 0, tip=1), 0)  # cheapest, but not last: its successor pays well
    p.pool.add(make(1, 1, tip=50), 0)
    p.pool.add(make(2, 0, tip=10), 0)
    p.pool.add(make(3, 0, tip=20), 0)
    with pytest.raises(TxPoolFull):  # an attacker's cheaper transaction pushes nobody out
        p.pool.add(make(9, 0, tip=10), 0)
    p.pool.add(make(4, 0, tip=11), 0)
    assert p.gone() == [(2, 0, TxDropped)]
    p.pool.add(make(5, 0, tip=60), 0)
    assert p.gone()[-1] == (4, 0, TxDropped)
    with pytest.raises(TxPoolFull):  # what is left stands at 20 and 50 (sender 1's last)
        p.pool.add(make(6, 0, tip=19), 0)
    assert nonces(p.pool.take(10)) == [(1, 0), (1, 1), (3, 0), (5, 0)]


def test_a_sender_never_evicts_its_own_and_a_queued_one_never_evicts_executable_ones() -> None:
    p = Pool.new(max_size=3)
    p.pool.add(make(1, 0), 0)
    p.pool.add(make(1, 1), 0)
    p.pool.add(make(2, 0, tip=10), 0)
    with pytest.raises(TxPoolFull):  # the only last one that stands lower is its own
        p.pool.add(make(1, 2, tip=5), 0)
    with pytest.raises(TxPoolFull):  # future transactions never churn executable ones
        p.pool.add(make(3, 5, tip=100), 0)
    assert p.discarded == []


def test_eviction_of_a_queued_last_one_and_a_rebuilt_heap_after_draining() -> None:
    p = Pool.new(max_size=3)
    p.pool.add(make(1, 0), 0)
    p.pool.add(make(1, 2, tip=3), 0)
    p.pool.add(make(1, 3, tip=3), 0)
    p.pool.add(make(2, 0), 0)  # a queued one goes first, the last of sender 1's queue
    assert p.gone() == [(1, 3, TxDropped)]
    assert len(p.pool.take(10)) == 2
    assert len(p.pool) == 1 and p.pool.ready_count == 0 and p.pool.queued_count == 1
    p.pool.add(make(3, 0), 0)
    p.pool.add(make(4, 0), 0)
    p.pool.add(make(5, 0), 0)  # full again: the queued one (nonce 2) goes
    assert p.gone()[-1] == (1, 2, TxDropped)


def test_standing_is_judged_as_it_is_now_not_as_it_was_when_noted() -> None:
    p = Pool.new(max_size=4)
    p.pool.add(make(1, 0), 0)
    p.pool.add(make(1, 2, tip=50), 0)  # queued: the lowest class
    p.pool.add(make(2, 0), 0)
    p.pool.add(make(2, 1), 0)
    p.pool.add(make(1, 1, tip=60), 0)  # full: sender 2's last goes; sender 1's gap fills
    assert p.gone() == [(2, 1, TxDropped)]
    assert p.pool.queued_count == 0 and p.pool.ready_count == 4
    p.pool.add(make(3, 0, tip=1), 0)  # nonce 2 of sender 1 is executable and pays 50 now
    assert p.gone()[-1] == (2, 0, TxDropped)
    assert nonces(p.pool.take(10)) == [(1, 0), (1, 1), (1, 2), (3, 0)]


# ---- lifetime ----


def test_queued_transactions_expire_without_progress() -> None:
    p = Pool.new(lifetime=60.0)
    p.pool.add(make(1, 0), 0)
    p.pool.add(make(1, 2), 0)
    p.pool.add(make(2, 5), 0)
    p.clock.now += 30
    p.pool.add(make(1, 1), 0)  # fills sender 1's gap: progress
    p.pool.add(make(1, 4), 0)  # queued again, behind a new gap
    p.clock.now += 31
    p.pool.expire()
    assert p.gone() == [(2, 5, TxDropped)]
    assert "expired" in p.discarded[0][1].message
    p.clock.now += 30
    p.pool.expire()
    assert p.gone()[-1] == (1, 4, TxDropped)
    assert p.pool.queued_count == 0 and p.pool.ready_count == 3  # executable ones never expire


def test_a_full_queue_lets_expired_ones_go_first() -> None:
    p = Pool.new(max_queued=2, lifetime=60.0)
    p.pool.add(make(1, 1), 0)
    p.pool.add(make(2, 1), 0)
    with pytest.raises(TxPoolFull):
        p.pool.add(make(3, 1), 0)
    p.clock.now += 61
    assert p.pool.add(make(3, 1), 0) is False
    assert sorted(p.gone()) == [(1, 1, TxDropped), (2, 1, TxDropped)]


# ---- blocks ----


def test_requeue_puts_leftovers_back_in_front_and_drops_broken_runs() -> None:
    p = Pool.new()
    for nonce in range(4):
        p.pool.add(make(1, nonce), 0)
    p.pool.add(make(2, 0), 0)
    p.pool.add(make(2, 1), 0)
    p.pool.add(make(3, 0), 0)
    taken = p.pool.take(5)  # 1:0 1:1 1:2 1:3 2:0 -- say the block had gas for 1:0 only
    leftover = taken[1:]
    state = {sender(1): 1, sender(2): 1}  # ... and sender 2's nonce moved on some other way
    p.pool.requeue(leftover, lambda who: state.get(who, 0))
    assert p.gone() == [(2, 0, TxDropped)]  # its run no longer starts at the state nonce
    assert nonces(p.pool.take(10)) == [(1, 1), (1, 2), (1, 3), (2, 1), (3, 0)]


def test_drop_sender_from_forgets_the_sender() -> None:
    pool = Mempool()
    a, b, c = make(1, 0), make(1, 1), make(1, 5)
    for t in (a, b, c):
        pool.add(t, 0)
    assert {t.hash for t in pool.drop_sender_from(sender(1), 1)} == {b.hash, c.hash}
    assert pool.take(10) == [] and len(pool) == 0 and pool.queued_count == 0
    assert pool.ready_count == 0


# ---- invariants under random use ----


@st.composite
def operations(draw: st.DrawFn) -> list[tuple[str, int, int, int]]:
    steps = st.tuples(
        st.sampled_from(["add"] * 8 + ["take", "spend", "tick"]),
        st.integers(0, 5),  # sender
        st.integers(0, 12),  # nonce offset / count
        st.integers(0, 4),  # tip
    )
    return draw(st.lists(steps, min_size=1, max_size=120))


@settings(max_examples=200, deadline=None)
@given(operations())
def test_invariants_hold_under_random_use(ops: list[tuple[str, int, int, int]]) -> None:
    """Admission as the node does it, blocks that spend, and time: the pool never holds more
    than a sender can pay, more than its caps, a gap inside a run, or a transaction twice."""
    p = Pool.new(
        max_size=10, max_queued=4, max_queued_per_sender=3, account_slots=2, lifetime=100.0
    )
    state = {who: [0, 12 * COST] for who in range(6)}  # nonce, balance
    for op, who, n, tip in ops:
        nonce, balance = state[who]
        if op == "add":
            # mostly the next nonce; sometimes beyond a gap; sometimes a replacement
            ahead = p.pool.next_nonce(sender(who), nonce)
            t = make(who, nonce if n == 0 else ahead + max(0, n - 8), tip=tip)
            owed = p.pool.owed(t.sender, t.nonce)
            if balance >= t.max_cost() + owed:
                _add_and_check_eviction(p, t, nonce)
                p.pool.revalidate(t.sender, nonce, balance)
        elif op == "take":
            for t in p.pool.take(n // 2):  # a block: each pays its max cost
                account = state[int.from_bytes(t.sender, "big")]
                assert t.nonce == account[0]
                account[0] += 1
                account[1] -= t.max_cost()
            for other, (o_nonce, o_balance) in state.items():
                p.pool.revalidate(sender(other), o_nonce, o_balance)
        elif op == "spend":  # something else lowers the balance
            state[who][1] = max(balance - n * COST // 2, 0)
            p.pool.revalidate(sender(who), nonce, state[who][1])
        else:
            p.clock.now += 10 * n
            p.pool.expire()
        _check(p.pool, state)


def _add_and_check_eviction(p: Pool, t: Transaction, state_nonce: int) -> None:
    """Add `t`; if the pool had to make room, check the choice against a brute-force one."""
    pool = p.pool
    entry = pool._senders.get(t.sender)
    next_nonce = state_nonce if entry is None else max(entry.next_nonce, state_nonce)
    if t.nonce < next_nonce or (entry is not None and t.nonce in entry.queued):
        with contextlib.suppress(TxRejected):
            pool.add(t, state_nonce)  # a replacement: no room needed
        return
    queued = t.nonce > next_nonce
    protected = entry is None or len(entry.ready) < pool.account_slots
    new = (
        QUEUED if queued else PROTECTED if protected else EXCESS,
        t.effective_gas_price(BASE_FEE),
    )
    full = len(pool) >= pool.max_size or (queued and pool.queued_count >= pool.max_queued)
    others = _standings(pool, t.sender)
    before = len(p.discarded)
    try:
        pool.add(t, state_nonce)
    except TxPoolFull:
        assert full and all(other >= new for other in others.values())
        return
    except TxRejected:
        return
    evicted = [(d, e) for d, e in p.discarded[before:] if "txpool is full" in e.message]
    assert len(evicted) == (1 if full else 0)
    if evicted:
        assert min(others.values()) < new and others[evicted[0][0].hash] == min(others.values())


def _standings(pool: Mempool, exclude: bytes) -> dict[bytes, tuple[int, int]]:
    """tx hash -> (class, price) of every evictable transaction (a sender's last) of other
    senders."""
    out = {}
    for who, entry in pool._senders.items():
        if who == exclude:
            continue
        if entry.ready:
            last = entry.ready[entry.next_nonce - 1].tx
            kind = PROTECTED if len(entry.ready) <= pool.account_slots else EXCESS
            out[last.hash] = (kind, last.effective_gas_price(BASE_FEE))
        if entry.queued:
            last = entry.queued[max(entry.queued)].tx
            out[last.hash] = (QUEUED, last.effective_gas_price(BASE_FEE))
    return out


def _check(pool: Mempool, state: dict[int, list[int]]) -> None:
    assert len(pool) <= pool.max_size and pool.queued_count <= pool.max_queued
    executable = queued = 0
    seen: set[bytes] = set()
    for who, entry in pool._senders.items():
        nonce, balance = state[int.from_bytes(who, "big")]
        assert entry.ready or entry.queued
        assert not entry.ready or entry.first_ready == nonce
        assert sorted(entry.ready) == list(range(entry.first_ready, entry.next_nonce))
        assert entry.first_ready >= nonce and min(entry.queued, default=entry.next_nonce + 1) > (
            entry.next_nonce
        )
        assert len(entry.queued) <= pool.max_queued_per_sender
        slots = [*entry.ready.values(), *entry.queued.values()]
        assert entry.cost == sum(s.tx.max_cost() for s in slots) <= balance
        seen.update(s.tx.hash for s in slots)
        executable += len(entry.ready)
        queued += len(entry.queued)
    assert seen == pool.by_hash.keys()
    assert (executable, queued) == (pool.ready_count, pool.queued_count)
