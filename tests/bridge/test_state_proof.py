"""A storage proof from a native app's state root verifies in Solidity, on a real EVM (Anvil)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from web3 import Web3

from bridge.build import CONTRACTS_DIR, compile_contract
from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from sequencer.harness import LocalChain
from services.anvil import AnvilProcess
from vm.commitment import verify_proof
from vm.state import storage_key

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def verifier() -> Iterator[object]:
    compiled = compile_contract(CONTRACTS_DIR / "StateProof.sol", "StateProofVerifier")
    with AnvilProcess() as anvil:
        w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
        deployer = Account.from_key(DEV_KEYS[0])
        tx = {
            "from": deployer.address,
            "data": compiled.bytecode,
            "gas": 1_000_000,
            "nonce": 0,
            "chainId": w3.eth.chain_id,
            "gasPrice": w3.eth.gas_price,
        }
        signed = deployer.sign_transaction(tx)
        receipt = w3.eth.wait_for_transaction_receipt(
            w3.eth.send_raw_transaction(signed.raw_transaction)
        )
        yield w3.eth.contract(address=receipt.contractAddress, abi=compiled.abi)


def test_token_balance_proof_verifies_on_chain(token_app: Path, verifier) -> None:  # type: ignore[no-untyped-def]
    with LocalChain.from_dir(token_app) as chain:
        alice, bob = chain.accounts[0], chain.accounts[1]
        chain.transact(alice, "transfer", bob, 777)
        for i in range(20):
            chain.transfer(alice, bytes([i + 1]) * 20, 1)
        root = chain.node.head.state_root
        # balances is the token's fourth field: slot 3, Solidity's mapping layout
        slot = keccak(bytes(12) + bob + (3).to_bytes(32, "big"))
        proof = chain.node.tree.prove(storage_key(chain.app.address, slot))
        assert proof.value == (777).to_bytes(2, "big") and verify_proof(root, proof)
        siblings = list(proof.siblings)
        fn = verifier.functions.verifyInclusion
        assert fn(root, proof.key, proof.value, siblings).call() is True
        assert fn(root, proof.key, (778).to_bytes(2, "big"), siblings).call() is False
        assert fn(keccak(root), proof.key, proof.value, siblings).call() is False
