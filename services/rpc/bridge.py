"""JSON-RPC methods of the L1 bridge (its `METHODS`).

    rollup_getBlockWithdrawals(block) -> [withdrawal ..., each with "hash"], in nonce order:
        the withdrawals the block started (its receipts show them as WithdrawalInitiated logs
        of 0x...0f0004; this adds the nonce and hash the chain gave them)

    rollup_getWithdrawalProof(hash) -> {
        "withdrawal": {chainId, nonce, sender, target, value, l1Token, tokenAmount, gasLimit,
                       data},
        "hash", "l2Block", "batchIndex", "outputBlock", "outputRoot", "l1Block",
        "outputRootProof": {stateRoot, withdrawalsRoot, blockHash},
        "count", "siblings": [32 hashes]}
Everything Portal.proveWithdrawal needs (bridge/README.md): the withdrawal's fields, the batch
whose output root covers it, that root's preimage, the tree's size there and the leaf's
siblings. A withdrawal not covered by a posted batch yet is answered with -32000 saying so.

    rollup_getBridgeStatus([limit]) -> {
        "l1Origin": {number, hash}           what the newest committed block names
        "l1Tip", "l1Reachable", "depositsRead"   the L1 follower's newest L1 block read, whether
                                             the L1 answers, the deposits it read and the chain
                                             has not executed (null without a follower)
        "nextDepositNonce"                   the Portal nonce the chain executes next
        "safe", "finalized"                  the DA poster's heads (null without one)
        "withdrawals": [withdrawal + {"l2Block", "provable", "batchIndex"}, ...]}
    The newest `limit` withdrawals (20 by default, at most 100), newest first; "provable":
    a posted batch's output root covers its block (its proof can be asked for now).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rollup.errors import InvalidParams
from rollup.withdrawals import Withdrawal
from sequencer.node import Sequencer
from sequencer.store import withdrawals_table
from sequencer.withdrawals import withdrawal_proof
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.params import BlockTag, block_tag, resolve_block
from services.rpc.registry import Method, method
from vm.bridge import next_deposit_nonce

__all__ = [
    "METHODS",
    "withdrawal_json",
    "block_withdrawals",
    "bridge_status",
    "withdrawal_proof_json",
]

RECENT_WITHDRAWALS = 20
MAX_RECENT_WITHDRAWALS = 100


def withdrawal_json(w: Withdrawal) -> dict[str, Any]:
    return {
        "chainId": quantity(w.chain_id),
        "nonce": quantity(w.nonce),
        "sender": data(w.sender),
        "target": data(w.target),
        "value": quantity(w.value),
        "l1Token": data(w.l1_token),
        "tokenAmount": quantity(w.token_amount),
        "gasLimit": quantity(w.gas_limit),
        "data": data(w.data),
        "hash": data(w.hash),
    }


def block_withdrawals(node: Sequencer, tag: BlockTag) -> list[dict[str, Any]] | None:
    block = node.block(resolve_block(node, tag))
    return None if block is None else [withdrawal_json(w) for w in block.withdrawals]


def withdrawal_proof_json(node: Sequencer, withdrawal_hash: bytes) -> dict[str, Any]:
    proof = withdrawal_proof(node, withdrawal_hash)
    w = proof.withdrawal
    return {
        "withdrawal": withdrawal_json(w),
        "hash": data(w.hash),
        "l2Block": quantity(proof.block),
        "batchIndex": quantity(proof.batch_index),
        "outputBlock": quantity(proof.output_block),
        "outputRoot": data(proof.output_root),
        "l1Block": quantity(proof.l1_block),
        "outputRootProof": {
            "stateRoot": data(proof.state_root),
            "withdrawalsRoot": data(proof.withdrawals_root),
            "blockHash": data(proof.block_hash),
        },
        "count": quantity(proof.count),
        "siblings": [data(s) for s in proof.siblings],
    }


def parse_limit(value: Any) -> int:
    limit = codec.parse_quantity(value, "limit")
    if not 1 <= limit <= MAX_RECENT_WITHDRAWALS:
        raise InvalidParams(f"invalid argument 0: limit must be 1..{MAX_RECENT_WITHDRAWALS}")
    return limit


def bridge_status(node: Sequencer, limit: int = RECENT_WITHDRAWALS) -> dict[str, Any]:
    header = node.committed
    follower = node.l1
    return {
        "l1Origin": {"number": header.l1_origin, "hash": data(header.l1_origin_hash)},
        "l1Tip": getattr(follower, "tip", None),
        "l1Reachable": getattr(follower, "reachable", None),
        "depositsRead": _deposits_read(follower),
        "nextDepositNonce": next_deposit_nonce(node.state_at(header.number)),
        "safe": node.safe_head,
        "finalized": node.finalized_head,
        "withdrawals": [_recent_json(node, w, block) for w, block in _recent(node, limit)],
    }


def _deposits_read(follower: Any) -> int | None:
    """The L1 follower's deposits read and not executed (services/l1follow.py), if it is one."""
    pending = getattr(follower, "pending", None)
    return int(pending()) if callable(pending) else None


def _recent(node: Sequencer, limit: int) -> list[tuple[Withdrawal, int]]:
    """The newest `limit` withdrawals of committed blocks, newest first, with their blocks."""
    table = withdrawals_table
    query = (
        select(table.c.nonce, table.c.block)
        .where(table.c.block <= node.committed.number)
        .order_by(table.c.block.desc(), table.c.nonce.desc())
        .limit(limit)
    )
    with node.store.engine.connect() as conn:
        rows = [(int(nonce), int(block)) for nonce, block in conn.execute(query)]
    found = []
    for nonce, number in rows:
        block = node.block(number)
        match = [w for w in block.withdrawals if w.nonce == nonce] if block is not None else []
        if match:
            found.append((match[0], number))
    return found


def _recent_json(node: Sequencer, w: Withdrawal, number: int) -> dict[str, Any]:
    provable = node.posted is not None and (node.safe_head or 0) >= number
    batch = node.posted.covering(number) if node.posted is not None and provable else None
    return withdrawal_json(w) | {
        "l2Block": quantity(number),
        "provable": batch is not None,
        "batchIndex": None if batch is None else quantity(batch.index),
    }


METHODS: dict[str, Method] = {
    "rollup_getBlockWithdrawals": method(block_withdrawals, block_tag),
    "rollup_getWithdrawalProof": method(withdrawal_proof_json, codec.parse_hash),
    "rollup_getBridgeStatus": method(bridge_status, parse_limit, required=0),
}
