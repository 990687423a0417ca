"""Tests of this app against an in-process chain: run them with `pytest` in this folder."""

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from sequencer.harness import LocalChain
from vm.native.abi import selector

APP_DIR = Path(__file__).parent
BID, ASK = 0, 1
MAX_FILLS = 64


@pytest.fixture
def chain() -> Iterator[LocalChain]:
    with LocalChain.from_dir(APP_DIR) as local:
        yield local


def fund(chain: LocalChain, account: bytes, base: int = 0, quote: int = 0) -> None:
    if base:
        assert chain.transact(account, "deposit_base", base).status == 1
    if quote:
        assert chain.transact(account, "deposit_quote", quote).status == 1


def word(data: bytes, index: int) -> int:
    return int.from_bytes(data[32 * index : 32 * index + 32], "big")


def events(chain: LocalChain, receipt: object) -> list[str]:
    return [entry["event"] for entry in chain.decode_logs(receipt)]


def fills(chain: LocalChain, receipt: object) -> list[tuple[int, int, int, int, bytes, bytes]]:
    """(maker_order, taker_order, price, quantity, maker, taker) of each Fill, in order."""
    found = []
    for entry in chain.decode_logs(receipt):
        if entry["event"] == "Fill":
            log = entry["log"]
            maker_order = int.from_bytes(log.topics[1], "big")
            maker, taker = bytes(log.topics[2][12:]), bytes(log.topics[3][12:])
            found.append(
                (maker_order, word(log.data, 0), word(log.data, 1), word(log.data, 2), maker, taker)
            )
    return found


def reverted_with(receipt: object, signature: str) -> bool:
    return receipt.status == 0 and receipt.return_data[:4] == selector(signature)


def place(chain: LocalChain, account: bytes, side: int, price: int, quantity: int) -> int:
    receipt = chain.transact(account, "place_limit", side, price, quantity)
    assert receipt.status == 1, receipt.return_data
    return word(receipt.return_data, 0)


def big_transact(chain: LocalChain, sender: bytes, name: str, *args: object) -> object:
    """`chain.transact` with a gas limit above its default of 1,000,000."""
    raw = chain.sign(sender, chain.app.address, chain.calldata(name, *args), gas=5_000_000)
    return chain.send_raw(raw)


# ---- funds ------------------------------------------------------------------------------


def test_deposits_and_withdrawals_move_free_balances(chain: LocalChain) -> None:
    alice = chain.accounts[0]
    receipt = chain.transact(alice, "deposit_base", 1_000)
    assert receipt.status == 1 and events(chain, receipt) == ["Deposited"]
    fund(chain, alice, quote=50_000)
    assert chain.call("balance_of", alice) == (1_000, 0, 50_000, 0)
    receipt = chain.transact(alice, "withdraw_base", 400)
    assert receipt.status == 1 and events(chain, receipt) == ["Withdrawn"]
    assert chain.transact(alice, "withdraw_quote", 50_000).status == 1
    assert chain.call("balance_of", alice) == (600, 0, 0, 0)
    signature = "InsufficientBalance(address,uint8,uint256,uint256)"
    assert reverted_with(chain.transact(alice, "withdraw_base", 601), signature)
    assert reverted_with(chain.transact(alice, "withdraw_quote", 1), signature)
    assert reverted_with(chain.transact(alice, "deposit_base", 0), "ZeroQuantity()")
    assert chain.call("balance_of", alice) == (600, 0, 0, 0)


def test_locked_funds_cannot_be_withdrawn(chain: LocalChain) -> None:
    alice = chain.accounts[0]
    fund(chain, alice, base=10, quote=1_000)
    place(chain, alice, BID, 100, 10)
    place(chain, alice, ASK, 200, 10)
    assert chain.call("balance_of", alice) == (0, 10, 0, 1_000)
    signature = "InsufficientBalance(address,uint8,uint256,uint256)"
    assert reverted_with(chain.transact(alice, "withdraw_quote", 1), signature)
    assert reverted_with(chain.transact(alice, "withdraw_base", 1), signature)


# ---- resting and crossing ---------------------------------------------------------------


def test_resting_orders_lock_funds_and_make_the_book(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, quote=10_000)
    fund(chain, bob, base=100)
    assert chain.call("best_bid") == (0, 0) and chain.call("best_ask") == (0, 0)
    receipt = chain.transact(alice, "place_limit", BID, 99, 10)
    assert receipt.status == 1 and events(chain, receipt) == ["Placed"]
    first = word(receipt.return_data, 0)
    second = place(chain, alice, BID, 100, 5)
    place(chain, alice, BID, 99, 3)
    ask = place(chain, bob, ASK, 105, 7)
    assert chain.call("balance_of", alice) == (0, 0, 10_000 - 99 * 13 - 500, 99 * 13 + 500)
    assert chain.call("balance_of", bob) == (93, 7, 0, 0)
    assert chain.call("best_bid") == (100, 5)
    assert chain.call("best_ask") == (105, 7)
    assert chain.call("order", first) == (alice, BID, 99, 10)
    assert chain.call("order", second) == (alice, BID, 100, 5)
    assert chain.call("order", ask) == (bob, ASK, 105, 7)
    assert chain.call("book", BID, 10) == ([100, 99], [5, 13])
    assert chain.call("book", ASK, 10) == ([105], [7])


def test_a_crossing_order_trades_at_the_makers_price(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, base=10)
    fund(chain, bob, quote=10_000)
    maker = place(chain, alice, ASK, 100, 10)
    receipt = chain.transact(bob, "place_limit", BID, 103, 10)
    assert receipt.status == 1
    taker = word(receipt.return_data, 0)
    assert fills(chain, receipt) == [(maker, taker, 100, 10, alice, bob)]
    assert events(chain, receipt) == ["Fill"]  # filled entirely: nothing rests
    assert chain.call("balance_of", alice) == (0, 0, 1_000, 0)
    assert chain.call("balance_of", bob) == (10, 0, 9_000, 0)  # the 3 * 10 better stays free
    assert chain.call("order", maker) == (alice, ASK, 100, 0)
    assert chain.call("best_ask") == (0, 0) and chain.call("best_bid") == (0, 0)


def test_price_time_priority(chain: LocalChain) -> None:
    a, b, c, taker = chain.accounts[:4]
    for maker in (a, b, c):
        fund(chain, maker, base=100)
    fund(chain, taker, quote=100_000)
    first = place(chain, a, ASK, 100, 4)
    second = place(chain, b, ASK, 100, 4)
    better = place(chain, c, ASK, 99, 4)  # later, but at a better price
    worse = place(chain, c, ASK, 101, 4)
    receipt = chain.transact(taker, "place_limit", BID, 100, 10)
    order = word(receipt.return_data, 0)
    assert fills(chain, receipt) == [
        (better, order, 99, 4, c, taker),
        (first, order, 100, 4, a, taker),
        (second, order, 100, 2, b, taker),
    ]
    assert chain.call("order", second) == (b, ASK, 100, 2)
    assert chain.call("book", ASK, 5) == ([100, 101], [2, 4])
    assert chain.call("order", worse) == (c, ASK, 101, 4)
    # the same on the bid side: highest first, then first in
    for maker in (a, b, c):
        fund(chain, maker, quote=10_000)
    fund(chain, taker, base=100)
    assert reverted_with(chain.transact(taker, "cancel", order), "UnknownOrder(uint256)")
    b1 = place(chain, a, BID, 90, 3)
    b2 = place(chain, b, BID, 90, 3)
    b3 = place(chain, c, BID, 91, 3)
    receipt = chain.transact(taker, "place_limit", ASK, 90, 7)
    order = word(receipt.return_data, 0)
    assert fills(chain, receipt) == [
        (b3, order, 91, 3, c, taker),
        (b1, order, 90, 3, a, taker),
        (b2, order, 90, 1, b, taker),
    ]


def test_partial_fills_leave_the_rest_on_the_book(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, base=10)
    fund(chain, bob, quote=10_000)
    maker = place(chain, alice, ASK, 100, 10)
    taker = place(chain, bob, BID, 100, 4)
    assert chain.call("order", maker) == (alice, ASK, 100, 6)
    assert chain.call("best_ask") == (100, 6)
    assert chain.call("balance_of", alice) == (0, 6, 400, 0)
    receipt = chain.transact(bob, "place_limit", BID, 101, 10)  # takes 6, rests 4 at 101
    rested = word(receipt.return_data, 0)
    assert fills(chain, receipt) == [(maker, rested, 100, 6, alice, bob)]
    assert events(chain, receipt) == ["Fill", "Placed"]
    assert chain.call("order", rested) == (bob, BID, 101, 4)
    assert chain.call("best_bid") == (101, 4) and chain.call("best_ask") == (0, 0)
    assert chain.call("balance_of", bob) == (10, 0, 10_000 - 1_000 - 404, 404)
    assert taker != rested


def test_market_orders_sweep_levels(chain: LocalChain) -> None:
    alice, bob, carol = chain.accounts[:3]
    fund(chain, alice, base=100, quote=100_000)
    fund(chain, bob, quote=100_000)
    for price in (104, 100, 102, 101, 103):
        place(chain, alice, ASK, price, 2)
    receipt = chain.transact(bob, "place_market", BID, 9)
    assert receipt.status == 1 and word(receipt.return_data, 0) == 9
    assert [(f[0], f[1], f[2], f[3]) for f in fills(chain, receipt)] == [
        (2, 0, 100, 2),
        (4, 0, 101, 2),
        (3, 0, 102, 2),
        (5, 0, 103, 2),
        (1, 0, 104, 1),
    ]
    paid = 2 * (100 + 101 + 102 + 103) + 104
    assert chain.call("balance_of", bob) == (9, 0, 100_000 - paid, 0)
    assert chain.call("book", ASK, 10) == ([104], [1])
    # a market sell into an empty bid side fills nothing and changes nothing
    receipt = chain.transact(bob, "place_market", ASK, 5)
    assert receipt.status == 1 and word(receipt.return_data, 0) == 0
    assert chain.call("balance_of", bob) == (9, 0, 100_000 - paid, 0)
    # a market buy stops where the buyer's quote runs out
    place(chain, alice, ASK, 110, 10)
    fund(chain, carol, quote=104 + 110 * 3 + 50)
    receipt = chain.transact(carol, "place_market", BID, 100)
    assert word(receipt.return_data, 0) == 4
    assert chain.call("balance_of", carol) == (4, 0, 50, 0)
    assert chain.call("book", ASK, 10) == ([110], [7])
    # a market sell sweeps bids from the highest
    place(chain, alice, BID, 90, 2)
    place(chain, alice, BID, 95, 2)
    receipt = chain.transact(carol, "place_market", ASK, 3)
    assert [(f[2], f[3]) for f in fills(chain, receipt)] == [(95, 2), (90, 1)]
    assert chain.call("balance_of", carol) == (1, 0, 50 + 190 + 90, 0)
    assert chain.call("best_bid") == (90, 1)


def test_cancel_returns_the_locked_funds(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, base=10, quote=1_000)
    fund(chain, bob, quote=1_000)
    bid = place(chain, alice, BID, 50, 20)
    ask = place(chain, alice, ASK, 60, 10)
    place(chain, bob, BID, 60, 4)  # fills 4 of the ask
    receipt = chain.transact(alice, "cancel", ask)
    assert receipt.status == 1 and events(chain, receipt) == ["Cancelled"]
    assert word(receipt.logs[0].data, 0) == 6
    receipt = chain.transact(alice, "cancel", bid)
    assert receipt.status == 1
    assert chain.call("balance_of", alice) == (6, 0, 1_240, 0)
    assert chain.call("order", bid) == (alice, BID, 50, 0)
    assert chain.call("best_bid") == (0, 0) and chain.call("best_ask") == (0, 0)
    assert reverted_with(chain.transact(alice, "cancel", bid), "OrderNotOpen(uint256)")
    assert reverted_with(chain.transact(alice, "cancel", 999), "UnknownOrder(uint256)")


def test_cancel_by_someone_else_reverts_and_changes_nothing(chain: LocalChain) -> None:
    alice, mallory = chain.accounts[:2]
    fund(chain, alice, quote=1_000)
    bid = place(chain, alice, BID, 10, 30)
    receipt = chain.transact(mallory, "cancel", bid)
    assert reverted_with(receipt, "NotOwner(uint256,address)") and receipt.logs == ()
    assert chain.call("order", bid) == (alice, BID, 10, 30)
    assert chain.call("balance_of", alice) == (0, 0, 700, 300)
    assert chain.call("balance_of", mallory) == (0, 0, 0, 0)
    assert chain.call("best_bid") == (10, 30)


def test_orders_beyond_the_balance_or_malformed_revert(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, base=5, quote=1_000)
    fund(chain, bob, base=100)
    place(chain, bob, ASK, 10, 100)
    signature = "InsufficientBalance(address,uint8,uint256,uint256)"
    assert reverted_with(chain.transact(alice, "place_limit", BID, 10, 101), signature)
    assert reverted_with(chain.transact(alice, "place_limit", ASK, 10, 6), signature)
    assert reverted_with(chain.transact(alice, "place_market", ASK, 6), signature)
    assert reverted_with(chain.transact(alice, "place_limit", 2, 10, 1), "BadSide(uint8)")
    assert reverted_with(chain.transact(alice, "place_market", 7, 1), "BadSide(uint8)")
    assert reverted_with(chain.transact(alice, "place_limit", BID, 10, 0), "ZeroQuantity()")
    assert reverted_with(chain.transact(alice, "place_limit", BID, 0, 1), "ZeroPrice()")
    assert reverted_with(chain.transact(alice, "place_market", BID, 0), "ZeroQuantity()")
    assert chain.transact(alice, "place_limit", BID, 2**255, 2).status == 0  # overflow
    assert chain.call("balance_of", alice) == (5, 0, 1_000, 0)
    assert chain.call("book", ASK, 5) == ([10], [100])
    assert chain.call("book", BID, 5) == ([], [])


# ---- the book's lists -------------------------------------------------------------------


def test_the_book_after_a_sequence(chain: LocalChain) -> None:
    alice, bob = chain.accounts[:2]
    fund(chain, alice, base=1_000, quote=1_000_000)
    fund(chain, bob, base=1_000, quote=1_000_000)
    # levels inserted at the best, the worst and (from both ends) in between
    for price, quantity in ((100, 1), (90, 2), (95, 3), (99, 4), (91, 5), (100, 6), (80, 7)):
        place(chain, alice, BID, price, quantity)
    for price, quantity in ((110, 1), (120, 2), (111, 3), (119, 4), (105, 5), (115, 6)):
        place(chain, bob, ASK, price, quantity)
    assert chain.call("book", BID, 100) == ([100, 99, 95, 91, 90, 80], [7, 4, 3, 5, 2, 7])
    assert chain.call("book", ASK, 3) == ([105, 110, 111], [5, 1, 3])
    assert chain.call("book", ASK, 0) == ([], [])
    # empty a middle level, the best level and the worst level by cancelling
    chain.transact(alice, "cancel", 4)  # bid 99
    chain.transact(bob, "cancel", 12)  # ask 105, the best
    chain.transact(bob, "cancel", 9)  # ask 120, the worst
    assert chain.call("book", BID, 100) == ([100, 95, 91, 90, 80], [7, 3, 5, 2, 7])
    assert chain.call("book", ASK, 100) == ([110, 111, 115, 119], [1, 3, 6, 4])
    # and re-create them
    place(chain, bob, ASK, 120, 1)
    place(chain, bob, ASK, 105, 1)
    place(chain, bob, ASK, 112, 1)
    place(chain, alice, BID, 99, 1)
    assert chain.call("book", ASK, 100) == (
        [105, 110, 111, 112, 115, 119, 120],
        [1, 1, 3, 1, 6, 4, 1],
    )
    assert chain.call("book", BID, 100) == ([100, 99, 95, 91, 90, 80], [7, 1, 3, 5, 2, 7])
    # a sell sweeping three bid levels; the fourth is partly filled
    receipt = chain.transact(bob, "place_limit", ASK, 91, 13)
    assert [(f[2], f[3]) for f in fills(chain, receipt)] == [
        (100, 1),
        (100, 6),
        (99, 1),
        (95, 3),
        (91, 2),
    ]
    assert chain.call("book", BID, 100) == ([91, 90, 80], [3, 2, 7])
    assert chain.call("book", ASK, 2) == ([105, 110], [1, 1])


def test_cancelled_orders_inside_a_level_are_stepped_over(chain: LocalChain) -> None:
    a, b, c, taker = chain.accounts[:4]
    for maker in (a, b, c):
        fund(chain, maker, base=10)
    fund(chain, taker, quote=10_000)
    first = place(chain, a, ASK, 7, 1)
    second = place(chain, b, ASK, 7, 2)
    third = place(chain, c, ASK, 7, 3)
    chain.transact(b, "cancel", second)
    assert chain.call("best_ask") == (7, 4)
    receipt = chain.transact(taker, "place_limit", BID, 7, 4)
    order = word(receipt.return_data, 0)
    assert fills(chain, receipt) == [(first, order, 7, 1, a, taker), (third, order, 7, 3, c, taker)]
    assert chain.call("best_ask") == (0, 0)
    # cancelling the head unlinks it at once; the level lives on
    first = place(chain, a, ASK, 7, 1)
    second = place(chain, b, ASK, 7, 2)
    chain.transact(a, "cancel", first)
    receipt = chain.transact(taker, "place_market", BID, 5)
    assert fills(chain, receipt) == [(second, 0, 7, 2, b, taker)]


def test_self_trades_settle_like_any_other(chain: LocalChain) -> None:
    alice = chain.accounts[0]
    fund(chain, alice, base=10, quote=1_000)
    place(chain, alice, ASK, 50, 4)
    place(chain, alice, BID, 60, 6)  # buys its own 4 at 50, rests 2 at 60
    assert chain.call("balance_of", alice) == (10, 0, 880, 120)
    chain.transact(alice, "place_market", ASK, 2)
    assert chain.call("balance_of", alice) == (10, 0, 1_000, 0)


def test_one_call_visits_at_most_max_fills_orders(chain: LocalChain) -> None:
    maker, taker = chain.accounts[:2]
    fund(chain, maker, base=1_000)
    fund(chain, taker, quote=10**9)
    orders = [place(chain, maker, ASK, 10, 1) for _ in range(MAX_FILLS + 6)]
    for order in orders[1:6]:  # five cancelled orders inside the level's FIFO
        assert chain.transact(maker, "cancel", order).status == 1
    receipt = big_transact(chain, taker, "place_limit", BID, 10, 100)
    assert receipt.status == 1
    filled = MAX_FILLS - 5  # the cancelled orders count towards the bound
    assert [f[0] for f in fills(chain, receipt)] == orders[:1] + orders[6:MAX_FILLS]
    # the book still crosses at 10, so the remainder is released, not rested
    assert events(chain, receipt)[-1] == "Cancelled"
    assert word(receipt.logs[-1].data, 0) == 100 - filled
    assert chain.call("best_ask") == (10, 6) and chain.call("best_bid") == (0, 0)
    assert chain.call("balance_of", taker) == (filled, 0, 10**9 - 10 * filled, 0)
    assert chain.call("balance_of", maker) == (1_000 - filled - 6, 6, 10 * filled, 0)
    # once the book no longer crosses, the remainder rests as usual
    receipt = chain.transact(taker, "place_limit", BID, 10, 10)
    assert len(fills(chain, receipt)) == 6 and events(chain, receipt)[-1] == "Placed"
    assert chain.call("best_bid") == (10, 4) and chain.call("best_ask") == (0, 0)


# ---- against a model --------------------------------------------------------------------


class Model:
    """The exchange in plain Python: what the app must do, without the storage layout."""

    def __init__(self) -> None:
        self.free: dict[tuple[bytes, int], int] = {}
        self.locked: dict[tuple[bytes, int], int] = {}
        self.levels: list[dict[int, list[int]]] = [{}, {}]  # side -> price -> FIFO of ids
        self.orders: dict[int, list] = {}  # id -> [owner, side, price, remaining]
        self.last_id = 0

    def add(self, table: dict, owner: bytes, asset: int, amount: int) -> None:
        table[owner, asset] = table.get((owner, asset), 0) + amount
        assert table[owner, asset] >= 0

    def balance(self, owner: bytes) -> tuple[int, int, int, int]:
        return (
            self.free.get((owner, 0), 0),
            self.locked.get((owner, 0), 0),
            self.free.get((owner, 1), 0),
            self.locked.get((owner, 1), 0),
        )

    def live(self, fifo: list[int]) -> int:
        return sum(self.orders[i][3] for i in fifo)

    def best(self, side: int) -> int:
        prices = self.levels[side]
        return (max(prices) if side == BID else min(prices)) if prices else 0

    def book(self, side: int) -> tuple[list[int], list[int]]:
        prices = sorted(self.levels[side], reverse=side == BID)
        return prices, [self.live(self.levels[side][p]) for p in prices]

    def limit(self, owner: bytes, side: int, price: int, quantity: int) -> tuple[int, list]:
        pay = 1 if side == BID else 0
        need = price * quantity if side == BID else quantity
        if self.free.get((owner, pay), 0) < need:
            return 0, []
        self.last_id += 1
        order = self.last_id
        left, found = self.match(owner, order, side, price, quantity, -1)
        best = self.best(1 - side)
        if left and not (best and (best <= price if side == BID else best >= price)):
            lock = price * left if side == BID else left
            self.add(self.free, owner, pay, -lock)
            self.add(self.locked, owner, pay, lock)
            self.orders[order] = [owner, side, price, left]
            self.levels[side].setdefault(price, []).append(order)
        return order, found

    def market(self, owner: bytes, side: int, quantity: int) -> tuple[int, list]:
        if side == ASK and self.free.get((owner, 0), 0) < quantity:
            return -1, []
        budget = self.free.get((owner, 1), 0) if side == BID else -1
        limit = 2**256 - 1 if side == BID else 0
        left, found = self.match(owner, 0, side, limit, quantity, budget)
        return quantity - left, found

    def match(self, taker: bytes, order: int, side: int, limit: int, left: int, budget: int):
        opposite, spent, steps, done, found = 1 - side, 0, 0, False, []
        while left and steps < MAX_FILLS and not done:
            best = self.best(opposite)
            if not best or not (best <= limit if side == BID else best >= limit):
                break
            fifo = self.levels[opposite][best]
            while True:
                steps += 1
                maker_order = self.orders[fifo[0]]
                if maker_order[3] == 0:
                    fifo.pop(0)
                    if steps >= MAX_FILLS:
                        break
                    continue
                fill = min(maker_order[3], left)
                if budget >= 0 and (budget - spent) // best < fill:
                    fill, done = (budget - spent) // best, True
                    if fill == 0:
                        break
                maker, amount = maker_order[0], best * fill
                maker_order[3] -= fill
                left, spent = left - fill, spent + amount
                found.append((fifo[0], order, best, fill, maker, taker))
                if side == BID:  # the taker buys base from the maker
                    self.add(self.free, taker, 0, fill)
                    self.add(self.free, taker, 1, -amount)
                    self.add(self.locked, maker, 0, -fill)
                    self.add(self.free, maker, 1, amount)
                else:
                    self.add(self.free, taker, 0, -fill)
                    self.add(self.free, taker, 1, amount)
                    self.add(self.locked, maker, 1, -amount)
                    self.add(self.free, maker, 0, fill)
                if maker_order[3] or not self.live(fifo):
                    break
                fifo.pop(0)
                if left == 0 or steps >= MAX_FILLS or done:
                    break
            if self.live(fifo):
                break
            del self.levels[opposite][best]
        return left, found

    def cancel(self, owner: bytes, order: int) -> bool:
        if order not in self.orders or self.orders[order][0] != owner:
            return False
        _, side, price, remaining = self.orders[order]
        if remaining == 0:
            return False
        self.orders[order][3] = 0
        fifo = self.levels[side][price]
        if not self.live(fifo):
            del self.levels[side][price]
        elif fifo[0] == order:
            fifo.pop(0)
        amount = price * remaining if side == BID else remaining
        asset = 1 if side == BID else 0
        self.add(self.locked, owner, asset, -amount)
        self.add(self.free, owner, asset, amount)
        return True


def test_random_orders_match_a_model_and_conserve_funds(chain: LocalChain) -> None:
    rng = random.Random(20240601)
    traders = chain.accounts[:4]
    model = Model()
    deposited = [0, 0]
    # unequal funds, so that some orders fail and some market buys run out of quote
    for trader, base, quote in zip(traders, (400, 200, 60, 30), (40_000, 8_000, 3_000, 1_500)):
        fund(chain, trader, base=base, quote=quote)
        model.add(model.free, trader, 0, base)
        model.add(model.free, trader, 1, quote)
        deposited[0] += base
        deposited[1] += quote
    for step in range(300):
        trader = rng.choice(traders)
        roll = rng.random()
        side = rng.randrange(2)
        if roll < 0.70:
            price, quantity = rng.randint(95, 105), rng.randint(1, 12)
            receipt = chain.transact(trader, "place_limit", side, price, quantity)
            order, expected = model.limit(trader, side, price, quantity)
            assert receipt.status == (1 if order else 0), step
            if order:
                assert word(receipt.return_data, 0) == order
        elif roll < 0.82:
            quantity = rng.randint(1, 25)
            receipt = chain.transact(trader, "place_market", side, quantity)
            filled, expected = model.market(trader, side, quantity)
            assert receipt.status == (0 if filled < 0 else 1), step
            if filled >= 0:
                assert word(receipt.return_data, 0) == filled
        elif roll < 0.97:
            mine = [i for i, o in model.orders.items() if o[0] == trader and o[3]]
            order = rng.choice(mine) if mine and rng.random() < 0.9 else rng.randint(1, 250)
            receipt = chain.transact(trader, "cancel", order)
            assert receipt.status == (1 if model.cancel(trader, order) else 0), step
            expected = []
        else:
            asset, amount = rng.randrange(2), rng.randint(1, 2_000)
            name = ("withdraw_base", "withdraw_quote")[asset]
            receipt = chain.transact(trader, name, amount)
            ok = model.free.get((trader, asset), 0) >= amount
            assert receipt.status == (1 if ok else 0), step
            if ok:
                model.add(model.free, trader, asset, -amount)
                deposited[asset] -= amount
            expected = []
        assert fills(chain, receipt) == expected, step
        if step % 40 == 39:
            assert chain.call("book", BID, 100) == model.book(BID), step
            assert chain.call("book", ASK, 100) == model.book(ASK), step
    totals = [0, 0]
    for trader in traders:
        balance = chain.call("balance_of", trader)
        assert balance == model.balance(trader)
        totals[0] += balance[0] + balance[1]
        totals[1] += balance[2] + balance[3]
    assert totals == deposited
    for order, (owner, side, price, remaining) in model.orders.items():
        assert chain.call("order", order) == (owner, side, price, remaining)
    # what is locked is exactly what rests on the book
    bids, asks = model.book(BID), model.book(ASK)
    assert sum(p * q for p, q in zip(*bids)) == sum(chain.call("balance_of", t)[3] for t in traders)
    assert sum(asks[1]) == sum(chain.call("balance_of", t)[1] for t in traders)
