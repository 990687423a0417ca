"""Binary keccak Merkle roots over ordered leaves (transactions, receipts, messages).

    root([])        = keccak(b"")
    root([a])       = keccak(0x00 ++ a)
    node(l, r)      = keccak(0x01 ++ l ++ r)      an odd node at a level is carried up unchanged

Leaves and nodes are domain-separated so a node can never pass for a leaf. A Solidity verifier
needs only keccak256 and the sibling path (`proof`, `verify`).

A multiproof shows several leaves of one tree at once (the messages of one block for one
destination): with the leaf count and the leaves' indices, the verifier walks the levels
bottom-up, pairing the nodes it knows and taking each missing sibling from the proof, in that
order (`merkle_multiproof`, `multiproof_root`). k adjacent leaves need about log2(count)
hashes rather than k of them, and the verifier hashes each node once.
"""

from __future__ import annotations

from rollup.crypto import EMPTY_KECCAK, keccak

__all__ = [
    "MAX_LEAVES",
    "merkle_root",
    "merkle_proof",
    "verify_proof",
    "merkle_levels",
    "merkle_multiproof",
    "multiproof_root",
]

MAX_LEAVES = 2**32  # a multiproof's tree is at most 32 levels deep


def _leaf(data: bytes) -> bytes:
    return keccak(b"\x00" + data)


def _level_up(level: list[bytes]) -> list[bytes]:
    nxt = [keccak(b"\x01" + level[i] + level[i + 1]) for i in range(0, len(level) - 1, 2)]
    if len(level) % 2:
        nxt.append(level[-1])
    return nxt


def merkle_root(leaves: list[bytes]) -> bytes:
    if not leaves:
        return EMPTY_KECCAK
    level = [_leaf(leaf) for leaf in leaves]
    while len(level) > 1:
        level = _level_up(level)
    return level[0]


def merkle_proof(leaves: list[bytes], index: int) -> list[tuple[bool, bytes]]:
    """Sibling path of leaf `index`: (sibling_is_left, sibling_hash) from the bottom up."""
    level = [_leaf(leaf) for leaf in leaves]
    path: list[tuple[bool, bytes]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append((sibling < index, level[sibling]))
        level = _level_up(level)
        index //= 2
    return path


def verify_proof(root: bytes, leaf: bytes, path: list[tuple[bool, bytes]]) -> bool:
    node = _leaf(leaf)
    for sibling_is_left, sibling in path:
        node = (
            keccak(b"\x01" + sibling + node)
            if sibling_is_left
            else keccak(b"\x01" + node + sibling)
        )
    return node == root


def merkle_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaf hashes first and the root last (none for no leaves)."""
    if not leaves:
        return []
    levels = [[_leaf(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        levels.append(_level_up(levels[-1]))
    return levels


def merkle_multiproof(levels: list[list[bytes]], indices: list[int]) -> list[bytes]:
    """The sibling hashes that `multiproof_root` needs to rebuild the root from the leaves at
    `indices` (ascending, distinct) of the tree `levels` (`merkle_levels`)."""
    proof: list[bytes] = []
    known = indices
    for level in levels[:-1]:
        parents: list[int] = []
        k = 0
        while k < len(known):
            index = known[k]
            if k + 1 < len(known) and known[k + 1] == index ^ 1:
                k += 2  # both children known
            else:
                if index ^ 1 < len(level):
                    proof.append(level[index ^ 1])
                k += 1  # else the odd last node, carried up
            parents.append(index // 2)
        known = parents
    return proof


def multiproof_root(
    count: int, leaves: list[tuple[int, bytes]], proof: list[bytes]
) -> bytes | None:
    """The root of a tree of `count` leaves that has `leaves` ((index, data), indices
    ascending and distinct) at those positions, given `merkle_multiproof`'s hashes; None if
    the inputs do not describe such a tree (bad indices, too few or too many hashes)."""
    if not leaves or not 0 < count <= MAX_LEAVES:
        return None
    indices = [index for index, _ in leaves]
    if indices[-1] >= count or any(a >= b for a, b in zip(indices, indices[1:])):
        return None
    nodes = [(index, _leaf(data)) for index, data in leaves]
    width, used = count, 0
    while width > 1:
        parents: list[tuple[int, bytes]] = []
        k = 0
        while k < len(nodes):
            index, node = nodes[k]
            if k + 1 < len(nodes) and nodes[k + 1][0] == index ^ 1:
                node = keccak(b"\x01" + node + nodes[k + 1][1])
                k += 2
            else:
                if index ^ 1 < width:
                    if used == len(proof):
                        return None
                    sibling = proof[used]
                    used += 1
                    node = keccak(b"\x01" + (sibling + node if index & 1 else node + sibling))
                k += 1
            parents.append((index // 2, node))
        nodes = parents
        width = (width + 1) // 2
    return nodes[0][1] if used == len(proof) else None
