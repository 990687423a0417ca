"""Polling filters (eth_newFilter & co.) and WebSocket subscriptions (eth_subscribe), for
either VM: both are fed by the node's owner-thread callbacks, `on_commit` and `on_pending`.

Filters follow geth: an id is 16 random bytes; a filter that is not polled for `timeout`
seconds is removed; each buffers what happened since its last poll (at most `max_items`,
oldest dropped first). A log filter's changes are the matching logs of blocks committed since
it was installed or last polled; eth_getFilterLogs answers its whole range like eth_getLogs.

A subscription pushes `eth_subscription` notifications into its connection's queue; a client
that lets `max_queue` of them pile up is disconnected rather than buffered without bound.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rollup.errors import InvalidParams, LimitExceeded
from rollup.types import Block, Transaction
from sequencer.node import Sequencer
from services.rpc.codec import data
from services.rpc.methods import block_logs, filter_logs, log_filter
from services.rpc.render import block_json, tx_json

__all__ = ["FilterRegistry", "Subscriptions", "SlowConsumer", "head_json"]

LOGS, BLOCKS, PENDING = "logs", "blocks", "pending"


def _new_id() -> str:
    return data(secrets.token_bytes(16))


def head_json(block: Block) -> dict[str, Any]:
    """A newHeads notification: the block's header fields, without its transactions."""
    out = block_json(block, False)
    del out["transactions"]
    return out


def _in_range(flt: dict[str, Any], number: int) -> bool:
    if flt["block_hash"] is not None:
        return False
    low = flt["from"] if isinstance(flt["from"], int) else 0
    high = flt["to"] if isinstance(flt["to"], int) else None
    return number >= low and (high is None or number <= high)


@dataclass
class _Filter:
    kind: str
    criteria: dict[str, Any] | None
    polled: float
    items: deque[Any] = field(default_factory=deque)


class FilterRegistry:
    def __init__(
        self, node: Sequencer, timeout: float = 300.0, max_filters: int = 10_000,
        max_items: int = 10_000, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.node, self.timeout, self.clock = node, timeout, clock
        self.max_filters, self.max_items = max_filters, max_items
        self._filters: dict[str, _Filter] = {}
        node.on_commit.append(self._on_block)
        node.on_pending.append(self._on_pending)

    # ---- the methods ----

    def new_filter(self, criteria: dict[str, Any]) -> str:
        return self._install(_Filter(LOGS, criteria, self.clock()))

    def new_block_filter(self) -> str:
        return self._install(_Filter(BLOCKS, None, self.clock()))

    def new_pending_filter(self) -> str:
        return self._install(_Filter(PENDING, None, self.clock()))

    def changes(self, filter_id: str) -> list[Any]:
        flt = self._get(filter_id)
        flt.polled = self.clock()
        items = list(flt.items)
        flt.items.clear()
        return items

    def logs(self, filter_id: str) -> list[dict[str, Any]]:
        flt = self._get(filter_id)
        if flt.kind != LOGS or flt.criteria is None:
            raise InvalidParams("filter not found")  # geth's words for a non-log filter
        flt.polled = self.clock()
        return filter_logs(self.node, flt.criteria)

    def uninstall(self, filter_id: str) -> bool:
        return self._filters.pop(filter_id, None) is not None

    def __len__(self) -> int:
        return len(self._filters)

    # ---- bookkeeping ----

    def _install(self, flt: _Filter) -> str:
        self._expire()
        if len(self._filters) >= self.max_filters:
            raise LimitExceeded(f"too many filters: at most {self.max_filters}")
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

    def _push(self, flt: _Filter, items: list[Any]) -> None:
        flt.items.extend(items)
        while len(flt.items) > self.max_items:
            flt.items.popleft()

    def _on_block(self, block: Block) -> None:
        for flt in self._filters.values():
            if flt.kind == BLOCKS:
                self._push(flt, [data(block.hash)])
            elif flt.criteria is not None and _in_range(flt.criteria, block.header.number):
                self._push(flt, block_logs(block, flt.criteria))

    def _on_pending(self, tx: Transaction) -> None:
        for flt in self._filters.values():
            if flt.kind == PENDING:
                self._push(flt, [data(tx.hash)])


class SlowConsumer(Exception):
    """A subscriber's queue is full: the connection is closed."""


class Subscriptions:
    """One WebSocket connection's subscriptions, queued as ready-to-send messages."""

    KINDS = ("newHeads", "logs", "newPendingTransactions")

    def __init__(self, node: Sequencer, max_subscriptions: int = 1_000, max_queue: int = 20_000):
        self.node = node
        self.max_subscriptions = max_subscriptions
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(max_queue)
        self._subs: dict[str, tuple[str, Any]] = {}
        self.overflowed = False
        node.on_commit.append(self._on_block)
        node.on_pending.append(self._on_pending)

    def close(self) -> None:
        self._subs.clear()
        if self._on_block in self.node.on_commit:
            self.node.on_commit.remove(self._on_block)
        if self._on_pending in self.node.on_pending:
            self.node.on_pending.remove(self._on_pending)

    def subscribe(self, params: list[Any]) -> str:
        if not params or params[0] not in self.KINDS:
            raise InvalidParams(f"unsupported subscription: want one of {', '.join(self.KINDS)}")
        if len(self._subs) >= self.max_subscriptions:
            raise LimitExceeded(f"too many subscriptions: at most {self.max_subscriptions}")
        kind = params[0]
        if kind == "logs":
            option: Any = log_filter(params[1] if len(params) > 1 else {})
            if option["block_hash"] is not None:
                raise InvalidParams("a logs subscription cannot name a blockHash")
        elif kind == "newPendingTransactions":
            option = bool(params[1]) if len(params) > 1 else False  # True: whole transactions
        elif len(params) > 1:
            raise InvalidParams("newHeads takes no options")
        else:
            option = None
        sub_id = _new_id()
        self._subs[sub_id] = (kind, option)
        return sub_id

    def unsubscribe(self, params: list[Any]) -> bool:
        if len(params) != 1 or not isinstance(params[0], str):
            raise InvalidParams("eth_unsubscribe takes one subscription id")
        return self._subs.pop(params[0], None) is not None

    def _send(self, sub_id: str, result: Any) -> None:
        message = {"jsonrpc": "2.0", "method": "eth_subscription",
                   "params": {"subscription": sub_id, "result": result}}  # fmt: skip
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed = True
            self.close()

    def _on_block(self, block: Block) -> None:
        for sub_id, (kind, option) in list(self._subs.items()):
            if kind == "newHeads":
                self._send(sub_id, head_json(block))
            elif kind == "logs" and _in_range(option, block.header.number):
                for entry in block_logs(block, option):
                    self._send(sub_id, entry)

    def _on_pending(self, tx: Transaction) -> None:
        for sub_id, (kind, option) in list(self._subs.items()):
            if kind == "newPendingTransactions":
                self._send(sub_id, tx_json(tx, None, -1) if option else data(tx.hash))
