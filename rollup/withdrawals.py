"""Withdrawals to the L1: the withdrawal, its hash, and the append-only withdrawals tree.

    withdrawal      = (chain_id u64, nonce u64, sender, target, value u256, l1_token,
                       token_amount u256, gas_limit u64, data)
    withdrawal_hash = keccak(abi.encode(chain_id, nonce, sender, target, value, l1_token,
                                        token_amount, gas_limit, data))
    leaf            = keccak(withdrawal_hash)                       (hashed twice in all)
    node            = keccak(left ++ right)
    zero[0] = 32 zero bytes, zero[i+1] = keccak(zero[i] ++ zero[i])  empty subtrees
    tree root       = the root of the depth-32 tree whose leaf i is withdrawal nonce i
    withdrawals_root = keccak(tree root ++ u256(count))            in every block header

The tree only grows, so the root in any block's header covers every withdrawal of the chain
until then: a withdrawal is proven against the output root of any later batch
(bridge/contracts/Portal.sol checks exactly this). The tree is kept in state as its branch
(the incremental tree of the Ethereum deposit contract): one node per level and the count,
so appending costs at most 32 hashes and computing the root 32 more. Proofs need the leaves,
which nodes keep (`WithdrawalLog`). Limits: at most 2**32 - 1 withdrawals per chain, data at
most MAX_DATA bytes, gas_limit below 2**64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from eth_abi import encode as abi_encode

from rollup.crypto import keccak
from rollup.types import Address, Hash32

__all__ = [
    "DEPTH",
    "MAX_DATA",
    "MAX_WITHDRAWALS",
    "ZERO_HASHES",
    "Withdrawal",
    "withdrawal_hash",
    "withdrawals_root",
    "EMPTY_WITHDRAWALS_ROOT",
    "TreeBranch",
    "append_leaf",
    "branch_root",
    "tree_proof",
    "verify_tree_proof",
]

DEPTH = 32
MAX_WITHDRAWALS = 2**DEPTH - 1
MAX_DATA = 120_000


def _zero_hashes() -> tuple[bytes, ...]:
    zeros = [bytes(32)]
    for _ in range(DEPTH):
        zeros.append(keccak(zeros[-1] + zeros[-1]))
    return tuple(zeros)


ZERO_HASHES = _zero_hashes()


@dataclass(frozen=True, slots=True)
class Withdrawal:
    chain_id: int
    nonce: int
    sender: Address
    target: Address
    value: int
    l1_token: Address
    token_amount: int
    gas_limit: int
    data: bytes
    hash: Hash32 = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hash", withdrawal_hash(self))


def withdrawal_hash(w: Withdrawal) -> Hash32:
    encoded = abi_encode(
        [
            "uint64",
            "uint64",
            "address",
            "address",
            "uint256",
            "address",
            "uint256",
            "uint64",
            "bytes",
        ],
        [
            w.chain_id,
            w.nonce,
            w.sender,
            w.target,
            w.value,
            w.l1_token,
            w.token_amount,
            w.gas_limit,
            w.data,
        ],
    )
    return Hash32(keccak(encoded))


def _leaf(withdrawal_hash: bytes) -> bytes:
    return keccak(withdrawal_hash)


def withdrawals_root(tree_root: bytes, count: int) -> Hash32:
    return Hash32(keccak(tree_root + count.to_bytes(32, "big")))


EMPTY_WITHDRAWALS_ROOT = withdrawals_root(ZERO_HASHES[DEPTH], 0)


@dataclass(frozen=True, slots=True)
class TreeBranch:
    """The incremental tree: `branch[level]` is the left sibling waiting at that level."""

    count: int
    branch: tuple[bytes, ...]  # DEPTH entries

    @classmethod
    def empty(cls) -> TreeBranch:
        return cls(0, (bytes(32),) * DEPTH)


def append_leaf(tree: TreeBranch, withdrawal_hash: bytes) -> TreeBranch:
    """The tree with one more withdrawal (the deposit contract's `deposit`)."""
    if tree.count >= MAX_WITHDRAWALS:
        raise ValueError("the withdrawals tree is full")
    node = _leaf(withdrawal_hash)
    size = tree.count + 1
    branch = list(tree.branch)
    for level in range(DEPTH):
        if size & 1:
            branch[level] = node
            break
        node = keccak(branch[level] + node)
        size >>= 1
    return TreeBranch(tree.count + 1, tuple(branch))


def branch_root(tree: TreeBranch) -> Hash32:
    """`withdrawals_root` of the tree (the deposit contract's `get_deposit_root`)."""
    node = bytes(32)
    size = tree.count
    for level in range(DEPTH):
        if size & 1:
            node = keccak(tree.branch[level] + node)
        else:
            node = keccak(node + ZERO_HASHES[level])
        size >>= 1
    return withdrawals_root(node, tree.count)


def tree_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The DEPTH siblings of leaf `index` in the tree of these withdrawal hashes (all of them,
    in nonce order), bottom first."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"withdrawal {index} is not among {len(hashes)}")
    level = [_leaf(h) for h in hashes]
    siblings: list[bytes] = []
    position = index
    for depth in range(DEPTH):
        sibling = position ^ 1
        siblings.append(level[sibling] if sibling < len(level) else ZERO_HASHES[depth])
        if len(level) % 2:
            level.append(ZERO_HASHES[depth])
        level = [keccak(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
        position //= 2
    return siblings


def verify_tree_proof(
    root: bytes, count: int, withdrawal_hash: bytes, index: int, siblings: Sequence[bytes]
) -> bool:
    """What Portal.proveWithdrawal checks: leaf `index` < count is under `root`."""
    if len(siblings) != DEPTH or not 0 <= index < count:
        return False
    node = _leaf(withdrawal_hash)
    for depth, sibling in enumerate(siblings):
        node = keccak(sibling + node) if (index >> depth) & 1 else keccak(node + sibling)
    return withdrawals_root(node, count) == root
