"""rollup_getProof over JSON-RPC: proofs verify against the state root they name."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from rollup.crypto import keccak
from vm.commitment import Proof, verify_proof

pytestmark = pytest.mark.e2e


def _proof(obj: dict[str, Any]) -> Proof:
    value = None if obj["value"] is None else bytes.fromhex(obj["value"][2:])
    return Proof(
        bytes.fromhex(obj["key"][2:]),
        value,
        tuple(bytes.fromhex(s[2:]) for s in obj["siblings"]),
        bytes.fromhex(obj.get("otherKeyHash", "0x")[2:]),
        bytes.fromhex(obj.get("otherValue", "0x")[2:]),
    )


def test_account_and_storage_proofs(
    chain: Any, dev_accounts: list[LocalAccount], token_address: str
) -> None:
    alice = dev_accounts[0]
    slot = keccak(bytes(12) + bytes.fromhex(alice.address[2:]) + (3).to_bytes(32, "big"))
    result = chain.rpc(
        "rollup_getProof", token_address, ["0x" + slot.hex(), "0x" + "00" * 31 + "99"]
    )
    root = bytes.fromhex(result["stateRoot"][2:])
    block = chain.rpc("eth_getBlockByNumber", result["blockNumber"], False)
    assert block is None or block["stateRoot"] == result["stateRoot"]
    account = _proof(result["account"])
    assert verify_proof(root, account)
    balance_slot, empty_slot = (_proof(p) for p in result["storageProof"])
    assert balance_slot.value and verify_proof(root, balance_slot)
    assert empty_slot.value is None and verify_proof(root, empty_slot)
    alice_result = chain.rpc("rollup_getProof", alice.address)
    alice_proof = _proof(alice_result["account"])
    assert alice_proof.value is not None  # nonce ++ balance of a funded account
    assert verify_proof(bytes.fromhex(alice_result["stateRoot"][2:]), alice_proof)


def test_bad_proof_params(chain: Any) -> None:
    error = chain.request("rollup_getProof", "0x1234")["error"]
    assert error["code"] == -32602
