"""The admin API's DA poster pause, bus, native upgrades and bridge resources against a real
devnet (`rollup up --detach` with the template pair, the local DA and an Anvil L1): the
poster paused posts nothing while blocks go on and catches up once resumed; a cross-app
message shows in the channels and by id with its blocks on both chains; an upgrade scheduled
through the API is listed and takes effect at its height; a deposit is pending while the
sequencer is paused and gone once it is credited."""

from __future__ import annotations

import time
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
from tests.conftest import BOOK_CHAIN, TOKEN_CHAIN, render_pair
from tests.e2e.devnet import Devnet, detached_devnet
from tests.support import rpc, wait_for
from vm.native.abi import decode_args, encode_values, selector

pytestmark = pytest.mark.e2e

GWEI = 10**9
DEADLINE = 60.0
OWNER = Account.from_key(DEV_KEYS[0])  # the token's owner and holder of its supply
FILLER = Account.from_key(DEV_KEYS[6])
DEPOSITOR = DEV_KEYS[7]


@pytest.fixture(scope="module")
def devnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Devnet]:
    token, book = render_pair(tmp_path_factory.mktemp("apps"))
    data_dir = tmp_path_factory.mktemp("devnet") / "data"
    with detached_devnet(data_dir, str(token), str(book)) as net:
        yield net


@pytest.fixture(scope="module")
def client(devnet: Devnet) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=devnet.state["admin"]["url"], trust_env=False, timeout=60) as http:
        yield http


def headers(devnet: Devnet, which: str = "read_token_file") -> dict[str, str]:
    return {"Authorization": "Bearer " + Path(devnet.state["admin"][which]).read_text().strip()}


def app(devnet: Devnet, name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(a for a in devnet.state["apps"] if a["name"] == name)
    return found


def read(client: httpx.Client, devnet: Devnet, path: str) -> Any:
    response = client.get(path, headers=headers(devnet))
    assert response.status_code == 200, response.text
    return response.json()


def act(client: httpx.Client, devnet: Devnet, path: str, body: Any = None) -> Any:
    """A POST with the admin token, after checking that no token is 401 and the read-only
    one 403."""
    assert client.post(path, json=body).status_code == 401
    assert client.post(path, json=body, headers=headers(devnet)).status_code == 403
    response = client.post(path, json=body, headers=headers(devnet, "token_file"))
    assert response.status_code == 200, response.text
    return response.json()


def transact(
    url: str, chain_id: int, account: Any, to: str, data: bytes = b"", value: int = 0
) -> Any:
    nonce = int(rpc(url, "eth_getTransactionCount", account.address, "pending"), 16)
    tx = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "to": to_checksum_address(to),
        "value": value,
        "gas": 1_000_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": 0,
        "data": data,
    }
    raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
    tx_hash = rpc(url, "eth_sendRawTransaction", raw)
    receipt = wait_for(lambda: rpc(url, "eth_getTransactionReceipt", tx_hash), "a receipt")
    return receipt


def head(url: str) -> int:
    return int(rpc(url, "eth_blockNumber"), 16)


def new_block(devnet: Devnet) -> None:
    """Blocks are built for transactions (and heartbeats, far apart): one transfer."""
    token = app(devnet, "token")
    transact(token["rpc_url"], TOKEN_CHAIN, FILLER, "0x" + "42" * 20, value=1)


# ---- the DA poster's pause ----


def test_a_paused_poster_posts_nothing_while_blocks_go_on_and_catches_up(
    devnet: Devnet, client: httpx.Client
) -> None:
    url = app(devnet, "token")["rpc_url"]
    new_block(devnet)
    wait_for(lambda: (read(client, devnet, "/v1/apps/token/da")["posted_block"] or 0) > 0, "a post")
    paused = act(client, devnet, "/v1/apps/token/da/pause")
    assert paused["paused"] is True and paused["settled"] is True
    before = read(client, devnet, "/v1/apps/token/da")
    assert before["paused"] is True
    started = head(url)
    deadline = time.monotonic() + 4.0
    while time.monotonic() < deadline:  # blocks go on, for longer than the poster's delay
        new_block(devnet)
        time.sleep(0.3)
    during = read(client, devnet, "/v1/apps/token/da")
    assert head(url) >= started + 5
    assert during["posted_block"] == before["posted_block"]
    assert during["batches"] == before["batches"]
    assert during["backlog_blocks"] >= 5
    resumed = act(client, devnet, "/v1/apps/token/da/resume")
    assert resumed["paused"] is False
    target = head(url)
    wait_for(
        lambda: (read(client, devnet, "/v1/apps/token/da")["posted_block"] or 0) >= target,
        "the poster caught up",
        DEADLINE,
    )
    assert read(client, devnet, "/v1/apps/token/da")["paused"] is False


# ---- the bus ----


def test_a_cross_app_message_shows_in_the_channels_and_by_id(
    devnet: Devnet, client: httpx.Client
) -> None:
    token, book = app(devnet, "token"), app(devnet, "book")
    owner = bytes.fromhex(OWNER.address[2:])
    data = selector("send_to(uint64,address,address,uint256)") + encode_values(
        ["uint64", "address", "address", "uint256"],
        [BOOK_CHAIN, bytes.fromhex(book["address"][2:]), owner, 5 * 10**18],
    )
    receipt = transact(token["rpc_url"], TOKEN_CHAIN, OWNER, token["address"], data)
    assert receipt["status"] == "0x1"
    sent_block = int(receipt["blockNumber"], 16)
    block = rpc(token["rpc_url"], "rollup_getBlockMessages", hex(sent_block))
    (message,) = block["outbound"]
    path = f"/v1/apps/token/bus/messages/{message['id']}"

    def settled() -> dict[str, Any] | None:
        view: dict[str, Any] = read(client, devnet, path)
        result = view["result"]
        return view if result and result["executed"] else None

    view = wait_for(settled, "the message executed and its result run", DEADLINE)
    assert view["status"] == "executed" and view["kind"] == "call"
    assert (view["src_app"], view["dst_app"]) == ("token", "book")
    assert view["sent"]["block_number"] == sent_block
    assert view["sent"]["block_hash"] == receipt["blockHash"]
    executed = view["executed"]
    assert executed["app"] == "book" and executed["succeeded"] is True
    book_block = rpc(book["rpc_url"], "rollup_getBlockMessages", hex(executed["block_number"]))
    assert message["id"] in [m["id"] for m in book_block["inbound"]]
    assert book_block["blockHash"] == executed["block_hash"]
    result = view["result"]
    assert result["success"] is True and result["sent"]["app"] == "book"
    assert result["executed"]["app"] == "token" and result["executed"]["succeeded"] is True
    from_book = read(client, devnet, f"/v1/apps/book/bus/messages/{message['id']}")
    assert from_book | {"acknowledged": None} == view | {"acknowledged": None}  # (saved ~1/s)

    def acknowledged() -> dict[str, Any] | None:
        channels = read(client, devnet, "/v1/apps/token/bus/channels")["channels"]
        (channel,) = [c for c in channels if c["peer_app"] == "book"]
        return channel if channel["acknowledged"] >= 1 else None

    channel = wait_for(acknowledged, "the message acknowledged", DEADLINE)
    assert channel["peer_chain"] == BOOK_CHAIN and channel["sent"] >= 1
    assert channel["executed"] == channel["sent"] and channel["backlog"] == 0
    assert channel["inbound_executed"] >= 1  # the result came back
    book_channels = read(client, devnet, "/v1/apps/book/bus/channels")["channels"]
    (back,) = [c for c in book_channels if c["peer_app"] == "token"]
    assert back["inbound_executed"] >= 1 and back["sent"] >= 1
    assert client.get("/v1/apps/token/bus/channels").status_code == 401
    unknown = client.get("/v1/apps/token/bus/messages/0x" + "ab" * 32, headers=headers(devnet))
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")


# ---- native upgrades ----


def version(url: str, address: str) -> int | None:
    call = {"to": address, "data": "0x" + selector("version()").hex()}
    try:
        out = rpc(url, "eth_call", call, "latest")
    except Exception:  # noqa: BLE001 - the old code has no version()
        return None
    (value,) = decode_args(["uint256"], bytes.fromhex(out[2:]))
    return int(value)


def test_an_upgrade_scheduled_through_the_api_takes_effect_at_its_height(
    devnet: Devnet, client: httpx.Client
) -> None:
    token = app(devnet, "token")
    url = token["rpc_url"]
    before = read(client, devnet, "/v1/apps/token/upgrades")
    assert before["owner_key_held"] is True
    source = (Path(token["app_dir"]) / "app.py").read_text().rstrip("\n")
    source += "\n\n    @view\n    def version(self) -> uint256:\n        return 7\n"
    height = head(url) + 4
    body = {"source": source, "height": height}
    scheduled = act(client, devnet, "/v1/apps/token/upgrades", body)
    assert scheduled["height"] == height and scheduled["signed_by"] == "devnet"
    listed = read(client, devnet, "/v1/apps/token/upgrades")["items"]
    assert (listed[0]["id"], listed[0]["state"], listed[0]["height"]) == (
        scheduled["id"],
        "scheduled",
        height,
    )
    assert read(client, devnet, f"/v1/apps/token/upgrades/{scheduled['id']}")["source"] == source
    assert version(url, token["address"]) is None
    while head(url) < height:
        new_block(devnet)
    after = read(client, devnet, "/v1/apps/token/upgrades")
    assert after["code_hash"] == scheduled["id"]
    assert (after["items"][0]["id"], after["items"][0]["state"]) == (scheduled["id"], "active")
    assert version(url, token["address"]) == 7


# ---- the bridge ----


def test_a_deposit_is_pending_until_it_is_credited(devnet: Devnet, client: httpx.Client) -> None:
    token = app(devnet, "token")
    to = "0x" + "5a" * 20
    bridge = read(client, devnet, "/v1/apps/token/bridge")
    assert bridge["portal"] == devnet.state["da"]["portal"]
    assert bridge["pending_deposits"] == []
    # the sequencer paused: the deposit cannot be credited while the test looks
    act(client, devnet, "/v1/apps/token/sequencer/pause")
    try:
        portal = Portal(L1Client(devnet.state["l1"]["rpc_url"], DEPOSITOR), _raw(bridge["portal"]))
        sent = portal.deposit_eth(TOKEN_CHAIN, _raw(to), 12345)
        pending = read(client, devnet, "/v1/apps/token/bridge")["pending_deposits"]
        assert [(d["nonce"], d["to"], d["mint"]) for d in pending] == [
            (sent.deposit.nonce, to, 12345)
        ]
        assert pending[0]["l2_transaction"] == "0x" + sent.deposit.hash.hex()
    finally:
        act(client, devnet, "/v1/apps/token/sequencer/resume")

    def credited() -> bool:
        return int(rpc(token["rpc_url"], "eth_getBalance", to, "latest"), 16) == 12345

    wait_for(credited, "the deposit credited", DEADLINE)
    after = read(client, devnet, "/v1/apps/token/bridge")
    assert after["pending_deposits"] == []
    assert after["next_deposit_nonce"] == sent.deposit.nonce + 1
    assert after["l1_origin"]["number"] >= sent.deposit.l1_block


def _raw(text: str) -> bytes:
    return bytes.fromhex(text[2:])
