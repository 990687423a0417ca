"""Merkle proofs of accounts and storage against a block's state root: rollup_getProof (our
shape) and eth_getProof (EIP-1186's shape, for viem's `getProof` and bridges).

The state trie is binary keccak (vm/commitment.py), not Ethereum's Patricia trie: one trie over
every state key, so there is no per-account storage trie. eth_getProof fills EIP-1186's fields
from it as follows:

    balance, nonce   the account's
    codeHash         keccak256 of its code (keccak256("") when it has none)
    storageHash      the block's state root: storage slots are proven against it, like accounts
    accountProof     the nodes on the path of key 0x00 ++ address, root first
    storageProof[i]  {key, value, proof}: the nodes on the path of 0x01 ++ address ++ slot

A proof is a list of node preimages, root first, each of which hashes (keccak256) to the
reference its parent holds; the first hashes to the state root:

    interior node   0x01 ++ left (32 bytes) ++ right (32 bytes)    65 bytes
    leaf            0x00 ++ keccak256(key) ++ value                33 bytes or more

To verify, walk path = keccak256(key) from its most significant bit: at depth d an interior
node's child is `right` if bit d is set, else `left`. The walk ends on
- the key's own leaf: the value is proven (accounts: nonce as 8 bytes ++ balance, big-endian
  and minimal; storage: the word without its leading zero bytes);
- another key's leaf, whose keccak256(key) shares the walked prefix: the key is absent;
- a zero reference (32 zero bytes: an empty subtree) after the last interior node, or no node
  at all (an empty trie, whose root is 32 zero bytes): the key is absent.
An absent account proves balance, nonce, storage 0 and no code.

Proofs are kept for the newest executed block only (the trie is not versioned), so eth_getProof
answers for that block ("latest", "pending", or its number or hash) and StateUnavailable for
older ones; eth_capabilities says so (`stateproofs`).
"""

from __future__ import annotations

from typing import Any

from rollup.blocks import block_hash
from rollup.crypto import keccak
from rollup.errors import StateUnavailable
from rollup.types import BlockHeader
from sequencer.node import Sequencer
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.params import BlockTag, ByHash, block_tag, resolve_block, slot_list
from services.rpc.registry import Method, method
from vm.commitment import EMPTY_ROOT, Proof
from vm.state import account_key, code_key, storage_key

__all__ = ["METHODS", "proof_nodes"]


def _proof_json(proof: Proof) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": data(proof.key),
        "value": None if proof.value is None else data(proof.value),
        "siblings": [data(s) for s in proof.siblings],
    }
    if proof.other_key_hash:
        out["otherKeyHash"] = data(proof.other_key_hash)
        out["otherValue"] = data(proof.other_value)
    return out


def get_proof(node: Sequencer, address: bytes, slots: list[bytes] | None = None) -> dict[str, Any]:
    """Proofs of an account and storage slots against the newest block's state root.

    Keys are the raw state keys: 0x00 ++ address for the account (value: nonce as 8 bytes ++
    balance), 0x01 ++ address ++ slot for storage. eth_getProof is the same in EIP-1186's shape.
    """
    header = node.head
    return {
        "blockNumber": quantity(header.number),
        "blockHash": data(block_hash(header)),
        "stateRoot": data(header.state_root),
        "account": _proof_json(node.tree.prove(account_key(address))),
        "storageProof": [
            dict(_proof_json(node.tree.prove(storage_key(address, slot))), slot=data(slot))
            for slot in slots or []
        ],
    }


# ---- eth_getProof ------------------------------------------------------------------------------


def proof_nodes(proof: Proof) -> list[bytes]:
    """The node preimages on the path of `proof.key`, root first (the format above)."""
    key_hash = keccak(proof.key)
    path = int.from_bytes(key_hash, "big")
    nodes: list[bytes] = []
    if proof.value is not None:
        nodes.append(b"\x00" + key_hash + proof.value)
    elif proof.other_key_hash:
        nodes.append(b"\x00" + proof.other_key_hash + proof.other_value)
    child = keccak(nodes[0]) if nodes else EMPTY_ROOT
    for depth in range(len(proof.siblings) - 1, -1, -1):
        sibling = proof.siblings[depth]
        right = (path >> (255 - depth)) & 1
        node = b"\x01" + (sibling + child if right else child + sibling)
        nodes.append(node)
        child = keccak(node)
    nodes.reverse()
    return nodes


def _proved_header(node: Sequencer, tag: BlockTag) -> BlockHeader:
    """The header of the newest executed block, if `tag` names it (the trie is at that block)."""
    head = node.head
    if tag in ("latest", "pending"):
        return head
    if isinstance(tag, ByHash):
        number = head.number if tag.hash == block_hash(head) else resolve_block(node, tag)
    else:
        number = tag if isinstance(tag, int) else resolve_block(node, tag)
    if number != head.number:
        raise StateUnavailable(
            f"proofs are kept for the newest block only ({head.number}), not block {number}"
        )
    return head


def _account(proof: Proof) -> tuple[int, int]:
    """(nonce, balance) as the proof's leaf holds them (vm/state.py's encoding)."""
    raw = proof.value or b""
    return int.from_bytes(raw[:8], "big"), int.from_bytes(raw[8:], "big")


def eth_get_proof(
    node: Sequencer, address: bytes, slots: list[bytes], tag: BlockTag = "latest"
) -> dict[str, Any]:
    """EIP-1186's answer from our trie's proofs (the module docstring has the format)."""
    header = _proved_header(node, tag)
    account = node.tree.prove(account_key(address))
    nonce, balance = _account(account)
    code = node.state.get(code_key(address)) or b""
    return {
        "address": data(address),
        "accountProof": [data(n) for n in proof_nodes(account)],
        "balance": quantity(balance),
        "codeHash": data(keccak(code)),
        "nonce": quantity(nonce),
        "storageHash": data(header.state_root),
        "storageProof": [_storage_proof(node, address, slot) for slot in slots],
    }


def _storage_proof(node: Sequencer, address: bytes, slot: bytes) -> dict[str, Any]:
    proof = node.tree.prove(storage_key(address, slot))
    value = int.from_bytes(proof.value, "big") if proof.value is not None else 0
    return {
        "key": data(slot),
        "value": quantity(value),
        "proof": [data(n) for n in proof_nodes(proof)],
    }


METHODS: dict[str, Method] = {
    "rollup_getProof": method(get_proof, codec.parse_address, slot_list, required=1),
    "eth_getProof": method(eth_get_proof, codec.parse_address, slot_list, block_tag, required=2),
}
