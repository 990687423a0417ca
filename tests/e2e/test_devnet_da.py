"""`rollup up --da ethereum --verify` with a native and an EVM app under load and an L1 deposit
each: both post to Anvil, and each app's verifier re-derives it to the node's own blocks, the
deposits taken from the devnet's Portal; `rollup status --json` and `rollup verify` report it,
the verifiers serve Prometheus metrics."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from eth_utils import to_checksum_address

from bridge.l1 import L1Client
from bridge.portal import Portal
from rollup.genesis import DEV_KEYS
from services.rpcclient import RpcClient
from tests.e2e.devnet import REPO, detached_devnet, rollup
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

APPS = [REPO / "examples" / "token", REPO / "examples" / "erc20"]
DEADLINE = 90.0


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Path]:
    with detached_devnet(tmp_path / "data", "--da", "ethereum", "--verify", *map(str, APPS)) as net:
        yield net.data_dir


def load(app: dict[str, Any], key: str, count: int) -> None:
    """`count` transfers in one batch, native and token (ERC-20) ones alternating, each to a
    new random recipient."""
    url, chain_id = app["rpc_url"], app["chain_id"]
    nonce = int(rpc(url, "eth_getTransactionCount", Account.from_key(key).address, "pending"), 16)
    calls = []
    for i in range(count):
        to = os.urandom(20)
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": chain_id,
            "nonce": nonce + i,
            "value": 0,
            "maxFeePerGas": 2 * 10**9,
            "maxPriorityFeePerGas": 0,
        }
        if i % 2:
            data = bytes.fromhex("a9059cbb") + bytes(12) + to + (10**9).to_bytes(32, "big")
            tx |= {"to": app["address"], "gas": 100_000, "data": data}
        else:
            tx |= {"to": to_checksum_address(to), "gas": 21_000, "value": 10**12}
        raw = Account.sign_transaction(tx, key).raw_transaction
        calls.append(("eth_sendRawTransaction", ["0x" + bytes(raw).hex()]))
    with RpcClient(url, timeout=60.0) as client:
        answers = client.batch(calls)
    assert all("result" in a for a in answers), [a for a in answers if "result" not in a][:3]


def test_a_native_and_an_evm_app_are_posted_and_verified(devnet: Path) -> None:
    state = json.loads((devnet / "devnet.json").read_text())
    assert state["da"]["backend"] == "ethereum" and state["da"]["mode"] == "calldata"
    apps = state["apps"]
    assert [a["vm"] for a in apps] == ["native", "evm"]
    portal = Portal(
        L1Client(state["l1"]["rpc_url"], DEV_KEYS[5]), bytes.fromhex(state["da"]["portal"][2:])
    )
    for round_ in range(3):
        for app in apps:
            load(app, DEV_KEYS[round_ + 1], 40)
            if round_ == 1:  # a deposit amid the load: the verifier takes it from the L1
                deposit = portal.deposit_eth(app["chain_id"], os.urandom(20), 10**15).deposit
                tx = "0x" + deposit.hash.hex()
                wait_for(
                    lambda url=app["rpc_url"], tx=tx: (
                        rpc(url, "eth_getTransactionByHash", tx) is not None
                    ),
                    f"the deposit on {app['name']}",
                    DEADLINE,
                    interval=0.25,
                )

    def verified() -> bool:
        report = json.loads(rollup("status", "--json", "--data-dir", str(devnet)).stdout)
        return all(
            a["verifier"]["status"] == "in_sync"
            and a["verifier"]["block"] == a["head"] == a["safe"]
            and a["head"] >= 3
            for a in report["apps"]
        )

    wait_for(verified, "both verifiers to re-derive their app", DEADLINE, interval=0.25)
    report = json.loads(rollup("status", "--json", "--data-dir", str(devnet)).stdout)
    for app in report["apps"]:
        node_head = rpc(app["rpc_url"], "eth_getBlockByNumber", hex(app["head"]), False)
        assert app["verifier"]["head_hash"] == node_head["hash"]
        assert app["verifier"]["state_root"] == node_head["stateRoot"]
        assert app["verifier"]["txs"] == 120 and app["verifier"]["reason"] is None

    verify = rollup("verify", "erc20", "--data-dir", str(devnet), "--json")
    assert verify.returncode == 0, verify.stderr
    message = json.loads(verify.stdout)["message"]
    assert message.startswith("in sync at block ")  # a heartbeat block may have come since
    assert int(message.rsplit(" ", 1)[1]) >= report["apps"][1]["head"]
    text = rollup("status", "--data-dir", str(devnet)).stdout
    assert "Verifier of token: in sync at block" in text and "SAFE" in text

    status_url = state["apps"][0]["verifier"]["status_url"]
    metrics = httpx.get(status_url.replace("/status", "/metrics"), trust_env=False).text
    assert 'rollup_verifier_diverged{app="token",chain_id="927668"} 0' in metrics
    assert "rollup_verifier_verified_block{" in metrics
