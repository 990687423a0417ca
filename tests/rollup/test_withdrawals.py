"""The withdrawals tree: the incremental branch in state and the full-leaf proofs agree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.crypto import keccak
from rollup.types import Address
from rollup.withdrawals import (
    EMPTY_WITHDRAWALS_ROOT,
    TreeBranch,
    Withdrawal,
    append_leaf,
    branch_root,
    tree_proof,
    verify_tree_proof,
    withdrawal_hash,
)


def hashes(n: int) -> list[bytes]:
    return [keccak(i.to_bytes(8, "big")) for i in range(n)]


def test_an_empty_tree_has_the_empty_root() -> None:
    assert branch_root(TreeBranch.empty()) == EMPTY_WITHDRAWALS_ROOT


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_leaf_is_proven_under_the_branchs_root(n: int, data: st.DataObject) -> None:
    leaves = hashes(n)
    tree = TreeBranch.empty()
    for leaf in leaves:
        tree = append_leaf(tree, leaf)
    root = branch_root(tree)
    index = data.draw(st.integers(min_value=0, max_value=n - 1))
    proof = tree_proof(leaves, index)
    assert verify_tree_proof(root, n, leaves[index], index, proof)
    assert not verify_tree_proof(root, n, keccak(b"other"), index, proof)
    assert not verify_tree_proof(root, n + 1, leaves[index], index, proof)  # the count is bound
    if n > 1:
        assert not verify_tree_proof(root, n, leaves[index], (index + 1) % n, proof)


def test_an_older_leaf_is_proven_under_every_later_root() -> None:
    leaves = hashes(9)
    tree = TreeBranch.empty()
    roots = []
    for leaf in leaves:
        tree = append_leaf(tree, leaf)
        roots.append(branch_root(tree))
    for count in range(3, 10):
        proof = tree_proof(leaves[:count], 2)
        assert verify_tree_proof(roots[count - 1], count, leaves[2], 2, proof)


def test_the_hash_commits_to_every_field_including_the_chain() -> None:
    base = Withdrawal(
        901, 0, Address(b"\x01" * 20), Address(b"\x02" * 20), 5, Address(bytes(20)), 0, 100_000, b""
    )
    other_chain = Withdrawal(902, 0, base.sender, base.target, 5, base.l1_token, 0, 100_000, b"")
    assert base.hash == withdrawal_hash(base) != other_chain.hash
