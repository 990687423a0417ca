"""The state root: a compressed binary Merkle trie over keccak(key), with inclusion proofs.

    path(key)   = keccak(key), read from the most significant bit
    leaf        = keccak(0x00 ++ keccak(key) ++ value)
    node        = keccak(0x01 ++ left ++ right)         an empty subtree hashes to 32 zero bytes
    empty trie  = 32 zero bytes
A subtree holding exactly one key is that key's leaf, placed at the shortest prefix that sets it
apart (as in Diem's Jellyfish tree, but binary), so a trie of N keys is about log2(N) deep
rather than 256, and a proof is that many sibling hashes. A verifier, in Python or in
Solidity, needs only keccak256: fold the siblings from the leaf up, taking the bit of the
path at each depth to know the side (`verify_proof`).

Why this and not Ethereum's Merkle-Patricia trie: hexary MPT nodes are RLP lists that a
Solidity verifier must decode, each update rewrites up to 16-way branches, and the `trie`
package manages ~3k updates/s here. A binary keccak trie is ~20 hashes per update at a
million keys, its proofs verify in a dozen lines of Solidity, and updates are applied once
per block, only to the keys the block changed, with unchanged subtrees' hashes cached.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rollup.crypto import keccak

__all__ = ["StateTree", "Proof", "EMPTY_ROOT", "leaf_hash", "verify_proof"]

EMPTY_ROOT = bytes(32)
_TOP_BIT = 255


class _Leaf:
    __slots__ = ("path", "key_hash", "value", "hash")

    def __init__(self, key_hash: bytes, value: bytes) -> None:
        self.key_hash = key_hash
        self.path = int.from_bytes(key_hash, "big")
        self.value = value
        self.hash = keccak(b"\x00" + key_hash + value)


class _Node:
    __slots__ = ("left", "right", "hash")

    def __init__(self, left: _Leaf | _Node | None, right: _Leaf | _Node | None) -> None:
        self.left, self.right = left, right
        self.hash: bytes | None = None  # None until hashed, and again when a child changes


_Tree = _Leaf | _Node | None


def _bit(path: int, depth: int) -> int:
    return (path >> (_TOP_BIT - depth)) & 1


def _join(a: _Leaf, b: _Leaf, depth: int) -> _Node:
    """The smallest subtree at `depth` holding two leaves whose paths differ below it."""
    bit_a, bit_b = _bit(a.path, depth), _bit(b.path, depth)
    if bit_a != bit_b:
        return _Node(a, b) if bit_a == 0 else _Node(b, a)
    child = _join(a, b, depth + 1)
    return _Node(child, None) if bit_a == 0 else _Node(None, child)


def _insert(root: _Tree, leaf: _Leaf) -> _Leaf | _Node:
    """Put `leaf` in the trie (replacing the same key), dirtying the nodes on its path."""
    path = leaf.path
    parent: _Node | None = None
    went_right = 0
    node, depth = root, 0
    while type(node) is _Node:
        node.hash = None
        parent = node
        went_right = (path >> (_TOP_BIT - depth)) & 1
        node = node.right if went_right else node.left
        depth += 1
    if node is None or node.path == path:  # type: ignore[union-attr]
        new: _Leaf | _Node = leaf
    else:
        new = _join(node, leaf, depth)  # type: ignore[arg-type]
    if parent is None:
        return new
    if went_right:
        parent.right = new
    else:
        parent.left = new
    return root  # type: ignore[return-value]


def _delete(node: _Tree, path: int, depth: int) -> _Tree:
    if node is None:
        return None
    if type(node) is _Leaf:
        return None if node.path == path else node
    assert isinstance(node, _Node)
    if _bit(path, depth):
        node.right = _delete(node.right, path, depth + 1)
    else:
        node.left = _delete(node.left, path, depth + 1)
    left, right = node.left, node.right
    if left is None and (right is None or type(right) is _Leaf):
        return right  # one leaf left below: it moves up
    if right is None and type(left) is _Leaf:
        return left
    node.hash = None
    return node


def _hash(node: _Tree) -> bytes:
    if node is None:
        return EMPTY_ROOT
    if node.hash is None:
        assert isinstance(node, _Node)
        # Clean children answer from their cached hash without a call: most of them are.
        left, right = node.left, node.right
        left_hash = EMPTY_ROOT if left is None else left.hash or _hash(left)
        right_hash = EMPTY_ROOT if right is None else right.hash or _hash(right)
        node.hash = keccak(b"\x01" + left_hash + right_hash)
    return node.hash


@dataclass(frozen=True, slots=True)
class Proof:
    """Siblings from the root down. `leaf_key_hash`/`leaf_value` name the leaf the walk ended
    on when it is another key's (a proof that `key` is absent), else they are empty."""

    key: bytes
    value: bytes | None
    siblings: tuple[bytes, ...]
    other_key_hash: bytes = b""
    other_value: bytes = b""


class StateTree:
    def __init__(self, items: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self._root: _Tree = None
        self.update(items)

    @property
    def root(self) -> bytes:
        return _hash(self._root)

    def update(self, items: Iterable[tuple[bytes, bytes | None]]) -> bytes:
        """Set (or, with None or b"", delete) each key; return the new root."""
        root = self._root
        for key, value in items:
            key_hash = keccak(key)
            if value:
                root = _insert(root, _Leaf(key_hash, value))
            else:
                root = _delete(root, int.from_bytes(key_hash, "big"), 0)
        self._root = root
        return _hash(root)

    def prove(self, key: bytes) -> Proof:
        key_hash = keccak(key)
        path = int.from_bytes(key_hash, "big")
        siblings: list[bytes] = []
        node, depth = self._root, 0
        while type(node) is _Node:
            go_right = _bit(path, depth)
            siblings.append(_hash(node.left if go_right else node.right))
            node = node.right if go_right else node.left
            depth += 1
        if type(node) is _Leaf and node.key_hash == key_hash:
            return Proof(key, node.value, tuple(siblings))
        if type(node) is _Leaf:
            return Proof(key, None, tuple(siblings), node.key_hash, node.value)
        return Proof(key, None, tuple(siblings))


def leaf_hash(key_hash: bytes, value: bytes) -> bytes:
    return keccak(b"\x00" + key_hash + value)


def verify_proof(root: bytes, proof: Proof) -> bool:
    """Check a proof of `proof.key` holding `proof.value` (or being absent) under `root`."""
    key_hash = keccak(proof.key)
    path = int.from_bytes(key_hash, "big")
    if proof.value is not None:
        node = leaf_hash(key_hash, proof.value)
    elif proof.other_key_hash:
        # absent: the walk ended on another key's leaf, which must share the walked prefix
        other = int.from_bytes(proof.other_key_hash, "big")
        shift = _TOP_BIT + 1 - len(proof.siblings)
        if other == path or other >> shift != path >> shift:
            return False
        node = leaf_hash(proof.other_key_hash, proof.other_value)
    else:
        node = EMPTY_ROOT
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        if _bit(path, depth):
            node = keccak(b"\x01" + sibling + node)
        else:
            node = keccak(b"\x01" + node + sibling)
    return node == root
