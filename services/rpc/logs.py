"""Finding logs: eth_getLogs, log filters' polls and logs subscriptions share these.

Blooms first: a range is scanned by headers only, and a block's body is read only when its
bloom may match. A block's logs are numbered as its receipts show them: its transactions'
logs, then those of the cross-app messages it executed (named by message id).
"""

from __future__ import annotations

from typing import Any

from rollup.blocks import block_entries, block_entry_receipts
from rollup.bloom import bloom_contains
from rollup.errors import InvalidParams, LimitExceeded
from rollup.types import Block, Log
from sequencer.node import Sequencer
from services.rpc.params import LogFilter, resolve_block
from services.rpc.render import log_json

__all__ = ["filter_logs", "block_logs", "log_matches", "MAX_LOG_BLOCK_RANGE", "MAX_LOG_RESULTS"]

MAX_LOG_BLOCK_RANGE = 10_000
MAX_LOG_RESULTS = 10_000
_HEADER_CHUNK = 1_000


def log_matches(log: Log, flt: LogFilter) -> bool:
    if flt.addresses and log.address not in flt.addresses:
        return False
    if len(flt.topics) > len(log.topics):
        return False
    return all(wanted is None or log.topics[i] in wanted for i, wanted in enumerate(flt.topics))


def _bloom_may_match(bloom: bytes, flt: LogFilter) -> bool:
    if flt.addresses and not any(bloom_contains(bloom, a) for a in flt.addresses):
        return False
    return all(
        wanted is None or any(bloom_contains(bloom, t) for t in wanted) for wanted in flt.topics
    )


def filter_logs(node: Sequencer, flt: LogFilter) -> list[dict[str, Any]]:
    """eth_getLogs: blooms first (headers only), bodies only of the blocks that may match."""
    if flt.block_hash is not None:
        block = node.block_by_hash(flt.block_hash)
        if block is None:
            raise InvalidParams("unknown block")
        return block_logs(block, flt)
    start, end = _log_range(node, flt)
    out: list[dict[str, Any]] = []
    for chunk in range(start, end + 1, _HEADER_CHUNK):
        for header in node.headers(chunk, min(chunk + _HEADER_CHUNK, end + 1)):
            if not _bloom_may_match(header.logs_bloom, flt):
                continue
            block = node.block(header.number)
            if block is not None:
                out.extend(block_logs(block, flt))
            if len(out) > MAX_LOG_RESULTS:
                raise LimitExceeded(f"query returned more than {MAX_LOG_RESULTS} results")
    return out


def _log_range(node: Sequencer, flt: LogFilter) -> tuple[int, int]:
    """(first, last) block of a filter's range; empty (1, 0) past the head."""
    head = node.committed.number
    low, high = flt.from_block, flt.to_block
    start = low if isinstance(low, int) else resolve_block(node, low)
    end = min(high, head) if isinstance(high, int) else resolve_block(node, high)
    if start > end:
        if isinstance(low, int) and low > head:
            return 1, 0
        raise InvalidParams("invalid block range params")
    if end - start + 1 > MAX_LOG_BLOCK_RANGE:
        raise LimitExceeded(f"block range too large: at most {MAX_LOG_BLOCK_RANGE} blocks")
    return start, end


def block_logs(block: Block, flt: LogFilter) -> list[dict[str, Any]]:
    """The logs of `block` that match a parsed filter's addresses and topics, rendered."""
    if not _bloom_may_match(block.header.logs_bloom, flt):
        return []
    out: list[dict[str, Any]] = []
    log_index = 0
    for tx_index, receipt in enumerate(block_entry_receipts(block)):
        for log in receipt.logs:
            if log_matches(log, flt):
                out.append(log_json(log, block, tx_index, log_index))
            log_index += 1
    first = len(block_entries(block))
    for position, (message, receipt) in enumerate(
        zip(block.inbound, block.inbound_receipts, strict=True)
    ):
        for log in receipt.logs:
            if log_matches(log, flt):
                out.append(log_json(log, block, first + position, log_index, message.id))
            log_index += 1
    return out
