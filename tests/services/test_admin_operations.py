"""The admin API's DA poster pause, bus, native upgrades and bridge resources over a real node
in-process (its JSON-RPC on uvicorn on loopback, with its block producer, recorded in a
devnet.json that `DevnetFleet` reads): a message sent shows in the channels and by id, an
upgrade scheduled through the API activates at its height, a withdrawal shows and becomes
provable once a batch covers it; the poster's pause on the poster itself."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
import uvicorn
from eth_account import Account
from eth_utils import to_checksum_address
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import positive_data_acceptance

from da.poster import Poster
from rollup.errors import Unauthorized, rpc_code
from rollup.genesis import DEV_KEYS
from sequencer.node import Sequencer
from services.admin.app import create_app
from services.admin.bus import median_bound
from services.admin.fleet import DevnetFleet
from services.admin.hosts import LOOPBACK_HOSTS
from services.admin.tokens import Tokens, ensure_tokens
from services.admin.upgrades import upgrade_call
from services.da_node import PausablePoster, register_da_service
from services.node import open_node
from services.process import free_port
from services.producer import BlockProducer
from services.rpc import admin
from services.rpc.server import RpcServer
from services.rpc.server import create_app as rpc_app
from services.rpcclient import RpcCallError, rpc_call
from services.scaffold import scaffold
from tests.services.test_admin import assert_problem, bearer, operations
from tests.services.test_admin_fleet import write_devnet
from vm.bridge import initiate_withdrawal_calldata
from vm.native.abi import encode_values, selector
from vm.native.upgrades import UPGRADE_ADDRESS

CHAIN_ID = 901001
PEER_CHAIN = 902002
GWEI = 10**9
OWNER = Account.from_key(DEV_KEYS[0])  # the template's owner, holder of its supply
OTHER = Account.from_key(DEV_KEYS[4])
L2_TO_L1 = "0x" + "00" * 17 + "0f0004"
HASH = "0x" + "ab" * 32


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Sequencer]:
    app_dir = scaffold(tmp_path / "app", "token", "tok", CHAIN_ID)
    sequencer = open_node(app_dir, tmp_path / "data")
    try:
        yield sequencer
    finally:
        sequencer.close()


@pytest.fixture
def tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Tokens]:
    found = ensure_tokens(tmp_path / "devnet")
    monkeypatch.setenv("ROLLUP_ADMIN_TOKEN_FILE", str(found.admin_file))
    admin.expected_token.cache_clear()
    yield found
    admin.expected_token.cache_clear()


@dataclass
class Served:
    client: TestClient
    rpc_url: str
    node: Sequencer
    fleet: DevnetFleet


@pytest.fixture
def served(node: Sequencer, tokens: Tokens, tmp_path: Path) -> Iterator[Served]:
    """The node's JSON-RPC on uvicorn in a thread, recorded in devnet.json (with a second,
    unreachable app of chain PEER_CHAIN); the admin API over it."""
    port = free_port()
    producer = BlockProducer(node, node.manifest.block_interval_ms)
    config = uvicorn.Config(
        rpc_app(RpcServer(node, producer)),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        loop="asyncio",
    )
    server = uvicorn.Server(config)

    async def run() -> None:
        producer.start()
        try:
            await server.serve()
        finally:
            await producer.stop()

    thread = threading.Thread(target=asyncio.run, args=(run(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the node did not start"
        time.sleep(0.02)
    data_dir = tmp_path / "devnet"
    log = tmp_path / "tok.log"
    log.write_text("2026-01-01 00:00:00,000 INFO services.node: started\n")
    state = write_devnet(data_dir, 2**22 + 12345, log)
    tok = state["apps"][0]
    tok |= {
        "rpc_url": f"http://127.0.0.1:{port}",
        "port": port,
        "app_dir": str(tmp_path / "app"),
        "address": "0x" + node.manifest.address.hex(),
    }
    peer = dict(tok, name="book", chain_id=PEER_CHAIN, stopped=True)
    state["apps"].append(peer)
    (data_dir / "devnet.json").write_text(json.dumps(state))
    fleet = DevnetFleet(data_dir, tokens.admin)
    app = create_app(fleet, tokens, ("testserver", *LOOPBACK_HOSTS), nodes=fleet)
    try:
        client = TestClient(app, base_url="http://127.0.0.1")
        yield Served(client, tok["rpc_url"], node, fleet)
    finally:
        server.should_exit = True
        thread.join(10)


def get(served: Served, tokens: Tokens, path: str) -> Any:
    response = served.client.get(path, headers=bearer(tokens.read))
    assert response.status_code == 200, response.text
    return response.json()


def post(served: Served, tokens: Tokens, path: str, body: Any = None) -> Any:
    response = served.client.post(path, json=body, headers=bearer(tokens.admin))
    assert response.status_code == 200, response.text
    return response.json()


def transact(served: Served, account: Any, to: str, data: bytes = b"", value: int = 0) -> Any:
    """Sign, send and wait for the receipt."""
    nonce = int(rpc_call(served.rpc_url, "eth_getTransactionCount", account.address, "pending"), 16)
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": to_checksum_address(to),
        "value": value,
        "gas": 1_000_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": 0,
        "data": data,
    }
    raw = "0x" + bytes(account.sign_transaction(tx).raw_transaction).hex()
    tx_hash = rpc_call(served.rpc_url, "eth_sendRawTransaction", raw)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        receipt = rpc_call(served.rpc_url, "eth_getTransactionReceipt", tx_hash)
        if receipt is not None:
            return receipt
        time.sleep(0.02)
    raise AssertionError("no receipt")


def advance_to(served: Served, height: int) -> None:
    """Blocks are built for transactions: send transfers until block `height` exists."""
    while served.node.committed.number < height:
        transact(served, OTHER, "0x" + "42" * 20, value=1)


# ---- authentication on every new path ----

SAMPLES = {"{message_id}": HASH, "{upgrade_id}": HASH}
NEW = ("/da/pause", "/da/resume", "/bus/", "/upgrades", "/bridge")


def test_every_new_path_needs_a_token_and_the_admin_one_to_change(
    served: Served, tokens: Tokens
) -> None:
    found = []
    for method, path in operations(served.client):
        for name, value in SAMPLES.items():
            path = path.replace(name, value)
        if any(part in path for part in NEW):
            found.append((method, path))
    assert sorted(found) == sorted(
        [
            ("POST", "/v1/apps/alpha/da/pause"),
            ("POST", "/v1/apps/alpha/da/resume"),
            ("GET", "/v1/apps/alpha/bus/channels"),
            ("GET", f"/v1/apps/alpha/bus/messages/{HASH}"),
            ("GET", "/v1/apps/alpha/upgrades"),
            ("POST", "/v1/apps/alpha/upgrades"),
            ("GET", f"/v1/apps/alpha/upgrades/{HASH}"),
            ("GET", "/v1/apps/alpha/bridge"),
        ]
    )
    for method, path in found:
        path = path.replace("/alpha/", "/tok/")
        for headers in ({}, bearer("wrong"), bearer(tokens.admin + "x")):
            assert_problem(served.client.request(method, path, headers=headers), 401)
        if method != "GET":
            read_only = served.client.request(method, path, headers=bearer(tokens.read), json={})
            assert_problem(read_only, 403)


# ---- the DA poster's pause ----


class FakeDA:
    """What admin_pauseDA drives on a node's DA service."""

    def __init__(self) -> None:
        self.paused = False

    def pause(self) -> bool:
        self.paused = True
        return True

    def resume(self) -> None:
        self.paused = False


def test_the_da_poster_is_paused_and_resumed_through_the_api(
    served: Served, tokens: Tokens
) -> None:
    assert_problem(
        served.client.post("/v1/apps/tok/da/pause", headers=bearer(tokens.admin)), 404
    )  # no poster on this node
    assert get(served, tokens, "/v1/apps/tok/da")["paused"] is None
    fake = FakeDA()
    register_da_service(served.node, fake)  # type: ignore[arg-type]
    paused = post(served, tokens, "/v1/apps/tok/da/pause")
    assert paused["paused"] is True and paused["settled"] is True and fake.paused
    assert paused["head"] == served.node.committed.number
    assert get(served, tokens, "/v1/apps/tok/da")["paused"] is True
    assert post(served, tokens, "/v1/apps/tok/da/resume")["paused"] is False
    assert not fake.paused and get(served, tokens, "/v1/apps/tok/da")["paused"] is False


def test_a_paused_poster_runs_no_cycle_and_pause_waits_for_the_one_in_flight(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cycles: list[float] = []
    inside, release = threading.Event(), threading.Event()

    def step(self: Poster) -> bool:
        cycles.append(time.monotonic())
        inside.set()
        release.wait(5)
        return True

    monkeypatch.setattr(Poster, "step", step)
    poster = PausablePoster.__new__(PausablePoster)
    poster._paused, poster._cycle = threading.Event(), threading.Lock()
    running = threading.Thread(target=poster.step)
    running.start()
    assert inside.wait(5)
    paused_at: list[float] = []

    def pause() -> None:
        assert poster.pause(wait_s=5) is True
        paused_at.append(time.monotonic())

    pausing = threading.Thread(target=pause)
    pausing.start()
    time.sleep(0.2)
    assert not paused_at  # it waits for the cycle in flight
    release.set()
    pausing.join(5)
    running.join(5)
    assert paused_at and poster.paused
    assert [poster.step() for _ in range(3)] == [False] * 3 and len(cycles) == 1
    poster.resume()
    assert poster.step() is True and len(cycles) == 2


# ---- the bus ----


def test_a_sent_message_shows_in_the_channels_and_by_id(served: Served, tokens: Tokens) -> None:
    channels = get(served, tokens, "/v1/apps/tok/bus/channels")
    assert channels["chain_id"] == CHAIN_ID and channels["round_trip_p50_seconds"] is None
    assert [c["peer_chain"] for c in channels["channels"]] == [PEER_CHAIN]
    assert channels["channels"][0]["sent"] == 0
    owner = bytes.fromhex(OWNER.address[2:])
    data = selector("send_to(uint64,address,address,uint256)") + encode_values(
        ["uint64", "address", "address", "uint256"], [PEER_CHAIN, b"\x22" * 20, owner, 5]
    )
    receipt = transact(served, OWNER, "0x" + served.node.manifest.address.hex(), data)
    assert receipt["status"] == "0x1"
    number = int(receipt["blockNumber"], 16)
    (message,) = served.node.block(number).outbound  # type: ignore[union-attr]
    (channel,) = get(served, tokens, "/v1/apps/tok/bus/channels")["channels"]
    assert channel == {
        "peer_chain": PEER_CHAIN,
        "peer_app": "book",
        "sent": 1,
        "acknowledged": 0,
        "executed": None,  # the peer is stopped
        "backlog": 1,
        "inbound_executed": 0,
    }
    view = get(served, tokens, f"/v1/apps/tok/bus/messages/0x{message.id.hex()}")
    assert view["status"] == "sent" and view["kind"] == "call"
    assert (view["src_app"], view["dst_app"], view["nonce"]) == ("tok", "book", 0)
    assert view["sent"] == {
        "chain_id": CHAIN_ID,
        "app": "tok",
        "block_number": number,
        "block_hash": receipt["blockHash"],
    }
    assert view["executed"] is None and view["acknowledged"] is False and view["result"] is None
    missing = served.client.get(f"/v1/apps/tok/bus/messages/{HASH}", headers=bearer(tokens.read))
    assert_problem(missing, 404)


def test_the_median_round_trip_is_the_bucket_holding_half_the_count() -> None:
    assert median_bound([]) is None
    assert median_bound([(0.1, 0), (float("inf"), 0)]) is None
    assert median_bound([(0.1, 1), (0.5, 3), (1.0, 4), (float("inf"), 4)]) == 0.5
    assert median_bound([(0.1, 0), (0.5, 1), (float("inf"), 4)]) == 0.5  # beyond: the largest


# ---- native upgrades ----

EXTRA = "\n\n    @view\n    def version(self) -> uint256:\n        return 2\n"


def new_source(served: Served) -> str:
    app_py = Path(served.fleet.record("tok")["app_dir"]) / "app.py"
    return app_py.read_text().rstrip("\n") + EXTRA


def version(served: Served) -> str:
    call = {
        "to": "0x" + served.node.manifest.address.hex(),
        "data": "0x" + selector("version()").hex(),
    }
    try:
        return str(rpc_call(served.rpc_url, "eth_call", call, "latest"))
    except Exception as exc:  # noqa: BLE001 - no such function before the upgrade
        return f"error: {exc}"


def test_an_upgrade_scheduled_through_the_api_activates_at_its_height(
    served: Served, tokens: Tokens
) -> None:
    before = get(served, tokens, "/v1/apps/tok/upgrades")
    assert before["owner"].lower() == OWNER.address.lower() and before["owner_key_held"]
    (active,) = before["items"]
    assert active["state"] == "active" and active["id"] == before["code_hash"]
    source = new_source(served)
    height = served.node.committed.number + 4
    scheduled = post(served, tokens, "/v1/apps/tok/upgrades", {"source": source, "height": height})
    assert scheduled["signed_by"] == "devnet" and scheduled["height"] == height
    listed = get(served, tokens, "/v1/apps/tok/upgrades")["items"]
    assert [(i["id"], i["state"], i["height"]) for i in listed] == [
        (scheduled["id"], "scheduled", height),
        (before["code_hash"], "active", None),
    ]
    assert listed[0]["transaction"] == scheduled["transaction"]
    one = get(served, tokens, f"/v1/apps/tok/upgrades/{scheduled['id']}")
    assert one["source"] == source
    assert version(served).startswith("error")
    advance_to(served, height)
    after = get(served, tokens, "/v1/apps/tok/upgrades")
    assert after["code_hash"] == scheduled["id"]
    # the old code is not the app's any more, and this API did not send it: not listed
    assert [(i["id"], i["state"], i["height"]) for i in after["items"]] == [
        (scheduled["id"], "active", height)
    ]
    assert int(version(served), 16) == 2


def test_a_refused_upgrade_is_a_problem_and_a_foreign_raw_transaction_a_bad_request(
    served: Served, tokens: Tokens
) -> None:
    past = {"source": new_source(served), "height": 1}
    advance_to(served, 2)
    refused = served.client.post("/v1/apps/tok/upgrades", json=past, headers=bearer(tokens.admin))
    assert_problem(refused, 422)
    assert "activation height" in refused.json()["detail"]
    # an upgrade of another app, signed by its owner: not this app's
    data = upgrade_call(b"\x33" * 20, b"x = 1\n", 100)
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": 0,
        "to": to_checksum_address(UPGRADE_ADDRESS),
        "value": 0,
        "gas": 1_000_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": 0,
        "data": data,
    }
    raw = "0x" + bytes(OWNER.sign_transaction(tx).raw_transaction).hex()
    foreign = served.client.post(
        "/v1/apps/tok/upgrades", json={"raw_transaction": raw}, headers=bearer(tokens.admin)
    )
    assert_problem(foreign, 400)
    both = served.client.post(
        "/v1/apps/tok/upgrades",
        json={"raw_transaction": raw, "source": "x", "height": 9},
        headers=bearer(tokens.admin),
    )
    assert_problem(both, 422)


def test_an_upgrade_signed_by_the_owner_is_sent_as_given(served: Served, tokens: Tokens) -> None:
    height = served.node.committed.number + 3
    app = served.node.manifest.address
    tx = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": int(
            rpc_call(served.rpc_url, "eth_getTransactionCount", OWNER.address, "pending"), 16
        ),
        "to": to_checksum_address(UPGRADE_ADDRESS),
        "value": 0,
        "gas": 16_000_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": 0,
        "data": upgrade_call(app, new_source(served).encode(), height),
    }
    raw = "0x" + bytes(OWNER.sign_transaction(tx).raw_transaction).hex()
    scheduled = post(served, tokens, "/v1/apps/tok/upgrades", {"raw_transaction": raw})
    assert scheduled["signed_by"] == "caller" and scheduled["height"] == height
    items = get(served, tokens, "/v1/apps/tok/upgrades")["items"]
    assert items[0]["id"] == scheduled["id"] and items[0]["state"] == "scheduled"


# ---- the bridge ----


@dataclass(frozen=True)
class Batch:
    index: int
    last_block: int
    output_root: bytes
    l1_block: int


class Posted:
    def __init__(self, last_block: int) -> None:
        self.batch = Batch(7, last_block, b"\x01" * 32, 3)

    def covering(self, block: int) -> Batch | None:
        return self.batch if block <= self.batch.last_block else None


def test_a_withdrawal_shows_and_is_provable_once_a_batch_covers_it(
    served: Served, tokens: Tokens
) -> None:
    bridge = get(served, tokens, "/v1/apps/tok/bridge")
    assert bridge["portal"] is None and bridge["pending_deposits"] == []
    assert bridge["next_deposit_nonce"] == 0 and bridge["withdrawals"] == []
    target = b"\x55" * 20
    data = initiate_withdrawal_calldata(target, 100_000, b"")
    receipt = transact(served, OWNER, L2_TO_L1, data, value=1234)
    assert receipt["status"] == "0x1"
    number = int(receipt["blockNumber"], 16)
    (withdrawal,) = get(served, tokens, "/v1/apps/tok/bridge")["withdrawals"]
    assert withdrawal["l2_block"] == number and withdrawal["value"] == 1234
    assert withdrawal["target"] == "0x" + target.hex() and withdrawal["provable"] is False
    assert withdrawal["proven"] is None and withdrawal["finalized"] is None
    served.node.posted = Posted(number)
    served.node.safe_head = number
    (covered,) = get(served, tokens, "/v1/apps/tok/bridge")["withdrawals"]
    assert covered["provable"] is True and covered["batch_index"] == 7


# ---- the schema ----


def test_the_new_resources_answer_as_their_schema_says(served: Served, tokens: Tokens) -> None:
    """Schemathesis over the new operations: no 5xx, every answer as the schema says (a
    valid upgrade request the chain refuses is a 4xx: that check is left out there)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.client.app)
    checked = 0
    tags = "^(da-control|bus|upgrades|bridge)$"
    for result in schema.include(tag_regex=tags).get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            excluded: list[Any] = [] if case.method == "GET" else [positive_data_acceptance]
            case.call_and_validate(headers=bearer(tokens.admin), excluded_checks=excluded)

        check()
        checked += 1
    assert checked == 8


# ---- the node's side ----


@pytest.mark.parametrize("method", ["admin_pauseDA", "admin_resumeDA", "admin_upgrades"])
def test_the_nodes_new_admin_methods_need_its_token(
    served: Served, tokens: Tokens, method: str
) -> None:
    fake = FakeDA()
    register_da_service(served.node, fake)  # type: ignore[arg-type]
    with pytest.raises(RpcCallError) as refused:
        rpc_call(served.rpc_url, method, tokens.admin + "x")
    assert refused.value.code == rpc_code(Unauthorized(""))
    assert not fake.paused
    assert rpc_call(served.rpc_url, method, tokens.admin) is not None


def test_the_bus_and_bridge_methods_check_their_parameters(served: Served) -> None:
    cases: list[tuple[str, list[Any]]] = [
        ("rollup_getBusChannels", [["0x1"] * 257]),
        ("rollup_getBusChannels", [["0x0"]]),
        ("rollup_getBridgeStatus", ["0x0"]),
        ("rollup_getBridgeStatus", ["0x65"]),
        ("rollup_getMessage", ["0x12"]),
    ]
    for method, params in cases:
        with pytest.raises(RpcCallError) as refused:
            rpc_call(served.rpc_url, method, *params)
        assert refused.value.code == -32602, (method, params)
    assert rpc_call(served.rpc_url, "rollup_getMessage", HASH) is None
    assert rpc_call(served.rpc_url, "rollup_getBusChannels")["channels"] == []


def test_without_the_owners_key_an_upgrade_needs_a_signed_transaction(
    served: Served, tokens: Tokens
) -> None:
    path = Path(served.fleet.data_dir) / "devnet.json"
    state = json.loads(path.read_text())
    source = new_source(served)
    state["apps"][0]["app_dir"] = str(Path(state["apps"][0]["app_dir"]) / "elsewhere")
    path.write_text(json.dumps(state))  # the devnet no longer knows the app's manifest
    assert get(served, tokens, "/v1/apps/tok/upgrades")["owner_key_held"] is False
    body = {"source": source, "height": served.node.committed.number + 5}
    refused = served.client.post("/v1/apps/tok/upgrades", json=body, headers=bearer(tokens.admin))
    assert_problem(refused, 409)
    assert "raw_transaction" in refused.json()["detail"]
