"""A spot exchange for one market (BASE/QUOTE): a central limit order book with price-time
priority, in the style of Nord. Both assets are internal balances of this app.

Units: quantities are in base units, prices in quote units per base unit (integers), so a fill
of `q` at price `p` moves `q` base one way and `p * q` quote the other. There is no decimal
math anywhere: pick the units of the two assets so that a price step of 1 is fine enough.

Funds: every account has a free and a locked balance of each asset. A resting bid locks
`price * remaining` quote, a resting ask locks `remaining` base; fills and cancels release them.
`deposit_*` credit the caller directly (a devnet faucet); `_credit` is the one crediting path.

The base asset can be a token app on another chain (`[app.init] token_chain`, `token_app` in
rollup.toml): its `send_to(this chain, this app, owner, amount)` arrives over the cross-app
message bus as `receive_tokens(owner, amount)`, which credits base to `owner` (only when it
comes from that token app); the token app's callback confirms it to the sender.
`withdraw_to_token(amount)` sends base back the same way, as a `transfer` from this app's
account at the token app, and credits it again here if the token app refuses it.

Matching: an incoming order trades against the opposite side, best price first and first in,
first out within a price level, always at the resting (maker) order's price. The remainder of a
limit order rests on the book; a market order's remainder is dropped. An account may trade
with its own resting orders; such fills settle like any other.

Gas bound: one call visits at most MAX_FILLS resting orders (each one filled, or skipped as
cancelled), so the gas of a call has a ceiling: a fill costs about 25-30k gas, 64 fills
across 64 levels about 1.9M (above LocalChain.transact's default gas limit of 1M). If the
bound stops a limit order while it still crosses the book, its remainder is not rested (the
book never crosses): it is released and a `Cancelled` event reports it; send the order again
to continue.

Storage layout (each field one Solidity-style slot or mapping):
  per side (0 bid, 1 ask): the best and worst price, and a doubly linked list of price levels
  sorted best first (`level_next` towards worse prices, `level_prev` towards better ones; the
  best level's `level_prev` is never read). A level exists iff its aggregated quantity
  `level_qty` is nonzero; `level_head`/`level_tail` and its pointers are rewritten whenever a
  level is created, so nothing needs clearing when one empties.
  per level a FIFO of order ids (`order_next`). A cancelled order inside a FIFO is unlinked
  lazily: its remaining quantity drops to 0 and matching steps over it (it counts towards
  MAX_FILLS); cancelling the head order, or the last live order of a level, unlinks at once.
  per order: owner, side, price, remaining in separate maps (a bid's side, 0, is not written).
  An order that fills completely on entry is never stored: `order()` does not know it.
"""

from vm.native import (
    App,
    Error,
    Event,
    Map,
    Panic,
    Value,
    address,
    app_address,
    bytes32,
    callback,
    indexed,
    method,
    remote_address,
    uint8,
    uint64,
    uint256,
    view,
)

BID = 0
ASK = 1
BASE = 0
QUOTE = 1
MAX_FILLS = 64  # resting orders one call may visit: the gas ceiling of matching
MAX_UINT = 2**256 - 1
ZERO = bytes(20)


class Deposited(Event):
    owner: indexed(address)
    asset: uint8  # 0 base, 1 quote
    amount: uint256


class Withdrawn(Event):
    owner: indexed(address)
    asset: uint8
    amount: uint256


class Placed(Event):
    order_id: indexed(uint256)
    owner: indexed(address)
    side: uint8
    price: uint256
    quantity: uint256  # what rests on the book, after the fills on entry


class Fill(Event):
    maker_order: indexed(uint256)
    taker_order: uint256  # 0 for a market order
    price: uint256
    quantity: uint256
    maker: indexed(address)
    taker: indexed(address)


class Cancelled(Event):
    order_id: indexed(uint256)
    owner: indexed(address)
    quantity: uint256  # the quantity released


class InsufficientBalance(Error):
    owner: address
    asset: uint8
    available: uint256
    needed: uint256


class UnknownOrder(Error):
    order_id: uint256


class NotOwner(Error):
    order_id: uint256
    caller: address


class OrderNotOpen(Error):
    order_id: uint256


class ZeroQuantity(Error):
    pass


class ZeroPrice(Error):
    pass


class BadSide(Error):
    side: uint8


class BadAsset(Error):
    asset: uint8


class NotTheTokenApp(Error):
    caller: address


class NoTokenApp(Error):
    pass


class WithdrawalSettled(Event):
    msg_id: indexed(bytes32)
    owner: indexed(address)
    amount: uint256
    delivered: bool  # false: the token app refused it and the base went back to the owner


class OrderBook(App):
    base_free = Map(address, uint256)
    base_locked = Map(address, uint256)
    quote_free = Map(address, uint256)
    quote_locked = Map(address, uint256)
    last_order_id = Value(uint256)
    best = Map(uint8, uint256)  # side -> best price, 0 when the side is empty
    worst = Map(uint8, uint256)  # side -> worst price
    level_next = Map((uint8, uint256), uint256)  # (side, price) -> next worse price, 0 at the end
    level_prev = Map((uint8, uint256), uint256)  # (side, price) -> next better price
    level_qty = Map((uint8, uint256), uint256)  # (side, price) -> sum of remaining quantities
    level_head = Map((uint8, uint256), uint256)  # (side, price) -> first order id
    level_tail = Map((uint8, uint256), uint256)  # (side, price) -> last order id
    order_next = Map(uint256, uint256)
    order_owner = Map(uint256, address)
    order_side = Map(uint256, uint8)
    order_price = Map(uint256, uint256)
    order_remaining = Map(uint256, uint256)
    token_chain = Value(uint64)  # the base asset's token app, 0 when there is none
    token_app = Value(address)
    token_caller = Value(address)  # how that app appears here: remote_address(chain, app)
    pending_owner = Map(bytes32, address)  # withdrawals to the token app awaiting their result
    pending_amount = Map(bytes32, uint256)

    def init(self, token_chain: int = 0, token_app: str = "token") -> None:
        """`token_app`: a native app's name, or an EVM app's 0x address."""
        if token_chain:
            self.token_chain = token_chain
            if token_app.startswith("0x"):
                self.token_app = int(token_app, 16).to_bytes(20, "big")
            else:
                self.token_app = app_address(token_app)
            self.token_caller = remote_address(token_chain, self.token_app)

    # ---- funds ---------------------------------------------------------------------------

    @method
    def deposit_base(self, amount: uint256) -> None:
        """Devnet faucet: credit `amount` base to the caller."""
        self._credit(self.msg.sender, BASE, amount)

    @method
    def deposit_quote(self, amount: uint256) -> None:
        """Devnet faucet: credit `amount` quote to the caller."""
        self._credit(self.msg.sender, QUOTE, amount)

    @method
    def receive_tokens(self, owner: address, amount: uint256) -> None:
        """A deposit from the token app over the message bus (its `send_to`)."""
        if self.token_chain == 0 or self.msg.sender != self.token_caller:
            raise NotTheTokenApp(self.msg.sender)
        self._credit(owner, BASE, amount)

    @method
    def withdraw_to_token(self, amount: uint256) -> bytes32:
        """Send `amount` of the caller's free base back to their account at the token app."""
        if self.token_chain == 0:
            raise NoTokenApp()
        owner = self.msg.sender
        self._debit(owner, BASE, amount)
        msg_id = self.send(
            self.token_chain,
            self.token_app,
            "transfer(address,uint256)",
            owner,
            amount,
            callback=self.on_withdrawn,
        )
        self.pending_owner[msg_id] = owner
        self.pending_amount[msg_id] = amount
        return msg_id

    @callback
    def on_withdrawn(self, msg_id: bytes32, ok: bool, data: bytes) -> None:
        owner = self.pending_owner[msg_id]
        amount = self.pending_amount[msg_id]
        self.pending_owner[msg_id] = ZERO
        self.pending_amount[msg_id] = 0
        if not ok:
            self.base_free[owner] = self.base_free[owner] + amount
        self.emit(WithdrawalSettled(msg_id, owner, amount, ok))

    @view
    def token(self) -> tuple[uint64, address]:
        """(chain id, address) of the token app that is the base asset; (0, 0) if none."""
        return self.token_chain, self.token_app

    @method
    def withdraw_base(self, amount: uint256) -> None:
        self._debit(self.msg.sender, BASE, amount)

    @method
    def withdraw_quote(self, amount: uint256) -> None:
        self._debit(self.msg.sender, QUOTE, amount)

    def _credit(self, owner: bytes, asset: int, amount: int) -> None:
        """The one path by which funds enter the exchange (faucet now, bridge deposits later)."""
        if amount == 0:
            raise ZeroQuantity()
        free = self._free_map(asset)
        free[owner] = free[owner] + amount
        self.emit(Deposited(owner, asset, amount))

    def _debit(self, owner: bytes, asset: int, amount: int) -> None:
        if amount == 0:
            raise ZeroQuantity()
        free = self._free_map(asset)
        have = free[owner]
        if have < amount:
            raise InsufficientBalance(owner, asset, have, amount)
        free[owner] = have - amount
        self.emit(Withdrawn(owner, asset, amount))

    def _free_map(self, asset: int) -> Map:
        if asset == BASE:
            return self.base_free
        if asset == QUOTE:
            return self.quote_free
        raise BadAsset(asset)

    # ---- orders --------------------------------------------------------------------------

    @method
    def place_limit(self, side: uint8, price: uint256, quantity: uint256) -> uint256:
        """Buy (side 0) or sell (side 1) `quantity` base at `price` or better; the remainder
        rests on the book. Returns the order id."""
        if side > ASK:
            raise BadSide(side)
        if quantity == 0:
            raise ZeroQuantity()
        if price == 0:
            raise ZeroPrice()
        taker = self.msg.sender
        if side == BID:
            pay_free = self.quote_free
            need = price * quantity
            if need > MAX_UINT:
                raise Panic(0x11)
            have = pay_free[taker]
            if have < need:
                raise InsufficientBalance(taker, QUOTE, have, need)
        else:
            pay_free = self.base_free
            have = pay_free[taker]
            if have < quantity:
                raise InsufficientBalance(taker, BASE, have, quantity)
        order_id = self.last_order_id + 1
        self.last_order_id = order_id
        left, filled, quote, self_paid, opposite = self._match(
            taker, order_id, side, price, quantity, -1
        )
        rests = left and not (opposite and _crosses(side, opposite, price))
        # the taker's pay asset: spent on fills, locked for what rests; received as own maker
        if side == BID:
            locked = price * left if rests else 0
            if quote or locked:
                pay_free[taker] = have - quote - locked + self_paid
            if filled:
                self.base_free[taker] = self.base_free[taker] + filled
            if locked:
                self.quote_locked[taker] = self.quote_locked[taker] + locked
        else:
            locked = left if rests else 0
            if filled or locked or self_paid:
                pay_free[taker] = have - filled - locked + self_paid
            if quote:
                self.quote_free[taker] = self.quote_free[taker] + quote
            if locked:
                self.base_locked[taker] = self.base_locked[taker] + locked
        if rests:
            self._rest(taker, order_id, side, price, left)
        elif left:
            self.emit(Cancelled(order_id, taker, left))
        return order_id

    @method
    def place_market(self, side: uint8, quantity: uint256) -> uint256:
        """Buy (side 0) or sell (side 1) up to `quantity` base at the best prices on the book.
        A buy stops where the caller's free quote runs out; nothing rests. Returns the filled
        quantity."""
        if side > ASK:
            raise BadSide(side)
        if quantity == 0:
            raise ZeroQuantity()
        taker = self.msg.sender
        if side == BID:
            have = self.quote_free[taker]
            left, filled, quote, self_paid, _ = self._match(taker, 0, BID, MAX_UINT, quantity, have)
            if filled or self_paid:
                self.quote_free[taker] = have - quote + self_paid
                self.base_free[taker] = self.base_free[taker] + filled
        else:
            have = self.base_free[taker]
            if have < quantity:
                raise InsufficientBalance(taker, BASE, have, quantity)
            left, filled, quote, self_paid, _ = self._match(taker, 0, ASK, 0, quantity, -1)
            if filled:
                self.base_free[taker] = have - filled + self_paid
                self.quote_free[taker] = self.quote_free[taker] + quote
        return filled

    @method
    def cancel(self, order_id: uint256) -> None:
        """Take a resting order off the book and release its locked funds (owner only)."""
        owner = self.order_owner[order_id]
        if owner == ZERO:
            raise UnknownOrder(order_id)
        if owner != self.msg.sender:
            raise NotOwner(order_id, self.msg.sender)
        remaining = self.order_remaining[order_id]
        if remaining == 0:
            raise OrderNotOpen(order_id)
        side = self.order_side[order_id]
        price = self.order_price[order_id]
        self.order_remaining[order_id] = 0
        key = (side, price)
        level_left = self.level_qty[key] - remaining
        self.level_qty[key] = level_left
        if level_left == 0:
            self._unlink_level(side, price)
        elif self.level_head[key] == order_id:
            self.level_head[key] = self.order_next[order_id]
        if side == BID:
            amount = price * remaining
            self.quote_locked[owner] = self.quote_locked[owner] - amount
            self.quote_free[owner] = self.quote_free[owner] + amount
        else:
            self.base_locked[owner] = self.base_locked[owner] - remaining
            self.base_free[owner] = self.base_free[owner] + remaining
        self.emit(Cancelled(order_id, owner, remaining))

    # ---- views ---------------------------------------------------------------------------

    @view
    def balance_of(self, owner: address) -> tuple[uint256, uint256, uint256, uint256]:
        """(base free, base locked, quote free, quote locked)."""
        return (
            self.base_free[owner],
            self.base_locked[owner],
            self.quote_free[owner],
            self.quote_locked[owner],
        )

    @view
    def best_bid(self) -> tuple[uint256, uint256]:
        """(price, quantity) of the best bid level; (0, 0) when there are no bids."""
        return self._top(BID)

    @view
    def best_ask(self) -> tuple[uint256, uint256]:
        """(price, quantity) of the best ask level; (0, 0) when there are no asks."""
        return self._top(ASK)

    @view
    def order(self, order_id: uint256) -> tuple[address, uint8, uint256, uint256]:
        """(owner, side, price, remaining) of an order that rested; remaining 0 once it is
        filled or cancelled."""
        owner = self.order_owner[order_id]
        if owner == ZERO:
            raise UnknownOrder(order_id)
        return (
            owner,
            self.order_side[order_id],
            self.order_price[order_id],
            self.order_remaining[order_id],
        )

    @view
    def book(self, side: uint8, depth: uint256) -> tuple[list[uint256], list[uint256]]:
        """The best `depth` price levels of a side, best first: (prices, quantities)."""
        if side > ASK:
            raise BadSide(side)
        prices = []
        quantities = []
        price = self.best[side]
        while price and len(prices) < depth:
            prices.append(price)
            quantities.append(self.level_qty[side, price])
            price = self.level_next[side, price]
        return prices, quantities

    def _top(self, side: int) -> tuple[int, int]:
        price = self.best[side]
        return (price, self.level_qty[side, price]) if price else (0, 0)

    # ---- matching ------------------------------------------------------------------------

    def _match(
        self, taker: bytes, taker_order: int, side: int, limit: int, quantity: int, budget: int
    ) -> tuple[int, int, int, int, int]:
        """Trade up to `quantity` against the other side at prices no worse than `limit`; with
        a `budget` >= 0 (market buys) spend at most that much quote, -1 means no budget.
        Maker balances are settled here, the taker's by the caller. Returns (left, filled,
        quote moved, what the taker got as maker of its own orders in the asset it pays with,
        the best opposite price after matching)."""
        opposite = ASK if side == BID else BID
        best = self.best[opposite]
        start = best
        left = quantity
        quote = 0
        self_paid = 0
        steps = 0
        if side == BID:  # makers sell: they give locked base, get the taker's quote
            maker_locked, maker_gets = self.base_locked, self.quote_free
        else:  # makers buy: they give locked quote, get the taker's base
            maker_locked, maker_gets = self.quote_locked, self.base_free
        remaining_of = self.order_remaining
        next_of = self.order_next
        done = False
        while best and left and steps < MAX_FILLS and not done and _crosses(side, best, limit):
            key = (opposite, best)
            level_qty = self.level_qty[key]
            level_left = level_qty
            head = self.level_head[key]
            order_id = head
            while True:
                steps = steps + 1
                rem = remaining_of[order_id]
                if rem == 0:  # cancelled in the middle of the FIFO: step over it
                    order_id = next_of[order_id]
                    if order_id == 0:
                        raise Panic(0x01)  # the level's quantity and its orders disagree
                    if steps >= MAX_FILLS:
                        break
                    continue
                fill = rem if rem < left else left
                if budget >= 0:
                    affordable = (budget - quote) // best
                    if affordable < fill:
                        fill = affordable
                        done = True
                        if fill == 0:
                            break
                maker = self.order_owner[order_id]
                remaining_of[order_id] = rem - fill
                amount = best * fill
                left = left - fill
                quote = quote + amount
                level_left = level_left - fill
                if side == BID:
                    gives, gets = fill, amount
                else:
                    gives, gets = amount, fill
                maker_locked[maker] = maker_locked[maker] - gives
                if maker == taker:
                    self_paid = self_paid + gets
                else:
                    maker_gets[maker] = maker_gets[maker] + gets
                self.emit(Fill(order_id, taker_order, best, fill, maker, taker))
                if rem > fill or level_left == 0:
                    break  # the maker order stays at the head, or the level is gone
                order_id = next_of[order_id]
                if left == 0 or steps >= MAX_FILLS or done:
                    break
            if level_left:
                if level_left != level_qty:
                    self.level_qty[key] = level_left
                if order_id != head:
                    self.level_head[key] = order_id
                break
            self.level_qty[key] = 0
            best = self.level_next[key]
        if best != start:
            self.best[opposite] = best
            if best == 0:
                self.worst[opposite] = 0
        return left, quantity - left, quote, self_paid, best

    # ---- the book's lists ----------------------------------------------------------------

    def _rest(self, owner: bytes, order_id: int, side: int, price: int, quantity: int) -> None:
        key = (side, price)
        level_qty = self.level_qty[key]
        if level_qty:
            self.order_next[self.level_tail[key]] = order_id
        else:
            self._link_level(side, price)
            self.level_head[key] = order_id
        self.level_tail[key] = order_id
        self.level_qty[key] = level_qty + quantity
        self.order_owner[order_id] = owner
        if side:
            self.order_side[order_id] = side
        self.order_price[order_id] = price
        self.order_remaining[order_id] = quantity
        self.emit(Placed(order_id, owner, side, price, quantity))

    def _link_level(self, side: int, price: int) -> None:
        """Insert a new price level into the side's sorted list. From whichever end is nearer
        in price; each level passed costs one storage read."""
        best = self.best[side]
        nxt = self.level_next
        prv = self.level_prev
        if best == 0:
            self.best[side] = price
            self.worst[side] = price
            nxt[side, price] = 0
            return
        if _better(side, price, best):
            nxt[side, price] = best
            prv[side, best] = price
            self.best[side] = price
            return
        worst = self.worst[side]
        if _better(side, worst, price):
            nxt[side, worst] = price
            prv[side, price] = worst
            nxt[side, price] = 0
            self.worst[side] = price
            return
        # strictly between best and worst
        if _distance(price, best) <= _distance(price, worst):
            before = best
            after = nxt[side, before]
            while _better(side, after, price):
                before = after
                after = nxt[side, before]
        else:
            after = worst
            before = prv[side, after]
            while _better(side, price, before):
                after = before
                before = prv[side, after]
        nxt[side, before] = price
        prv[side, price] = before
        nxt[side, price] = after
        prv[side, after] = price

    def _unlink_level(self, side: int, price: int) -> None:
        """Remove an emptied price level from the side's list (its quantity is already 0)."""
        after = self.level_next[side, price]
        if self.best[side] == price:
            self.best[side] = after
            if after == 0:
                self.worst[side] = 0
            return
        before = self.level_prev[side, price]
        self.level_next[side, before] = after
        if after:
            self.level_prev[side, after] = before
        else:
            self.worst[side] = before


def _better(side: int, a: int, b: int) -> bool:
    """Is price `a` better than `b` for a resting order of `side`?"""
    return a > b if side == BID else a < b


def _crosses(side: int, resting: int, limit: int) -> bool:
    """Does an incoming order of `side` with price `limit` trade with a resting `resting`?"""
    return resting <= limit if side == BID else resting >= limit


def _distance(a: int, b: int) -> int:
    return a - b if a > b else b - a
