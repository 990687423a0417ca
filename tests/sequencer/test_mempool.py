import pytest
from eth_account import Account

from rollup.errors import AlreadyKnown, NonceTooHigh, ReplacementUnderpriced, TxPoolFull
from rollup.genesis import DEV_KEYS
from rollup.transactions import decode_transaction
from rollup.types import Transaction
from sequencer.mempool import Mempool

CHAIN = 7


def tx(key: int, nonce: int, fee: int = 10**9) -> Transaction:
    raw = Account.sign_transaction(
        {"type": 2, "chainId": CHAIN, "nonce": nonce, "to": "0x" + "11" * 20, "value": 1,
         "gas": 21000, "maxFeePerGas": fee, "maxPriorityFeePerGas": fee // 10}, DEV_KEYS[key]
    ).raw_transaction  # fmt: skip
    return decode_transaction(bytes(raw), CHAIN)


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
    with pytest.raises(TxPoolFull):
        pool.add(tx(1, 0), 0)
    assert pool.take(5) == [bumped]
    with pytest.raises(NonceTooHigh):
        pool.add(tx(0, 7), 1)


def test_pending_cost_and_next_nonce() -> None:
    pool = Mempool()
    a, b = tx(0, 0), tx(0, 1)
    pool.add(a, 0)
    pool.add(b, 0)
    assert pool.next_nonce(a.sender, 0) == 2
    assert pool.pending_cost(a.sender) == a.max_cost() + b.max_cost()
    dropped = pool.drop_sender_from(a.sender, 0)
    assert {t.hash for t in dropped} == {a.hash, b.hash}
    assert pool.take(10) == []
