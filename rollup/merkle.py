"""Binary keccak Merkle roots over ordered leaves (transactions, receipts, messages).

    root([])        = keccak(b"")
    root([a])       = keccak(0x00 ++ a)
    node(l, r)      = keccak(0x01 ++ l ++ r)      an odd node at a level is carried up unchanged

Leaves and nodes are domain-separated so a node can never pass for a leaf. A Solidity verifier
needs only keccak256 and the sibling path (`proof`, `verify`).
"""

from __future__ import annotations

from rollup.crypto import EMPTY_KECCAK, keccak

__all__ = ["merkle_root", "merkle_proof", "verify_proof"]


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
