"""The state trie against a from-scratch reference, and its proofs."""

from __future__ import annotations

import random
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from rollup.crypto import keccak
from vm.commitment import EMPTY_ROOT, StateTree, leaf_hash, verify_proof


def reference_root(items: dict[bytes, bytes]) -> bytes:
    """The definition, computed from nothing: split by path bits until one key is left."""
    leaves = [(int.from_bytes(keccak(k), "big"), keccak(k), v) for k, v in items.items() if v]

    def subtree(group: list[tuple[int, bytes, bytes]], depth: int) -> bytes:
        if not group:
            return EMPTY_ROOT
        if len(group) == 1:
            return leaf_hash(group[0][1], group[0][2])
        left = [g for g in group if not (g[0] >> (255 - depth)) & 1]
        right = [g for g in group if (g[0] >> (255 - depth)) & 1]
        return keccak(b"\x01" + subtree(left, depth + 1) + subtree(right, depth + 1))

    return subtree(leaves, 0)


ops = st.lists(
    st.tuples(st.binary(min_size=1, max_size=3), st.one_of(st.none(), st.binary(max_size=4))),
    max_size=60,
)


@settings(max_examples=200)
@given(ops)
def test_incremental_updates_match_the_reference(updates: list[tuple[bytes, bytes | None]]) -> None:
    tree = StateTree()
    model: dict[bytes, bytes] = {}
    for key, value in updates:
        tree.update([(key, value)])
        if value:
            model[key] = value
        else:
            model.pop(key, None)
        assert tree.root == reference_root(model)


def test_root_does_not_depend_on_order_and_deletes_restore_it() -> None:
    rng = random.Random(7)
    items = [(rng.randbytes(20), rng.randbytes(8)) for _ in range(500)]
    first, second = StateTree(items), StateTree(reversed(items))
    assert first.root == second.root
    before = first.root
    extra = [(rng.randbytes(20), b"x") for _ in range(50)]
    first.update(extra)
    assert first.root != before
    first.update((key, None) for key, _ in extra)
    assert first.root == before


def test_inclusion_and_exclusion_proofs_verify_and_tampering_fails() -> None:
    rng = random.Random(3)
    items = {rng.randbytes(21): rng.randbytes(12) for _ in range(300)}
    tree = StateTree(items.items())
    root = tree.root
    for key, value in list(items.items())[:50]:
        proof = tree.prove(key)
        assert proof.value == value and verify_proof(root, proof)
        assert not verify_proof(root, replace(proof, value=value + b"!"))
        assert not verify_proof(keccak(root), proof)
        if proof.siblings:
            bad = (keccak(proof.siblings[0]),) + proof.siblings[1:]
            assert not verify_proof(root, replace(proof, siblings=bad))
    for _ in range(50):
        absent = tree.prove(rng.randbytes(21))
        assert absent.value is None and verify_proof(root, absent)
        assert not verify_proof(root, replace(absent, value=b"forged"))


def test_empty_and_single_key_trees() -> None:
    tree = StateTree()
    assert tree.root == EMPTY_ROOT and verify_proof(EMPTY_ROOT, tree.prove(b"k"))
    tree.update([(b"k", b"v")])
    assert tree.root == leaf_hash(keccak(b"k"), b"v")
    assert verify_proof(tree.root, tree.prove(b"k"))
