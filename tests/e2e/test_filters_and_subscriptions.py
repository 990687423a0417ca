"""Polling filters over HTTP and eth_subscribe over WebSocket, through web3.py, on a native
app and on an EVM app (the same code serves both; these tests show it does)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import websockets
from eth_account import Account
from web3 import AsyncWeb3, Web3
from web3.providers.persistent import WebSocketProvider

from rollup.genesis import DEV_KEYS
from rollup.manifest import parse_manifest
from services.apps import load_app
from services.launch import NodeProcess
from tests.conftest import render_template
from tests.support import rpc_error
from vm.evm.artifact import Artifact

pytestmark = pytest.mark.e2e

ALICE, BOB = Account.from_key(DEV_KEYS[0]), Account.from_key(DEV_KEYS[1])
TRANSFER_TOPIC = Web3.keccak(text="Transfer(address,address,uint256)")
TRANSFER_ABI = [
    {
        "type": "function",
        "name": "transfer",
        "stateMutability": "nonpayable",
        "inputs": [{"name": "to", "type": "address"}, {"name": "value", "type": "uint256"}],
        "outputs": [{"name": "", "type": "bool"}],
    },
]


class App:
    def __init__(self, node: NodeProcess, address: str) -> None:
        self.node, self.address = node, address
        self.w3 = Web3(Web3.HTTPProvider(node.url))
        self.token = self.w3.eth.contract(address=address, abi=TRANSFER_ABI)

    @property
    def ws_url(self) -> str:
        return self.node.url.replace("http://", "ws://")

    def transfer(self, value: int) -> Any:
        tx = self.token.functions.transfer(BOB.address, value).build_transaction(
            {"from": ALICE.address, "nonce": self.w3.eth.get_transaction_count(ALICE.address)}
        )
        signed = ALICE.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        return self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=15)


@pytest.fixture(scope="module", params=["token", "evm"])
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    template: str = request.param
    app_dir = render_template(tmp_path_factory.mktemp(template) / "app", template, "filt", 4321)
    bundle = load_app(app_dir)
    assert isinstance(bundle.code, Artifact) == (template == "evm")
    manifest = parse_manifest((app_dir / "rollup.toml").read_text())
    address = Web3.to_checksum_address(manifest.address)
    with NodeProcess(app_dir, tmp_path_factory.mktemp("data")) as node:
        yield App(node, address)


def test_block_and_log_filters_report_only_what_is_new(app: App) -> None:
    w3 = app.w3
    blocks = w3.eth.filter("latest")
    logs = w3.eth.filter({"address": app.address, "topics": [TRANSFER_TOPIC]})
    other = w3.eth.filter({"address": BOB.address})  # matches nothing
    receipt = app.transfer(7)
    new_blocks = w3.eth.get_filter_changes(blocks.filter_id)
    assert receipt["blockHash"] in new_blocks
    (entry,) = w3.eth.get_filter_changes(logs.filter_id)
    assert entry["transactionHash"] == receipt["transactionHash"]
    assert int.from_bytes(entry["data"], "big") == 7
    assert w3.eth.get_filter_changes(logs.filter_id) == []  # drained by the last poll
    assert w3.eth.get_filter_changes(other.filter_id) == []
    assert receipt["transactionHash"] in [
        e["transactionHash"] for e in w3.eth.get_filter_logs(logs.filter_id)
    ]
    assert w3.eth.uninstall_filter(logs.filter_id) is True
    assert w3.eth.uninstall_filter(logs.filter_id) is False


def test_pending_filter_sees_admitted_transactions(app: App) -> None:
    pending = app.w3.eth.filter("pending")
    receipt = app.transfer(1)
    assert receipt["transactionHash"] in app.w3.eth.get_filter_changes(pending.filter_id)


def test_unknown_filter_and_http_subscribe_are_clear_errors(app: App) -> None:
    url = app.node.url
    assert rpc_error(url, "eth_getFilterChanges", "0x1234").reason == "filter not found"
    assert rpc_error(url, "eth_getFilterLogs", None).code == -32602
    error = rpc_error(url, "eth_subscribe", "newHeads")
    assert (error.code, error.reason, error.data) == (-32601, "notifications not supported", None)


async def _subscribe_and_transfer(app: App) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with AsyncWeb3(WebSocketProvider(app.ws_url)) as w3:
        heads = await w3.eth.subscribe("newHeads")
        logs = await w3.eth.subscribe("logs", {"address": app.address, "topics": [TRANSFER_TOPIC]})
        pending = await w3.eth.subscribe("newPendingTransactions")
        assert await w3.eth.chain_id == 4321  # plain calls share the socket
        receipt = await asyncio.to_thread(app.transfer, 11)
        async with asyncio.timeout(15):
            async for message in w3.socket.process_subscriptions():
                kind = {heads: "head", logs: "log", pending: "pending"}[message["subscription"]]
                seen.setdefault(kind, message["result"])
                if len(seen) == 3 and kind == "log":
                    break
        assert await w3.eth.unsubscribe(heads) is True
        seen["receipt"] = receipt
    return seen


def test_websocket_subscriptions_push_heads_logs_and_pending(app: App) -> None:
    seen = asyncio.run(_subscribe_and_transfer(app))
    receipt = seen["receipt"]
    assert seen["log"]["transactionHash"] == receipt["transactionHash"]
    assert seen["log"]["removed"] is False
    assert seen["pending"] == receipt["transactionHash"]
    assert int(seen["head"]["number"]) >= 1 and "transactions" not in seen["head"]


async def _bad_subscriptions(url: str) -> list[str]:
    errors = []
    async with websockets.connect(url) as socket:
        for params in (["nope"], ["logs", {"blockHash": "0x" + "00" * 32}], []):
            await socket.send(
                Web3.to_json(
                    {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe", "params": params}
                )
            )
            reply = await asyncio.wait_for(socket.recv(), 10)
            errors.append(str(reply))
        await socket.send(b"{not json")
        errors.append(str(await asyncio.wait_for(socket.recv(), 10)))
    return errors


def test_bad_subscriptions_are_refused_and_the_socket_stays_open(app: App) -> None:
    replies = asyncio.run(_bad_subscriptions(app.ws_url))
    assert all('"error"' in r for r in replies), replies
    assert "-32700" in replies[-1]
    assert "unsupported subscription" in replies[0]


def test_rendered_evm_app_dir_is_complete(tmp_path: Path) -> None:
    app_dir = render_template(tmp_path / "e", "evm", "e", 4321)
    assert (app_dir / "contracts" / "Token.sol").is_file() and (app_dir / "deploy.py").is_file()
