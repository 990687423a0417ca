"""The cross-app message bus of one app, from its node and its peers' nodes.

GET /v1/apps/{name}/bus/channels: per peer chain (every other app of the devnet, and any
chain the app's outbox heard from), what the app sent, what the peer acknowledged, what the
peer's own chain says it executed (asked of the peer's node; null when it does not answer),
the backlog (sent and not executed) and the peer's messages this app executed
(rollup_getBusChannels); the median round trip over all channels, from the node's
rollup_bus_round_trip_seconds histogram (the node does not time channels apart).

GET /v1/apps/{name}/bus/messages/{id}: a message by id (rollup_getMessage), asked of the
app's node and of the node at the message's other end: the block that sent it, whether its
destination acknowledged it, the block that executed (or expired) it with its receipt, and
the result answering a call, where each side has it. 404 when the app's node has no such
message in the blocks it searches (its newest 10,000 when first asked, then every new one).
"""

from __future__ import annotations

import contextlib
import math
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path
from prometheus_client.parser import text_string_to_metric_families

from services.admin.apps import AppName
from services.admin.auth import require_reader
from services.admin.errors import AdminError, NotFound
from services.admin.explorer import NodesDep
from services.admin.fleet import NODE_TIMEOUT, Nodes, call_node
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.admin.views import (
    BusChannel,
    BusChannels,
    MessageBlock,
    MessageExecution,
    MessageResult,
    MessageView,
)
from services.devnet.state import AppRecord

__all__ = ["median_bound", "router"]

ROUND_TRIP = "rollup_bus_round_trip_seconds"

router = APIRouter(
    prefix="/v1/apps",
    tags=["bus"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
)
MessageId = Annotated[
    str, Path(pattern=r"^0x[0-9a-fA-F]{64}$", description="the message's id (0x + 64 hex)")
]


# ---- channels ----


@router.get("/{name}/bus/channels", summary="Per peer chain: sent, acknowledged, executed")
def get_channels(nodes: NodesDep, name: AppName) -> BusChannels:
    record = nodes.record(name)
    others = {a["chain_id"]: a for a in _apps(nodes) if a["name"] != name}
    mine = call_node(record, "rollup_getBusChannels", [hex(c) for c in sorted(others)])
    chain_id = _int(mine["chainId"])
    channels = [_channel(c, others.get(_int(c["peer"])), chain_id) for c in mine["channels"]]
    return BusChannels(
        name=name,
        chain_id=chain_id,
        inbox=_int(mine["inbox"]),
        round_trip_p50_seconds=_round_trip_p50(record),
        channels=channels,
    )


def _channel(channel: dict[str, Any], peer: AppRecord | None, chain_id: int) -> BusChannel:
    sent, acknowledged = _int(channel["sent"]), _int(channel["acknowledged"])
    executed = _executed_by(peer, chain_id)
    done = executed if executed is not None else acknowledged
    return BusChannel(
        peer_chain=_int(channel["peer"]),
        peer_app=None if peer is None else peer["name"],
        sent=sent,
        acknowledged=acknowledged,
        executed=executed,
        backlog=max(sent - done, 0),
        inbound_executed=_int(channel["executed"]),
    )


def _executed_by(peer: AppRecord | None, chain_id: int) -> int | None:
    """How many of `chain_id`'s messages the peer's chain executed, by its node."""
    if peer is None or peer.get("stopped"):
        return None
    with contextlib.suppress(AdminError, KeyError, TypeError, ValueError):
        theirs = call_node(peer, "rollup_getBusChannels", [hex(chain_id)])
        for channel in theirs["channels"]:
            if _int(channel["peer"]) == chain_id:
                return _int(channel["executed"])
    return None


def _round_trip_p50(record: AppRecord) -> float | None:
    if record.get("stopped"):
        return None
    url = httpx.URL(record["rpc_url"]).copy_with(path="/metrics", query=None)
    try:
        text = httpx.get(url, timeout=NODE_TIMEOUT, trust_env=False).text
    except httpx.HTTPError:
        return None
    return median_bound(_buckets(text))


def _buckets(text: str) -> list[tuple[float, float]]:
    found: list[tuple[float, float]] = []
    with contextlib.suppress(ValueError):
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == ROUND_TRIP + "_bucket":
                    found.append((float(sample.labels["le"]), float(sample.value)))
    return found


def median_bound(buckets: list[tuple[float, float]]) -> float | None:
    """The upper bound of the bucket holding the median of a cumulative histogram (the
    largest finite bound when the median lies beyond it); None when it counted nothing."""
    ordered = sorted(buckets)
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    finite = [bound for bound, _ in ordered if not math.isinf(bound)]
    for bound, cumulative in ordered:
        if cumulative >= total / 2:
            return bound if not math.isinf(bound) else (finite[-1] if finite else None)
    return None


# ---- one message ----


@router.get("/{name}/bus/messages/{message_id}", summary="A message by id, from both ends")
def get_message(nodes: NodesDep, name: AppName, message_id: MessageId) -> MessageView:
    record = nodes.record(name)
    message_id = message_id.lower()
    here = call_node(record, "rollup_getMessage", message_id)
    if here is None:
        raise NotFound(f"{name} has no message {message_id} in the blocks it searches")
    by_chain = {a["chain_id"]: a for a in _apps(nodes)}
    m = here["message"]
    src, dst = _int(m["srcChain"]), _int(m["dstChain"])
    there = _ask(by_chain.get(dst if src == record["chain_id"] else src), message_id)
    at_src, at_dst = (here, there) if src == record["chain_id"] else (there, here)
    return _view(m, at_src, at_dst, by_chain)


def _ask(peer: AppRecord | None, message_id: str) -> dict[str, Any] | None:
    if peer is None or peer.get("stopped"):
        return None
    with contextlib.suppress(AdminError):
        found: dict[str, Any] | None = call_node(peer, "rollup_getMessage", message_id)
        return found
    return None


def _view(
    m: dict[str, Any],
    at_src: dict[str, Any] | None,
    at_dst: dict[str, Any] | None,
    by_chain: dict[int, AppRecord],
) -> MessageView:
    src, dst = _int(m["srcChain"]), _int(m["dstChain"])
    sent = _block(at_src and at_src.get("sent"), src, by_chain)
    executed = _execution(at_dst and at_dst.get("executed"), dst, by_chain)
    acknowledged = at_src.get("acknowledged") if at_src else None
    is_call = m["kind"] == "call"
    return MessageView(
        id=m["id"],
        kind=m["kind"],
        status=_status(executed, acknowledged),
        src_chain=src,
        src_app=_name(by_chain, src),
        dst_chain=dst,
        dst_app=_name(by_chain, dst),
        nonce=_int(m["nonce"]),
        sender=m["sender"],
        target=m["target"],
        value=_int(m["value"]) if is_call else None,
        expiry=_int(m["expiry"]) if is_call else None,
        sent=sent,
        acknowledged=acknowledged,
        executed=executed,
        result=_result(at_src, at_dst, src, dst, by_chain) if is_call else None,
    )


def _status(executed: MessageExecution | None, acknowledged: bool | None) -> Any:
    if executed is not None:
        return "expired" if executed.expired else "executed" if executed.succeeded else "failed"
    return "delivered" if acknowledged else "sent"


def _result(
    at_src: dict[str, Any] | None,
    at_dst: dict[str, Any] | None,
    src: int,
    dst: int,
    by_chain: dict[int, AppRecord],
) -> MessageResult | None:
    """The reply: sent by the destination (its answer's result), run by the source."""
    sent_side = (at_dst or {}).get("result")
    run_side = (at_src or {}).get("result")
    reply = (sent_side or run_side or {}).get("message")
    if reply is None:
        return None
    return MessageResult(
        id=reply["id"],
        success=bool(reply["success"]),
        data=reply["data"],
        sent=_block(sent_side and sent_side.get("sent"), dst, by_chain),
        executed=_execution(run_side and run_side.get("executed"), src, by_chain),
    )


def _block(at: Any, chain: int, by_chain: dict[int, AppRecord]) -> MessageBlock | None:
    if not at:
        return None
    return MessageBlock(
        chain_id=chain,
        app=_name(by_chain, chain),
        block_number=_int(at["blockNumber"]),
        block_hash=at["blockHash"],
    )


def _execution(at: Any, chain: int, by_chain: dict[int, AppRecord]) -> MessageExecution | None:
    if not at:
        return None
    receipt = at["receipt"]
    return MessageExecution(
        chain_id=chain,
        app=_name(by_chain, chain),
        block_number=_int(at["blockNumber"]),
        block_hash=at["blockHash"],
        succeeded=receipt["status"] == "0x1",
        expired=bool(at["expired"]),
        gas_used=_int(receipt["gasUsed"]),
        return_data=receipt["returnData"],
    )


# ---- shared ----


def _apps(nodes: Nodes) -> list[AppRecord]:
    devnet = nodes.devnet()
    return [] if devnet is None else list(devnet["apps"])


def _name(by_chain: dict[int, AppRecord], chain: int) -> str | None:
    record = by_chain.get(chain)
    return None if record is None else record["name"]


def _int(quantity: Any) -> int:
    return int(quantity, 16) if isinstance(quantity, str) else int(quantity)
