"""Withdrawal proofs for the L1 Portal: everything `proveWithdrawal` needs, from the node.

    proof = (withdrawal, the output root of the oldest posted batch that reaches its block,
             that root's preimage (state root, withdrawals root, block hash), the tree's size
             there, and the DEPTH siblings of the withdrawal's leaf)
The batch is the oldest that covers it because the Portal's delay runs from the commitment
of the root a withdrawal is proven against. The leaves are the chain's withdrawal records
(vm/bridge.py keeps them in state), so any node can answer; it needs its DA poster's record
of posted batches (`Sequencer.posted`) to name the batch.
"""

from __future__ import annotations

from dataclasses import dataclass

from rollup.errors import InternalError, InvalidParams, StateUnavailable
from rollup.outputs import output_root
from rollup.withdrawals import Withdrawal, tree_proof, verify_tree_proof
from sequencer.l1view import PostedOutputs
from sequencer.node import Sequencer
from vm.bridge import withdrawal_at

__all__ = ["WithdrawalProof", "withdrawal_proof"]


@dataclass(frozen=True, slots=True)
class WithdrawalProof:
    withdrawal: Withdrawal
    block: int  # the block that started it
    batch_index: int
    output_block: int  # the batch's last block, whose output root proves it
    output_root: bytes
    state_root: bytes
    withdrawals_root: bytes
    block_hash: bytes
    count: int  # withdrawals in the tree at output_block
    siblings: tuple[bytes, ...]
    l1_block: int  # where the batch's commitment is on the L1


def withdrawal_proof(node: Sequencer, withdrawal_hash: bytes) -> WithdrawalProof:
    location = node.store.withdrawal_location(withdrawal_hash)
    if location is None:
        raise InvalidParams(f"unknown withdrawal 0x{withdrawal_hash.hex()}")
    nonce, block = location
    withdrawal = withdrawal_at(node.state, node.chain_id, nonce)
    if withdrawal is None or withdrawal.hash != withdrawal_hash:
        raise InternalError(f"withdrawal {nonce} is indexed but not recorded")
    posted: PostedOutputs | None = node.posted
    if posted is None:
        raise StateUnavailable("this node posts no batches: no output root names withdrawals")
    batch = posted.covering(block)
    if batch is None or batch.last_block > node.committed.number:
        raise StateUnavailable(
            f"withdrawal 0x{withdrawal_hash.hex()} of block {block} is not "
            "covered by a posted output root yet"
        )
    output_block = node.block(batch.last_block)
    if output_block is None:
        raise StateUnavailable(f"block {batch.last_block} is not available on this node")
    header = output_block.header
    if output_root(header) != batch.output_root:
        raise InternalError(f"batch {batch.index}'s output root is not block {header.number}'s")
    count = node.store.withdrawals_upto(batch.last_block)
    hashes = [_hash_of(node, n) for n in range(count)]
    siblings = tree_proof(hashes, nonce)
    if not verify_tree_proof(header.withdrawals_root, count, withdrawal_hash, nonce, siblings):
        raise InternalError("the withdrawals tree does not prove its own leaf")
    return WithdrawalProof(
        withdrawal,
        block,
        batch.index,
        header.number,
        batch.output_root,
        header.state_root,
        header.withdrawals_root,
        output_block.hash,
        count,
        tuple(siblings),
        batch.l1_block,
    )


def _hash_of(node: Sequencer, nonce: int) -> bytes:
    withdrawal = withdrawal_at(node.state, node.chain_id, nonce)
    if withdrawal is None:
        raise InternalError(f"withdrawal {nonce} is not recorded")
    return withdrawal.hash
