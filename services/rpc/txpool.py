"""The txpool_ namespace, as geth answers it: what the pool holds, executable ("pending") and
waiting behind a nonce gap ("queued").

    txpool_status              {"pending": count, "queued": count}
    txpool_content             {"pending": {address: {nonce: tx}}, "queued": {...}}
    txpool_contentFrom(addr)   {"pending": {nonce: tx}, "queued": {nonce: tx}}
    txpool_inspect             like content, each tx summarised as geth does in one line

The pool holds up to 200,000 transactions; a full listing of that many would hold the event
loop for seconds, so content and inspect answer at most `MAX_LISTED` transactions and refuse
beyond (LimitExceeded): txpool_status and txpool_contentFrom stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rollup.errors import LimitExceeded
from rollup.types import Transaction
from sequencer.node import Sequencer
from services.rpc import codec
from services.rpc.codec import quantity
from services.rpc.registry import Method, method
from services.rpc.render import tx_json

__all__ = ["MAX_LISTED", "METHODS"]

MAX_LISTED = 4_096


def status(node: Sequencer) -> dict[str, str]:
    pool = node.mempool
    return {"pending": quantity(pool.ready_count), "queued": quantity(pool.queued_count)}


def _by_nonce(txs: list[Transaction], render: Callable[[Transaction], Any]) -> dict[str, Any]:
    return {str(tx.nonce): render(tx) for tx in txs}


def _listing(node: Sequencer, render: Callable[[Transaction], Any]) -> dict[str, Any]:
    pool = node.mempool
    if len(pool) > MAX_LISTED:
        raise LimitExceeded(
            f"the pool holds {len(pool)} transactions; this lists at most {MAX_LISTED}: "
            "use txpool_status or txpool_contentFrom"
        )
    pending: dict[str, Any] = {}
    queued: dict[str, Any] = {}
    for sender in pool.senders():
        ready, waiting = pool.of_sender(sender)
        address = codec.data(sender)
        if ready:
            pending[address] = _by_nonce(ready, render)
        if waiting:
            queued[address] = _by_nonce(waiting, render)
    return {"pending": pending, "queued": queued}


def _unmined(tx: Transaction) -> dict[str, Any]:
    return tx_json(tx, None, 0)


def summary(tx: Transaction) -> str:
    """geth's one line: `0xTO: VALUE wei + GAS gas × PRICE wei`."""
    to = codec.data(tx.to) if tx.to is not None else "contract creation"
    return f"{to}: {tx.value} wei + {tx.gas} gas × {tx.max_fee} wei"


def content(node: Sequencer) -> dict[str, Any]:
    return _listing(node, _unmined)


def inspect(node: Sequencer) -> dict[str, Any]:
    return _listing(node, summary)


def content_from(node: Sequencer, address: bytes) -> dict[str, Any]:
    ready, waiting = node.mempool.of_sender(address)
    return {"pending": _by_nonce(ready, _unmined), "queued": _by_nonce(waiting, _unmined)}


METHODS: dict[str, Method] = {
    "txpool_status": method(status),
    "txpool_content": method(content),
    "txpool_contentFrom": method(content_from, codec.parse_address),
    "txpool_inspect": method(inspect),
}
