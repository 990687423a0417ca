"""`rollup up --detach` / `status` / `down` with real processes: Anvil and the token app's node.

Each test starts its own devnet in a temporary data dir and always stops it: `rollup down`,
then SIGKILL by PID for anything the state file named that is still there.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from bridge.inbox import BatchInbox
from bridge.l1 import L1Client
from rollup.genesis import DEV_ADDRESSES, DEV_KEYS
from rollup.manifest import app_address, parse_manifest
from services.anvil import AnvilProcess
from services.keys import address_of, create_key
from services.process import pid_alive
from services.rpcclient import RpcUnavailable
from tests.e2e.devnet import REPO, detached_devnet, read_state, recorded_pids, rollup
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

EXAMPLE = REPO / "examples" / "token"


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Path]:
    """A detached devnet of examples/token in tmp_path/data; stopped however the test ends."""
    with detached_devnet(tmp_path / "data", str(EXAMPLE)) as net:
        yield net.data_dir


def test_up_status_down(devnet: Path) -> None:
    manifest = parse_manifest((EXAMPLE / "rollup.toml").read_text())
    status = rollup("status", "--json", "--data-dir", str(devnet))
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert {"apps", "l1_rpc", "da"} <= set(report)
    assert report["da"]["backend"] == "local"  # the default: a local DA store, L1 commitments
    (app,) = report["apps"]
    assert set(app) == {
        "name",
        "chain_id",
        "vm",
        "rpc_url",
        "address",
        "head",
        "safe",
        "finalized",
        "verifier",
        "bridge",
        "wallet",
    }
    assert app["verifier"] is None
    assert app["name"] == "token"
    assert app["chain_id"] == manifest.chain_id
    assert app["vm"] == "native"
    assert app["address"] == to_checksum_address(app_address("token"))
    assert isinstance(app["head"], int) and app["head"] >= 0
    assert app["rpc_url"].startswith("http://127.0.0.1:")
    assert rpc(app["rpc_url"], "eth_chainId") == hex(manifest.chain_id)
    assert app["wallet"] == {  # what MetaMask's wallet_addEthereumChain takes
        "chainId": hex(manifest.chain_id),
        "chainName": "token",
        "rpcUrls": [app["rpc_url"]],
        "nativeCurrency": {"name": "Ether", "symbol": "ETH", "decimals": 18},
    }
    assert rpc(report["l1_rpc"], "eth_chainId") == hex(31337)

    pids = recorded_pids(read_state(devnet))
    assert len(pids) == 4  # supervisor, anvil, the node, the admin API
    down = rollup("down", "--data-dir", str(devnet))
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(pid) for pid in pids)
    assert not (devnet / "devnet.json").exists()
    assert rollup("status", "--data-dir", str(devnet)).returncode == 1


def test_a_crashed_node_is_restarted_and_keeps_its_chain(devnet: Path) -> None:
    (app,) = read_state(devnet)["apps"]
    url, chain_id = app["rpc_url"], app["chain_id"]
    alice, bob = DEV_ADDRESSES[0], DEV_ADDRESSES[1]
    tx_hash = send_transfer(url, chain_id, DEV_KEYS[0], alice, bob, 10**18)
    wait_for(lambda: rpc(url, "eth_getTransactionReceipt", tx_hash) is not None, "the receipt")
    head = int(rpc(url, "eth_blockNumber"), 16)
    assert head >= 1

    os.kill(app["pid"], signal.SIGKILL)
    wait_for(lambda: read_state(devnet)["apps"][0]["pid"] != app["pid"], "a new node pid")
    wait_for(lambda: answers(url, chain_id), "the restarted node")
    assert int(rpc(url, "eth_blockNumber"), 16) >= head
    assert rpc(url, "eth_getTransactionReceipt", tx_hash)["status"] == "0x1"
    assert balance_of(url, bob) == 10**18
    assert read_state(devnet)["apps"][0]["restarts"] == 1


def send_transfer(url: str, chain_id: int, key: str, sender: bytes, to: bytes, amount: int) -> str:
    data = function_signature_to_4byte_selector("transfer(address,uint256)")
    data += bytes(12) + to + amount.to_bytes(32, "big")
    nonce = int(rpc(url, "eth_getTransactionCount", to_checksum_address(sender), "latest"), 16)
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to_checksum_address(app_address("token")),
        "value": 0,
        "gas": 200_000,
        "maxFeePerGas": 2 * 10**9,
        "maxPriorityFeePerGas": 0,
        "data": data,
    }
    signed = Account.sign_transaction(tx, key)
    tx_hash: str = rpc(url, "eth_sendRawTransaction", "0x" + bytes(signed.raw_transaction).hex())
    return tx_hash


def balance_of(url: str, owner: bytes) -> int:
    data = function_signature_to_4byte_selector("balanceOf(address)") + bytes(12) + owner
    call = {"to": to_checksum_address(app_address("token")), "data": "0x" + data.hex()}
    return int(rpc(url, "eth_call", call, "latest"), 16)


def answers(url: str, chain_id: int) -> bool:
    try:
        return bool(rpc(url, "eth_chainId") == hex(chain_id))
    except RpcUnavailable:
        return False


def test_an_external_l1_takes_the_operators_key_file_and_no_dev_key(tmp_path: Path) -> None:
    data_dir, key_file = tmp_path / "data", tmp_path / "operator" / "owner.key"
    with AnvilProcess(log_dir=tmp_path / "anvil") as anvil:
        key = create_key(key_file)
        operator = bytes.fromhex(address_of(key)[2:])
        L1Client(anvil.rpc_url, DEV_KEYS[5]).send(operator, value=10**21)  # the operator's
        dev0 = L1Client(anvil.rpc_url)
        before = dev0.balance(DEV_ADDRESSES[0])
        l1 = ["--l1-rpc", anvil.rpc_url, "--l1-key-file", str(key_file)]
        with detached_devnet(data_dir, *l1, str(EXAMPLE)) as net:
            state = net.state
            assert state["l1"]["pid"] is None and state["da"]["owner"] == "0x" + operator.hex()
            inbox = BatchInbox(dev0, bytes.fromhex(state["da"]["inbox"][2:]))
            assert inbox.owner() == operator
            assert not (data_dir / "l1" / "owner.key").exists()
            assert (data_dir / "apps" / "token" / "batcher.key").exists()
            assert dev0.balance(DEV_ADDRESSES[0]) == before  # dev account 0 paid nothing
