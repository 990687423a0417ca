"""The admin API's explorer, DA and logs resources against a real devnet (`rollup up
--detach`): the newest blocks, a transaction by hash after a transfer, a future-nonce
transaction dropped from the pool through the API (and the same one accepted again once its
gap is filled), the DA poster's status with the batcher's L1 balance, the node's log."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account

from rollup.genesis import DEV_KEYS
from services.scaffold import scaffold
from tests.e2e.devnet import Devnet, detached_devnet
from tests.support import rpc, wait_for

pytestmark = pytest.mark.e2e

CHAIN_ID = 901001
GWEI = 10**9
ACCOUNT = Account.from_key(DEV_KEYS[5])


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    app_dir = scaffold(tmp_path_factory.mktemp("app"), "token", "tok", CHAIN_ID)
    with detached_devnet(tmp_path_factory.mktemp("devnet") / "data", str(app_dir)) as net:
        yield net


@pytest.fixture(scope="module")
def client(devnet: Devnet) -> Iterator[httpx.Client]:
    admin = devnet.state["admin"]
    with httpx.Client(base_url=admin["url"], trust_env=False, timeout=30.0) as http:
        yield http


def headers(devnet: Devnet, which: str = "read_token_file") -> dict[str, str]:
    return {"Authorization": "Bearer " + Path(devnet.state["admin"][which]).read_text().strip()}


def rpc_url(devnet: Devnet) -> str:
    url: str = devnet.state["apps"][0]["rpc_url"]
    return url


def signed(devnet: Devnet, nonce: int) -> str:
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x" + "42" * 20,
        "value": 3,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + ACCOUNT.sign_transaction(tx).raw_transaction.hex()


def nonce(devnet: Devnet) -> int:
    return int(rpc(rpc_url(devnet), "eth_getTransactionCount", ACCOUNT.address, "latest"), 16)


def read(client: httpx.Client, devnet: Devnet, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=headers(devnet))
    assert response.status_code == 200, response.text
    return response.json()


def mined(devnet: Devnet, tx_hash: str) -> dict[str, Any]:
    receipt: dict[str, Any] = wait_for(
        lambda: rpc(rpc_url(devnet), "eth_getTransactionReceipt", tx_hash), "mined"
    )
    return receipt


def test_blocks_and_a_transaction_by_hash_after_a_transfer(
    devnet: Devnet, client: httpx.Client
) -> None:
    tx_hash = rpc(rpc_url(devnet), "eth_sendRawTransaction", signed(devnet, nonce(devnet)))
    receipt = mined(devnet, tx_hash)
    number = int(receipt["blockNumber"], 16)
    tx = read(client, devnet, f"/v1/apps/tok/transactions/{tx_hash}")
    assert tx["status"] == "included" and tx["block_number"] == number
    assert tx["sender"].lower() == ACCOUNT.address.lower() and tx["value"] == 3
    assert tx["receipt"]["succeeded"] is True
    numbers, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = read(client, devnet, "/v1/apps/tok/blocks", **params)
        numbers += [block["number"] for block in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert numbers[0] >= number and numbers == list(range(numbers[0], -1, -1))
    block = read(client, devnet, f"/v1/apps/tok/blocks/{number}")
    assert tx_hash in block["transactions"]


def test_a_queued_transaction_dropped_through_the_api_can_be_sent_again(
    devnet: Devnet, client: httpx.Client
) -> None:
    base = nonce(devnet)
    future = signed(devnet, base + 1)
    tx_hash = rpc(rpc_url(devnet), "eth_sendRawTransaction", future)
    pooled = read(client, devnet, "/v1/apps/tok/mempool")["items"]
    assert [(tx["hash"], tx["status"]) for tx in pooled] == [(tx_hash, "queued")]
    path = f"/v1/apps/tok/mempool/{tx_hash}"
    assert client.delete(path, headers=headers(devnet)).status_code == 403
    dropped = client.delete(path, headers=headers(devnet, "token_file"))
    assert dropped.status_code == 200, dropped.text
    assert dropped.json() == {"name": "tok", "dropped": [tx_hash]}
    assert read(client, devnet, "/v1/apps/tok/mempool")["items"] == []
    pool = rpc(rpc_url(devnet), "txpool_contentFrom", ACCOUNT.address)
    assert pool == {"pending": {}, "queued": {}}
    assert (
        client.get(f"/v1/apps/tok/transactions/{tx_hash}", headers=headers(devnet)).status_code
        == 404
    )
    mined(devnet, rpc(rpc_url(devnet), "eth_sendRawTransaction", signed(devnet, base)))
    assert rpc(rpc_url(devnet), "eth_sendRawTransaction", future) == tx_hash
    assert mined(devnet, tx_hash)["status"] == "0x1"


def test_the_da_poster_status_names_the_batcher_and_its_balance(
    devnet: Devnet, client: httpx.Client
) -> None:
    def posted() -> dict[str, Any] | None:
        view: dict[str, Any] = read(client, devnet, "/v1/apps/tok/da")
        return view if (view["posted_block"] or 0) > 0 else None

    da = wait_for(posted, "a batch posted")
    assert da["backend"] == "local" and da["inbox"] == devnet.state["da"]["inbox"]
    assert da["backlog_blocks"] is not None and da["post_failures"] == 0
    assert da["batcher"] is not None and da["batcher"] != "0x" + "00" * 20
    assert da["batcher_balance_wei"] > 0


def test_the_node_log_is_read_and_followed(devnet: Devnet, client: httpx.Client) -> None:
    logs = read(client, devnet, "/v1/apps/tok/logs", lines=50)
    assert logs["name"] == "tok" and logs["lines"]
    assert len(logs["lines"]) <= 50
    assert client.get("/v1/apps/tok/logs").status_code == 401
    query = {"lines": 1, "follow": 1}
    with client.stream("GET", "/v1/apps/tok/logs", params=query, headers=headers(devnet)) as out:
        assert out.status_code == 200
        assert out.headers["content-type"].startswith("text/event-stream")
        first = next(line for line in out.iter_lines() if line.startswith("data: "))
    assert first[6:] and first[6:] in Path(devnet.state["apps"][0]["log"]).read_text()
