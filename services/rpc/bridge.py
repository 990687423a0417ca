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
"""

from __future__ import annotations

from typing import Any

from rollup.withdrawals import Withdrawal
from sequencer.node import Sequencer
from sequencer.withdrawals import withdrawal_proof
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.params import BlockTag, block_tag, resolve_block
from services.rpc.registry import Method, method

__all__ = ["METHODS", "withdrawal_json", "block_withdrawals", "withdrawal_proof_json"]


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


METHODS: dict[str, Method] = {
    "rollup_getBlockWithdrawals": method(block_withdrawals, block_tag),
    "rollup_getWithdrawalProof": method(withdrawal_proof_json, codec.parse_hash),
}
