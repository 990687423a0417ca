"""EVM-specific JSON-RPC on a real node: state overrides, gas estimation, access lists,
creation in eth_call, and the EIP-3860 initcode limit, through web3.py and raw JSON-RPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3

from bridge.solc import compile_files
from rollup.genesis import DEV_KEYS
from rollup.transactions import MAX_INITCODE_SIZE
from services.launch import NodeProcess
from services.rpcclient import RpcCallError
from tests.conftest import render_template
from tests.support import rpc, rpc_error

pytestmark = pytest.mark.e2e

CHAIN_ID = 4545
OWNER = Account.from_key(DEV_KEYS[4])
CONTRACTS = Path(__file__).resolve().parent / "contracts"
OTHER = "0x" + "ab" * 20


class Node:
    def __init__(self, url: str) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url))

    def result(self, method: str, *params: Any) -> Any:
        return rpc(self.url, method, *params)

    def error(self, method: str, *params: Any) -> RpcCallError:
        """The error the node must answer the call with."""
        return rpc_error(self.url, method, *params)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    app_dir = render_template(tmp_path_factory.mktemp("app") / "app", "evm", "rpc", CHAIN_ID)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as process:
        yield Node(process.url)


@pytest.fixture(scope="module")
def probe(node: Node) -> Any:
    compiled = compile_files([CONTRACTS / "Probe.sol"])["Probe"]
    w3 = node.w3
    factory = w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
    tx = factory.constructor().build_transaction(
        {"from": OWNER.address, "nonce": w3.eth.get_transaction_count(OWNER.address)}
    )
    tx_hash = w3.eth.send_raw_transaction(OWNER.sign_transaction(tx).raw_transaction)
    receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30)
    assert receipt["status"] == 1 and receipt["contractAddress"]
    return w3.eth.contract(address=receipt["contractAddress"], abi=compiled.abi)


def _call(probe: Any, name: str, *args: Any) -> dict[str, Any]:
    return {"from": OWNER.address, "to": probe.address, "data": probe.encode_abi(name, list(args))}


def _word(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def test_balance_code_and_storage_overrides(node: Node, probe: Any) -> None:
    call = _call(probe, "balanceAt", Web3.to_checksum_address(OTHER))
    assert int(node.result("eth_call", call, "latest"), 16) == 0
    assert int(node.result("eth_call", call, "latest", {OTHER: {"balance": "0x7b"}}), 16) == 123
    code = node.result("eth_getCode", probe.address, "latest")
    as_probe = {**_call(probe, "sum"), "to": OTHER}
    diff = {OTHER: {"code": code, "stateDiff": {_word(0): _word(5), _word(1): _word(6)}}}
    assert int(node.result("eth_call", as_probe, "latest", diff), 16) == 11
    # `state` replaces the whole storage: slot 0 of the real contract reads zero under it
    node.w3.eth.wait_for_transaction_receipt(_send(node, probe.functions.churn(0)))
    full = {probe.address: {"state": {_word(1): _word(9)}}}
    assert int(node.result("eth_call", _call(probe, "sum"), "latest", full), 16) == 9
    assert node.result("eth_call", as_probe, "latest") == "0x"  # the override did not stick


def _send(node: Node, fn: Any) -> Any:
    tx = fn.build_transaction(
        {"from": OWNER.address, "nonce": node.w3.eth.get_transaction_count(OWNER.address)}
    )
    return node.w3.eth.send_raw_transaction(OWNER.sign_transaction(tx).raw_transaction)


def test_bad_overrides_are_invalid_params(node: Node, probe: Any) -> None:
    call = _call(probe, "sum")
    for overrides in (
        {OTHER: {"bogus": 1}},
        {OTHER: {"state": {}, "stateDiff": {}}},
        {"0x12": {}},
        [1],
    ):
        assert node.error("eth_call", call, "latest", overrides).code == -32602


@pytest.mark.parametrize("method", ["churn", "outer"])
def test_estimate_is_the_least_gas_that_succeeds(node: Node, probe: Any, method: str) -> None:
    call = _call(probe, method, 40)
    estimate = int(node.result("eth_estimateGas", call), 16)
    node.result("eth_call", {**call, "gas": hex(estimate)})  # succeeds
    node.error("eth_call", {**call, "gas": hex(estimate - 1)})
    tx_hash = _send(node, getattr(probe.functions, method)(40))
    receipt = node.w3.eth.wait_for_transaction_receipt(tx_hash)
    assert receipt["status"] == 1 and receipt["gasUsed"] < estimate  # the refund


def test_estimate_of_a_revert_is_code_3_with_data(node: Node, probe: Any) -> None:
    error = node.error("eth_estimateGas", _call(probe, "churn", 1001))
    assert error.code == 3
    selector = Web3.keccak(text="TooMany(uint256)")[:4].hex()
    assert error.data.startswith("0x" + selector.removeprefix("0x"))


def test_eth_call_can_create_and_returns_the_runtime_code(node: Node, probe: Any) -> None:
    compiled = compile_files([CONTRACTS / "Probe.sol"])["Probe"]
    creation = {"from": OWNER.address, "data": "0x" + compiled.bytecode.hex()}
    runtime = node.result("eth_call", creation)
    assert runtime == node.result("eth_getCode", probe.address, "latest")


def test_access_list_lists_the_slots_and_saves_gas(node: Node, probe: Any) -> None:
    call = _call(probe, "sum")
    answer = node.result("eth_createAccessList", call)
    (entry,) = answer["accessList"]
    assert entry["address"].lower() == probe.address.lower()
    assert sorted(entry["storageKeys"]) == [_word(0), _word(1)]
    listed = int(node.result("eth_estimateGas", {**call, "accessList": answer["accessList"]}), 16)
    assert int(answer["gasUsed"], 16) == listed  # gasUsed is the call's with the list applied
    plain = int(node.result("eth_estimateGas", call), 16)
    assert listed == plain + 2_400 + 2 * 1_900 - 2 * (2_100 - 100)  # EIP-2930's arithmetic


def test_initcode_over_the_limit_is_refused(node: Node) -> None:
    tx = {
        "chainId": CHAIN_ID,
        "nonce": node.w3.eth.get_transaction_count(OWNER.address),
        "maxFeePerGas": 10**10,
        "maxPriorityFeePerGas": 10**9,
        "gas": 2_000_000,
        "to": b"",
        "value": 0,
        "data": b"\x00" * (MAX_INITCODE_SIZE + 1),
    }
    raw = OWNER.sign_transaction(tx).raw_transaction
    error = node.error("eth_sendRawTransaction", "0x" + bytes(raw).hex())
    assert error.code == -32000
    assert error.reason.startswith("max initcode size exceeded")


def test_an_evm_app_resumes_exactly_after_sigkill(tmp_path: Path) -> None:
    app_dir = render_template(tmp_path / "app", "evm", "kill", CHAIN_ID)
    compiled = compile_files([CONTRACTS / "Probe.sol"])["Probe"]
    process = NodeProcess(app_dir, tmp_path / "data")
    with process:
        node = Node(process.url)
        factory = node.w3.eth.contract(abi=compiled.abi, bytecode=compiled.bytecode)
        tx_hash = _send(node, factory.constructor())
        address = node.w3.eth.wait_for_transaction_receipt(tx_hash)["contractAddress"]
        probe = node.w3.eth.contract(address=address, abi=compiled.abi)
        node.w3.eth.wait_for_transaction_receipt(_send(node, probe.functions.churn(3)))
        before = _snapshot(node, address)
        process.kill()
        process.start()
        after = _snapshot(Node(process.url), address)
    assert after == before


def _snapshot(node: Node, address: str) -> dict[str, Any]:
    head = node.result("eth_getBlockByNumber", "latest", False)
    return {
        "head": head["hash"],
        "root": head["stateRoot"],
        "code": node.result("eth_getCode", address, "latest"),
        "slot0": node.result("eth_getStorageAt", address, "0x0", "latest"),
        "nonce": node.result("eth_getTransactionCount", OWNER.address, "latest"),
        "proof": node.result("rollup_getProof", address, [_word(0)]),
    }
