"""rollup_getProof: Merkle proofs of accounts and storage against a block's state root."""

from __future__ import annotations

from typing import Any

from rollup.blocks import block_hash
from sequencer.node import Sequencer
from services.rpc import codec
from services.rpc.codec import data, quantity
from services.rpc.params import slot_list
from services.rpc.registry import Method, method
from vm.commitment import Proof
from vm.state import account_key, storage_key

__all__ = ["METHODS"]


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

    The trie is binary keccak (see vm/commitment.py), not Ethereum's Patricia trie, so this is
    not eth_getProof. Keys are the raw state keys: 0x00 ++ address for the account (value:
    nonce as 8 bytes ++ balance), 0x01 ++ address ++ slot for storage.
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


METHODS: dict[str, Method] = {
    "rollup_getProof": method(get_proof, codec.parse_address, slot_list, required=1),
}
