"""The execution-apis schema check over HTTP, against a real node process of an EVM app.

A handful of methods, as a wallet or bridge sends them: the chain's head, a block, a receipt,
fees, eth_getProof as viem's `getProof` asks for it (verified down to the state root),
eth_getStorageValues, eth_fillTransaction, eth_simulateV1, eth_config and eth_capabilities.
tests/services/test_execution_apis.py checks every spec method in process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from rollup.crypto import keccak
from rollup.genesis import DEV_KEYS
from services.launch import NodeProcess
from services.rpcclient import RpcCallError, RpcClient
from services.scaffold import scaffold
from tests.services.test_execution_apis import (
    ALICE,
    BOB,
    CHAIN_ID,
    TOKEN,
    balances_slot,
    schema_errors,
    simulate_payload,
    transfer_data,
    verify_proof_nodes,
)
from tests.support import wait_for

pytestmark = pytest.mark.e2e

RECEIPT_TIMEOUT = 15.0


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RpcClient]:
    root = tmp_path_factory.mktemp("spec")
    app_dir = scaffold(root / "app", "evm", "spec", CHAIN_ID)
    process = NodeProcess(app_dir, Path(root / "data"), chain_id=CHAIN_ID)
    process.start()
    try:
        with RpcClient(process.url) as rpc:
            yield rpc
    finally:
        process.stop()


@pytest.fixture(scope="module")
def receipt(client: RpcClient) -> dict[str, Any]:
    """The receipt of an ERC-20 transfer of 5 to BOB, signed here and sent raw."""
    nonce = int(client.call("eth_getTransactionCount", ALICE, "pending"), 16)
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "gas": 100_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 0,
        "to": to_checksum_address(TOKEN),
        "value": 0,
        "data": transfer_data(BOB, 5),
    }
    raw = bytes(Account.sign_transaction(tx, DEV_KEYS[0]).raw_transaction)
    tx_hash = client.call("eth_sendRawTransaction", "0x" + raw.hex())
    found: dict[str, Any] = wait_for(
        lambda: client.call("eth_getTransactionReceipt", tx_hash), "the receipt", RECEIPT_TIMEOUT
    )
    return found


def _check(method: str, result: Any) -> Any:
    errors = schema_errors(method, result)
    assert not errors, f"{method}: {errors}"
    return result


def test_chain_blocks_and_receipts_are_in_the_spec(
    client: RpcClient, receipt: dict[str, Any]
) -> None:
    _check("eth_chainId", client.call("eth_chainId"))
    _check("eth_blockNumber", client.call("eth_blockNumber"))
    _check("eth_getTransactionReceipt", receipt)
    block = _check(
        "eth_getBlockByNumber", client.call("eth_getBlockByNumber", receipt["blockNumber"], True)
    )
    _check("eth_getBlockByHash", client.call("eth_getBlockByHash", block["hash"], False))
    _check("eth_getBlockReceipts", client.call("eth_getBlockReceipts", block["number"]))
    _check("eth_getHeaderByNumber", client.call("eth_getHeaderByNumber", block["number"]))
    for method in (
        "eth_gasPrice",
        "eth_baseFee",
        "eth_maxPriorityFeePerGas",
        "eth_config",
        "eth_capabilities",
    ):
        _check(method, client.call(method))
    _check("eth_feeHistory", client.call("eth_feeHistory", "0x4", "latest", [25, 75]))


def test_get_proof_as_viem_asks_proves_the_balance(
    client: RpcClient, receipt: dict[str, Any]
) -> None:
    """viem's getProof: eth_getProof(address, storageKeys, block) at a block number."""
    slot = balances_slot(BOB)
    head = wait_for(lambda: _idle_head(client), "a head with its proofs", RECEIPT_TIMEOUT)
    proof = _check("eth_getProof", client.call("eth_getProof", TOKEN, [slot], head["number"]))
    assert proof["storageHash"] == head["stateRoot"]
    (held,) = proof["storageProof"]
    key = b"\x01" + bytes.fromhex(TOKEN[2:]) + bytes.fromhex(slot[2:])
    value = verify_proof_nodes(head["stateRoot"], key, held["proof"])
    assert value is not None and int.from_bytes(value, "big") == int(held["value"], 16) >= 5
    account = verify_proof_nodes(
        head["stateRoot"], b"\x00" + bytes.fromhex(TOKEN[2:]), proof["accountProof"]
    )
    assert account is not None
    code = client.call("eth_getCode", TOKEN, head["number"])
    assert proof["codeHash"] == "0x" + keccak(bytes.fromhex(code[2:])).hex()


def _idle_head(client: RpcClient) -> dict[str, Any] | None:
    """The latest block, once the node has no newer one executed (proofs are at its head)."""
    head: dict[str, Any] = client.call("eth_getBlockByNumber", "latest", False)
    try:
        proof = client.call("eth_getProof", TOKEN, [], head["number"])
    except RpcCallError:  # a newer block was executed meanwhile: proofs are at the newest only
        return None
    return head if proof["storageHash"] == head["stateRoot"] else None


def test_storage_fill_and_simulate_are_in_the_spec(
    client: RpcClient, receipt: dict[str, Any]
) -> None:
    slot = balances_slot(BOB)
    values = _check(
        "eth_getStorageValues", client.call("eth_getStorageValues", {TOKEN: [slot]}, "latest")
    )
    assert values[TOKEN] == [client.call("eth_getStorageAt", TOKEN, slot, "latest")]
    filled = _check(
        "eth_fillTransaction", client.call("eth_fillTransaction", {"from": ALICE, "to": BOB})
    )
    assert filled["tx"]["nonce"] == client.call("eth_getTransactionCount", ALICE, "pending")
    blocks = _check("eth_simulateV1", client.call("eth_simulateV1", simulate_payload(), "latest"))
    assert [call["status"] for block in blocks for call in block["calls"]] == ["0x1"] * 3
