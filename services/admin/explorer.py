"""A small explorer of each app, read from its node's JSON-RPC: the pool (and dropping a
transaction from it, through the node's admin_dropTransaction), the newest blocks and a
transaction by hash with its receipt.

The pool is listed from txpool_content, which a node refuses beyond 4,096 transactions (a
listing of a full pool would hold its event loop): then the listing is a 409 problem that
names `?sender=`, which lists one sender's transactions (txpool_contentFrom) at any size.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from rollup.errors import LimitExceeded, rpc_code
from services.admin.apps import AppName, record_action
from services.admin.auth import require_admin, require_reader
from services.admin.errors import BadRequest, Conflict, NotFound
from services.admin.fleet import NODE_REFUSALS, Nodes, call_node
from services.admin.idempotency import IdempotentRoute
from services.admin.models import (
    BlockSummary,
    BlockView,
    DroppedView,
    Page,
    PooledTransaction,
    ReceiptView,
    TransactionView,
)
from services.admin.pagination import Cursor, Limit, decode_cursor, encode_cursor, paginate
from services.admin.problems import PROBLEM_RESPONSES
from services.admin.query import plain_query
from services.devnet.state import AppRecord

__all__ = ["NodesDep", "PoolTooLarge", "nodes_of", "router"]

HASH = r"^0x[0-9a-fA-F]{64}$"

router = APIRouter(
    prefix="/v1/apps",
    tags=["explorer"],
    dependencies=[Depends(require_reader), Depends(plain_query)],
    responses=PROBLEM_RESPONSES,
    route_class=IdempotentRoute,
)
TxHash = Annotated[str, Path(pattern=HASH, description="the transaction's hash (0x + 64 hex)")]
Sender = Annotated[
    str | None,
    Query(pattern=r"^0x[0-9a-fA-F]{40}$", description="only this sender's transactions"),
]


def nodes_of(request: Request) -> Nodes:
    nodes: Nodes = request.app.state.nodes
    return nodes


NodesDep = Annotated[Nodes, Depends(nodes_of)]


class PoolTooLarge(Conflict):
    """The pool holds more than a node lists at once: ask for one sender's transactions."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}; list one sender's with ?sender=0x...")


# txpool_content beyond its bound (LimitExceeded, -32005): 409, name ?sender=
POOL_REFUSALS = {**NODE_REFUSALS, rpc_code(LimitExceeded("")): PoolTooLarge}


# ---- the pool ----


@router.get("/{name}/mempool", summary="The pool: pending and queued transactions")
def list_mempool(
    nodes: NodesDep, name: AppName, limit: Limit = 50, cursor: Cursor = None, sender: Sender = None
) -> Page[PooledTransaction]:
    pooled = _pooled(nodes.record(name), sender)
    page, next_cursor = paginate(pooled, _pool_key, cursor, limit)
    return Page[PooledTransaction](items=page, next_cursor=next_cursor)


@router.delete(
    "/{name}/mempool/{tx_hash}",
    summary="Drop a pooled transaction and its sender's later nonces (their senders are told)",
    dependencies=[Depends(require_admin)],
)
def drop_transaction(
    request: Request, nodes: NodesDep, name: AppName, tx_hash: TxHash
) -> DroppedView:
    found = call_node(nodes.record(name), "admin_dropTransaction", nodes.token, tx_hash.lower())
    record_action(request, name, "drop")
    return DroppedView(name=name, dropped=[str(h) for h in found["dropped"]])


def _pooled(record: AppRecord, sender: str | None) -> list[PooledTransaction]:
    """Every pooled transaction (of `sender` only, if given)."""
    if sender is not None:
        content = call_node(record, "txpool_contentFrom", sender)
        return _listed(content, lambda txs: [txs])
    content = call_node(record, "txpool_content", refusals=POOL_REFUSALS)
    return _listed(content, lambda by_sender: list(by_sender.values()))


def _listed(content: dict[str, Any], groups: Any) -> list[PooledTransaction]:
    return [
        _pooled_view(tx, status)
        for status in ("pending", "queued")
        for by_nonce in groups(content[status])
        for tx in by_nonce.values()
    ]


def _pooled_view(tx: dict[str, Any], status: str) -> PooledTransaction:
    fee = tx.get("maxFeePerGas", tx.get("gasPrice", "0x0"))
    return PooledTransaction(
        hash=tx["hash"],
        sender=tx["from"],
        nonce=_int(tx["nonce"]),
        status="queued" if status == "queued" else "pending",
        to=tx.get("to"),
        value=_int(tx["value"]),
        gas=_int(tx["gas"]),
        max_fee_per_gas=_int(fee),
        max_priority_fee_per_gas=_int(tx.get("maxPriorityFeePerGas", fee)),
    )


def _pool_key(tx: PooledTransaction) -> str:
    return f"{tx.sender.lower()}:{tx.nonce:020d}"


# ---- blocks ----


@router.get("/{name}/blocks", summary="The newest blocks, newest first")
def list_blocks(
    nodes: NodesDep, name: AppName, limit: Limit = 20, cursor: Cursor = None
) -> Page[BlockSummary]:
    record = nodes.record(name)
    top = _int(call_node(record, "eth_blockNumber")) if cursor is None else _below(cursor)
    numbers = list(range(top, max(top - limit, -1), -1))
    blocks = [_block(record, number) for number in numbers]
    summaries = [_summary(block) for block in blocks if block is not None]
    last = numbers[-1] if numbers else 0
    return Page[BlockSummary](
        items=summaries, next_cursor=encode_cursor(str(last)) if last > 0 else None
    )


@router.get("/{name}/blocks/{number}", summary="One block and its transactions' hashes")
def get_block(
    nodes: NodesDep, name: AppName, number: Annotated[int, Path(ge=0, le=2**63 - 1)]
) -> BlockView:
    block = _block(nodes.record(name), number)
    if block is None:
        raise NotFound(f"{name} has no block {number} yet")
    return BlockView(**_summary(block).model_dump(), transactions=block["transactions"])


def _below(cursor: str) -> int:
    """The block after a cursor: the one below the last served."""
    key = decode_cursor(cursor)
    if not key.isdigit() or len(key) > 19:
        raise BadRequest("not a cursor of this list: pass the previous page's next_cursor")
    return int(key) - 1


def _block(record: AppRecord, number: int) -> dict[str, Any] | None:
    block: dict[str, Any] | None = call_node(record, "eth_getBlockByNumber", hex(number), False)
    return block


def _summary(block: dict[str, Any]) -> BlockSummary:
    return BlockSummary(
        number=_int(block["number"]),
        hash=block["hash"],
        parent_hash=block["parentHash"],
        timestamp=_int(block["timestamp"]),
        gas_used=_int(block["gasUsed"]),
        gas_limit=_int(block["gasLimit"]),
        transaction_count=len(block["transactions"]),
    )


# ---- transactions ----


@router.get("/{name}/transactions/{tx_hash}", summary="A transaction and its receipt")
def get_transaction(nodes: NodesDep, name: AppName, tx_hash: TxHash) -> TransactionView:
    record = nodes.record(name)
    tx = call_node(record, "eth_getTransactionByHash", tx_hash.lower())
    if tx is None:
        raise NotFound(f"{name} has no transaction {tx_hash}")
    receipt = None
    if tx.get("blockNumber") is not None:
        receipt = call_node(record, "eth_getTransactionReceipt", tx_hash.lower())
    return _transaction_view(tx, receipt)


def _transaction_view(tx: dict[str, Any], receipt: dict[str, Any] | None) -> TransactionView:
    included = tx.get("blockNumber") is not None
    return TransactionView(
        hash=tx["hash"],
        status="included" if included else "pending",
        block_number=_int(tx["blockNumber"]) if included else None,
        index=_int(tx["transactionIndex"]) if included else None,
        sender=tx["from"],
        to=tx.get("to"),
        nonce=_int(tx["nonce"]),
        value=_int(tx["value"]),
        gas=_int(tx["gas"]),
        type=_int(tx.get("type", "0x0")),
        input=tx.get("input", "0x"),
        receipt=None if receipt is None else _receipt_view(receipt),
    )


def _receipt_view(receipt: dict[str, Any]) -> ReceiptView:
    return ReceiptView(
        succeeded=_int(receipt.get("status", "0x1")) == 1,
        gas_used=_int(receipt["gasUsed"]),
        logs=len(receipt.get("logs", [])),
        contract_address=receipt.get("contractAddress"),
    )


def _int(quantity: Any) -> int:
    return int(quantity, 16) if isinstance(quantity, str) else int(quantity)
