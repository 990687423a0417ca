"""Polling filters (eth_newFilter & co.) and WebSocket subscriptions (eth_subscribe), for
either VM, fed by the node's owner-thread callbacks `on_commit` and `on_pending`.

Cost, whatever the number of filters or subscribers: each event is recorded or rendered once.
- Filters keep a cursor, not a copy: a block filter's changes are the hashes of the blocks
  committed since its cursor, a pending filter's the hashes in a shared ring of the newest
  `max_items` pending transactions, and a log filter's are found when it is polled, over the
  blocks since its cursor (blooms first; at most `max_log_backlog` blocks: one polled less
  often loses the older ones, as geth's do). The poller pays for its poll.
- As in geth, an id is 16 random bytes and a filter not polled for `timeout` seconds is
  removed; at most `max_filters` exist, and `max_per_client` per client address.
- A subscription's notification is rendered to JSON text once per event and queued as text
  on each subscribing connection; a connection that lets `max_queue` messages pile up is
  detached at once (no more work is done for it) and closed.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import orjson

from rollup.blocks import block_entries, block_entry_receipts, block_hash
from rollup.errors import InvalidParams, LimitExceeded
from rollup.types import Block, Transaction
from sequencer.node import Sequencer
from services.rpc.codec import data, quantity
from services.rpc.logs import log_matches
from services.rpc.params import LogFilter, log_filter
from services.rpc.render import block_json, entry_json, log_json

__all__ = ["FilterRegistry", "LogQuery", "Subscriptions", "SubscriptionHub", "head_json"]

LOGS, BLOCKS, PENDING = "logs", "blocks", "pending"


def _new_id() -> str:
    """A random 128-bit id, a minimal quantity as execution-apis types it (no leading zero)."""
    return quantity(secrets.randbits(128) | 1 << 124)


def head_json(block: Block) -> dict[str, Any]:
    """A newHeads notification: the block's header fields, without its transactions."""
    out = block_json(block, False)
    del out["transactions"]
    return out


@dataclass(frozen=True, slots=True)
class LogQuery:
    """A log filter's poll: its criteria over blocks first..last (run off the event loop)."""

    criteria: LogFilter


@dataclass(slots=True)
class _Filter:
    kind: str
    criteria: LogFilter | None
    polled: float
    cursor: int  # BLOCKS/LOGS: the next block number to report; PENDING: the next sequence
    client: str


class FilterRegistry:
    """The node's polling filters. Every method takes the client's address first (the remote
    host over HTTP, the connection over WebSocket), which bounds what one client may install."""

    def __init__(
        self,
        node: Sequencer,
        timeout: float = 300.0,
        max_filters: int = 10_000,
        max_per_client: int = 1_000,
        max_items: int = 10_000,
        max_log_backlog: int = 1_024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.node, self.timeout, self.clock = node, timeout, clock
        self.max_filters, self.max_per_client = max_filters, max_per_client
        self.max_items, self.max_log_backlog = max_items, max_log_backlog
        self._filters: dict[str, _Filter] = {}
        self._pending: deque[bytes] = deque(maxlen=max_items)
        self._pending_next = 0  # sequence number the next pending transaction gets
        node.on_pending.append(self._on_pending)

    # ---- the methods ----

    def new_filter(self, client: str, criteria: LogFilter) -> str:
        start = self.node.committed.number + 1
        return self._install(_Filter(LOGS, criteria, self.clock(), start, client))

    def new_block_filter(self, client: str) -> str:
        start = self.node.committed.number + 1
        return self._install(_Filter(BLOCKS, None, self.clock(), start, client))

    def new_pending_filter(self, client: str) -> str:
        return self._install(_Filter(PENDING, None, self.clock(), self._pending_next, client))

    def changes(self, client: str, filter_id: str) -> list[Any] | LogQuery:
        """What happened since the last poll; a log filter's answer is a `LogQuery` to run."""
        flt = self._get(filter_id)
        flt.polled = self.clock()
        if flt.kind == PENDING:
            return self._pending_since(flt)
        head = self.node.committed.number
        first = max(
            flt.cursor, head + 1 - (self.max_items if flt.kind == BLOCKS else self.max_log_backlog)
        )
        flt.cursor = head + 1
        if flt.kind == BLOCKS:
            return [data(block_hash(h)) for h in self.node.headers(first, head + 1)]
        assert flt.criteria is not None
        low, high = _bounds(flt.criteria)
        first, last = max(first, low), head if high is None else min(head, high)
        if first > last:
            return []
        return LogQuery(replace(flt.criteria, from_block=first, to_block=last))

    def logs(self, client: str, filter_id: str) -> LogQuery:
        flt = self._get(filter_id)
        if flt.kind != LOGS or flt.criteria is None:
            raise InvalidParams("filter not found")  # geth's words for a non-log filter
        flt.polled = self.clock()
        return LogQuery(flt.criteria)

    def uninstall(self, client: str, filter_id: str) -> bool:
        return self._filters.pop(filter_id, None) is not None

    def __len__(self) -> int:
        return len(self._filters)

    # ---- bookkeeping ----

    def _pending_since(self, flt: _Filter) -> list[str]:
        oldest = self._pending_next - len(self._pending)
        skip = max(flt.cursor - oldest, 0)
        flt.cursor = self._pending_next
        return [data(h) for i, h in enumerate(self._pending) if i >= skip]

    def _install(self, flt: _Filter) -> str:
        self._expire()
        if len(self._filters) >= self.max_filters:
            raise LimitExceeded(f"too many filters: at most {self.max_filters}")
        if sum(f.client == flt.client for f in self._filters.values()) >= self.max_per_client:
            raise LimitExceeded(f"too many filters from this client: at most {self.max_per_client}")
        filter_id = _new_id()
        self._filters[filter_id] = flt
        return filter_id

    def _get(self, filter_id: str) -> _Filter:
        self._expire()
        flt = self._filters.get(filter_id) if isinstance(filter_id, str) else None
        if flt is None:
            raise InvalidParams("filter not found")
        return flt

    def _expire(self) -> None:
        deadline = self.clock() - self.timeout
        for filter_id in [i for i, f in self._filters.items() if f.polled < deadline]:
            del self._filters[filter_id]

    def _on_pending(self, tx: Transaction) -> None:
        self._pending.append(tx.hash)
        self._pending_next += 1


def _bounds(criteria: LogFilter) -> tuple[int, int | None]:
    low = criteria.from_block if isinstance(criteria.from_block, int) else 0
    high = criteria.to_block if isinstance(criteria.to_block, int) else None
    return low, high


def _in_range(criteria: LogFilter, number: int) -> bool:
    if criteria.block_hash is not None:
        return False
    low, high = _bounds(criteria)
    return number >= low and (high is None or number <= high)


# ---- WebSocket subscriptions ---------------------------------------------------------------


def _notification(sub_id: str, result_json: str) -> str:
    return (
        '{"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"'
        + sub_id
        + '","result":'
        + result_json
        + "}}"
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class SubscriptionHub:
    """Every WebSocket connection of a node; each event is rendered once for all of them."""

    def __init__(self, node: Sequencer, max_connections: int = 256) -> None:
        self.node, self.max_connections = node, max_connections
        self.connections: set[Subscriptions] = set()
        node.on_commit.append(self._on_block)
        node.on_pending.append(self._on_pending)

    def open(self, max_queue: int) -> Subscriptions | None:
        """A new connection's subscriptions, or None when there are too many connections."""
        if len(self.connections) >= self.max_connections:
            return None
        session = Subscriptions(self, max_queue)
        self.connections.add(session)
        return session

    def _on_block(self, block: Block) -> None:
        heads: str | None = None
        rendered: list[tuple[Any, str]] | None = None
        for session in list(self.connections):
            for sub_id, (kind, option) in list(session.subs.items()):
                if kind == "newHeads":
                    heads = heads or _json(head_json(block))
                    session.push(_notification(sub_id, heads))
                elif kind == "logs" and _in_range(option, block.header.number):
                    if rendered is None:
                        rendered = _rendered_logs(block)
                    for log, text in rendered:
                        if log_matches(log, option):
                            session.push(_notification(sub_id, text))

    def _on_pending(self, tx: Transaction) -> None:
        hashed: str | None = None
        whole: str | None = None
        for session in list(self.connections):
            for sub_id, (kind, option) in list(session.subs.items()):
                if kind != "newPendingTransactions":
                    continue
                if option:
                    whole = whole or _json(entry_json(tx, None, -1))
                    session.push(_notification(sub_id, whole))
                else:
                    hashed = hashed or _json(data(tx.hash))
                    session.push(_notification(sub_id, hashed))


def _rendered_logs(block: Block) -> list[tuple[Any, str]]:
    """Every log of the block, rendered once: transactions' logs, then those of messages."""
    out: list[tuple[Any, str]] = []
    index = 0
    for tx_index, receipt in enumerate(block_entry_receipts(block)):
        for log in receipt.logs:
            out.append((log, _json(log_json(log, block, tx_index, index))))
            index += 1
    first = len(block_entries(block))
    for position, (message, receipt) in enumerate(
        zip(block.inbound, block.inbound_receipts, strict=True)
    ):
        for log in receipt.logs:
            out.append((log, _json(log_json(log, block, first + position, index, message.id))))
            index += 1
    return out


class Subscriptions:
    """One WebSocket connection: its subscriptions and the text messages waiting to be sent."""

    KINDS = ("newHeads", "logs", "newPendingTransactions")

    def __init__(
        self, hub: SubscriptionHub, max_queue: int = 10_000, max_subscriptions: int = 100
    ) -> None:
        self.hub = hub
        self.max_subscriptions = max_subscriptions
        self.queue: asyncio.Queue[str | None] = asyncio.Queue(max_queue)
        self.subs: dict[str, tuple[str, Any]] = {}
        self.overflowed = False

    def close(self) -> None:
        """Detach from the hub: no more notifications are rendered or queued for it."""
        self.subs.clear()
        self.hub.connections.discard(self)

    def push(self, text: str) -> None:
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()
            self._wake_pump()

    def _wake_pump(self) -> None:
        """Make room for the pump's wake-up, so it sees `overflowed` and closes the socket."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)

    def subscribe(self, params: list[Any]) -> str:
        if not params or params[0] not in self.KINDS:
            raise InvalidParams(f"unsupported subscription: want one of {', '.join(self.KINDS)}")
        if len(self.subs) >= self.max_subscriptions:
            raise LimitExceeded(f"too many subscriptions: at most {self.max_subscriptions}")
        kind = params[0]
        if kind == "logs":
            option: Any = log_filter(params[1] if len(params) > 1 else {})
            if option.block_hash is not None:
                raise InvalidParams("a logs subscription cannot name a blockHash")
        elif kind == "newPendingTransactions":
            option = bool(params[1]) if len(params) > 1 else False  # True: whole transactions
        elif len(params) > 1:
            raise InvalidParams("newHeads takes no options")
        else:
            option = None
        sub_id = _new_id()
        self.subs[sub_id] = (kind, option)
        return sub_id

    def unsubscribe(self, params: list[Any]) -> bool:
        if len(params) != 1 or not isinstance(params[0], str):
            raise InvalidParams("eth_unsubscribe takes one subscription id")
        return self.subs.pop(params[0], None) is not None
