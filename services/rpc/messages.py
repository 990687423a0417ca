"""JSON-RPC methods of the cross-app message bus (its `METHODS`).

    rollup_getBlockMessages(block) -> {"blockNumber", "blockHash", "messagesRoot",
        "inbound": [message + {"receipt": {status, gasUsed, returnData, logs}}, ...],
        "outbound": [message, ...]}

A message renders as {id, kind: "call"|"result", srcChain, srcBlock, srcIndex, nonce,
dstChain, sender, target, value, gas, expiry, reply, data, refId, success}. Logs of inbound
execution (the destination's call, the source's callback) are here, in the receipts of the
block's inbound messages; eth_getLogs serves transaction logs only.

    rollup_getMessage(id) -> null | {"message", "searchedFrom",
        "sent": {blockNumber, blockHash} | null        this chain sent it (in that block),
        "acknowledged": bool | null                    ... and its destination reported
                                                       executing it (the outbox's acks, saved
                                                       about once a second)
        "executed": {blockNumber, blockHash, receipt, expired} | null   this chain consumed it
        "result": {"message", "sent", "executed"} | null}  the result message answering it,
                                                       as this chain has it
    A chain has each message on one side only (a chain never messages itself): ask the source
    chain for the send and the destination's for the execution. The node searches its newest
    MESSAGE_SCAN_BLOCKS blocks the first time it is asked, then each newly committed block
    once (an index in memory of at most MESSAGES_KEPT ids): "searchedFrom" is the oldest
    block searched. A worker thread.

    rollup_getBusChannels([peer chain ids]) -> {"chainId", "inbox", "channels": [{"peer",
        "sent", "acknowledged", "executed"}, ...]}: per peer chain, the messages this chain
        sent it (its channel nonce), how many of them the peer acknowledged executing (the
        outbox's saved acks) and how many of the peer's this chain executed; the peers named
        and every peer the outbox has heard from. "inbox": messages received, not yet in a
        block.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Literal

from rollup.errors import InvalidParams
from rollup.messages import MAX_CHAIN_ID, CrossMessage
from rollup.types import Block, Log, Receipt
from sequencer.node import Sequencer
from sequencer.outbox import Outbox
from services.rpc.codec import data, parse_hash, parse_quantity, quantity
from services.rpc.params import BlockTag, block_tag, resolve_block
from services.rpc.registry import Method, method
from vm.bus import error_data, inbound_progress, next_send_nonce

__all__ = ["METHODS", "MessageIndex", "message_json"]

MESSAGE_SCAN_BLOCKS = 10_000  # blocks searched back from the head when first asked
MESSAGES_KEPT = 200_000  # ids the index holds (the oldest go first): ~40 MB at most
MAX_PEERS = 256


def message_json(m: CrossMessage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": data(m.id),
        "kind": "call" if m.is_call else "result",
        "srcChain": quantity(m.src_chain),
        "srcBlock": quantity(m.src_block),
        "srcIndex": quantity(m.src_index),
        "nonce": quantity(m.channel_nonce),
        "dstChain": quantity(m.dst_chain),
        "sender": data(m.sender),
        "target": data(m.target),
        "data": data(m.data),
    }
    if m.is_call:
        out |= {
            "value": quantity(m.value),
            "gas": quantity(m.gas),
            "expiry": quantity(m.expiry),
            "reply": m.reply,
        }
    else:
        out |= {"refId": data(m.ref_id), "success": m.success}
    return out


def _log_json(log: Log) -> dict[str, Any]:
    return {
        "address": data(log.address),
        "topics": [data(t) for t in log.topics],
        "data": data(log.data),
    }


def _receipt_json(receipt: Receipt) -> dict[str, Any]:
    return {
        "status": "0x1" if receipt.status == 1 else "0x0",
        "gasUsed": quantity(receipt.gas_used),
        "returnData": data(receipt.return_data),
        "logs": [_log_json(log) for log in receipt.logs],
    }


def get_block_messages(node: Sequencer, tag: BlockTag) -> dict[str, Any] | None:
    block = node.block(resolve_block(node, tag))
    if block is None:
        return None
    inbound = [
        message_json(m) | {"receipt": _receipt_json(r)}
        for m, r in zip(block.inbound, block.inbound_receipts, strict=True)
    ]
    return {
        "blockNumber": quantity(block.header.number),
        "blockHash": data(block.hash),
        "messagesRoot": data(block.header.messages_root),
        "inbound": inbound,
        "outbound": [message_json(m) for m in block.outbound],
    }


# ---- a message by id ----

Side = Literal["outbound", "inbound"]
Where = tuple[int, Side, int]  # (block, side, position in that side's list)


class MessageIndex:
    """Where this chain's blocks hold each message (by id) and each result (by the id it
    answers), for the newest blocks: filled from the blocks as they are committed, when
    asked. Used from one worker thread at a time; the lock keeps that true anyway."""

    def __init__(self, scan_blocks: int = MESSAGE_SCAN_BLOCKS, kept: int = MESSAGES_KEPT) -> None:
        self.scan_blocks, self.kept = scan_blocks, kept
        self.since = 1  # the oldest block indexed
        self.upto = 0  # the newest block indexed
        self.ids: OrderedDict[bytes, Where] = OrderedDict()
        self.results: OrderedDict[bytes, Where] = OrderedDict()  # by the call's id
        self.lock = threading.Lock()

    def find(self, node: Sequencer, message_id: bytes) -> tuple[Where | None, Where | None]:
        """(where the message is, where the result answering it is) in the blocks indexed."""
        with self.lock:
            self._catch_up(node)
            return self.ids.get(message_id), self.results.get(message_id)

    def _catch_up(self, node: Sequencer) -> None:
        head = node.committed.number
        start = max(self.upto + 1, head - self.scan_blocks + 1, 1)
        if start > self.upto + 1:  # too far behind: older blocks are not searched
            self.since = start
        for number in range(start, head + 1):
            block = node.block(number)
            if block is not None:
                self._add(block)
            self.upto = number  # progress stands even if the caller gave up waiting

    def _add(self, block: Block) -> None:
        number = block.header.number
        for side, messages in (("outbound", block.outbound), ("inbound", block.inbound)):
            for position, m in enumerate(messages):
                where: Where = (number, side, position)  # type: ignore[assignment]
                self._keep(self.ids, m.id, where)
                if not m.is_call:
                    self._keep(self.results, m.ref_id, where)

    def _keep(self, table: OrderedDict[bytes, Where], key: bytes, where: Where) -> None:
        table[key] = where
        if len(table) > self.kept:
            table.popitem(last=False)
            self.since = max(self.since, where[0])  # conservative: older ids may be gone


_INDEXES: weakref.WeakKeyDictionary[Sequencer, MessageIndex] = weakref.WeakKeyDictionary()
_INDEXES_LOCK = threading.Lock()


def _index_of(node: Sequencer) -> MessageIndex:
    with _INDEXES_LOCK:
        index = _INDEXES.get(node)
        if index is None:
            index = _INDEXES[node] = MessageIndex()
        return index


def get_message(node: Sequencer, message_id: bytes) -> dict[str, Any] | None:
    index = _index_of(node)
    found, result = index.find(node, message_id)
    if found is None:
        return None
    message, side = _at(node, found)
    answer: dict[str, Any] = {"message": message_json(message), "searchedFrom": index.since}
    answer |= _sides(node, found, side)
    answer["acknowledged"] = _acknowledged(node, message) if side == "outbound" else None
    answer["result"] = None
    if result is not None:
        reply, reply_side = _at(node, result)
        answer["result"] = {"message": message_json(reply)} | _sides(node, result, reply_side)
    return answer


def _at(node: Sequencer, where: Where) -> tuple[CrossMessage, Side]:
    number, side, position = where
    block = node.block(number)
    assert block is not None  # indexed from a committed block
    messages = block.outbound if side == "outbound" else block.inbound
    return messages[position], side


def _sides(node: Sequencer, where: Where, side: Side) -> dict[str, Any]:
    number, _, position = where
    block = node.block(number)
    assert block is not None
    at = {"blockNumber": quantity(number), "blockHash": data(block.hash)}
    if side == "outbound":
        return {"sent": at, "executed": None}
    message, receipt = block.inbound[position], block.inbound_receipts[position]
    expired = message.is_call and receipt.return_data == error_data(
        "MessageExpired(bytes32)", message.id
    )
    return {"sent": None, "executed": at | {"receipt": _receipt_json(receipt), "expired": expired}}


def _acknowledged(node: Sequencer, message: CrossMessage) -> bool:
    acked = Outbox(node.store.engine).acked().get(message.dst_chain, 0)
    return acked > message.channel_nonce


# ---- channels ----


def parse_peers(value: Any) -> list[int]:
    if not isinstance(value, list) or len(value) > MAX_PEERS:
        raise InvalidParams(f"invalid argument 0: a list of at most {MAX_PEERS} chain ids")
    peers = [parse_quantity(item, "chain id") for item in value]
    if any(not 1 <= peer <= MAX_CHAIN_ID for peer in peers):
        raise InvalidParams("invalid argument 0: a chain id out of range")
    return peers


def bus_channels(node: Sequencer, peers: list[int] | None = None) -> dict[str, Any]:
    state = node.state_at(node.committed.number)
    acked = Outbox(node.store.engine).acked()
    known = sorted({*(peers or []), *acked} - {node.chain_id})
    channels = [
        {
            "peer": quantity(peer),
            "sent": quantity(next_send_nonce(state, peer)),
            "acknowledged": quantity(acked.get(peer, 0)),
            "executed": quantity(inbound_progress(state, peer)),
        }
        for peer in known
    ]
    return {
        "chainId": quantity(node.chain_id),
        "inbox": quantity(len(node.inbox)),
        "channels": channels,
    }


METHODS: dict[str, Method] = {
    "rollup_getBlockMessages": method(get_block_messages, block_tag),
    "rollup_getMessage": method(get_message, parse_hash, runs="thread"),
    "rollup_getBusChannels": method(bus_channels, parse_peers, required=0),
}
