"""JSON-RPC methods of the cross-app message bus (its `METHODS`).

    rollup_getBlockMessages(block) -> {"blockNumber", "blockHash", "messagesRoot",
        "inbound": [message + {"receipt": {status, gasUsed, returnData, logs}}, ...],
        "outbound": [message, ...]}

A message renders as {id, kind: "call"|"result", srcChain, srcBlock, srcIndex, nonce,
dstChain, sender, target, value, gas, expiry, reply, data, refId, success}. Logs of inbound
execution (the destination's call, the source's callback) are here, in the receipts of the
block's inbound messages; eth_getLogs serves transaction logs only.
"""

from __future__ import annotations

from typing import Any

from rollup.messages import CrossMessage
from rollup.types import Log, Receipt
from sequencer.node import Sequencer
from services.rpc.codec import data, quantity
from services.rpc.params import BlockTag, block_tag, resolve_block
from services.rpc.registry import Method, method

__all__ = ["METHODS", "message_json"]


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


METHODS: dict[str, Method] = {
    "rollup_getBlockMessages": method(get_block_messages, block_tag),
}
