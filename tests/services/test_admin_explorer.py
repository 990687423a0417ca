"""The admin API's explorer, DA and logs resources over a real node in-process: a `Sequencer`
whose JSON-RPC app runs on uvicorn on loopback (with its block producer), recorded in a
devnet.json that `DevnetFleet` reads; the pool's drop on the node itself (its waiters hear)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from eth_account import Account
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from prometheus_client.parser import text_string_to_metric_families
from schemathesis.core.result import Ok

from rollup.errors import RollupError, TxDropped
from rollup.genesis import DEV_KEYS
from rollup.types import Receipt
from sequencer.node import Sequencer
from services.admin.app import create_app
from services.admin.fleet import DevnetFleet
from services.admin.hosts import LOOPBACK_HOSTS
from services.admin.pagination import encode_cursor
from services.admin.sampler import parse_metrics
from services.admin.stream import StreamSlots
from services.admin.targets import scrape_targets
from services.admin.tokens import Tokens, ensure_tokens
from services.node import open_node
from services.process import free_port
from services.producer import BlockProducer
from services.rpc import admin
from services.rpc.server import RpcServer
from services.rpc.server import create_app as rpc_app
from services.rpcclient import rpc_call
from services.scaffold import scaffold
from tests.services.test_admin import FakeFleet, assert_problem, bearer, operations
from tests.services.test_admin_fleet import write_devnet
from vm.state import get_account

CHAIN_ID = 901001
GWEI = 10**9
ACCOUNT = Account.from_key(DEV_KEYS[3])
SENDER = bytes.fromhex(ACCOUNT.address[2:])


def signed(nonce: int, value: int = 1) -> str:
    tx = {
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "to": "0x" + "42" * 20,
        "value": value,
        "gas": 21_000,
        "maxFeePerGas": 2 * GWEI,
        "maxPriorityFeePerGas": GWEI,
    }
    return "0x" + bytes(ACCOUNT.sign_transaction(tx).raw_transaction).hex()


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
    """The devnet's tokens, the admin one named to the node as the devnet names it."""
    found = ensure_tokens(tmp_path / "devnet")
    monkeypatch.setenv("ROLLUP_ADMIN_TOKEN_FILE", str(found.admin_file))
    admin.expected_token.cache_clear()
    yield found
    admin.expected_token.cache_clear()


@dataclass
class Served:
    client: TestClient
    rpc_url: str
    log: Path
    node: Sequencer
    fleet: DevnetFleet


@pytest.fixture
def served(node: Sequencer, tokens: Tokens, tmp_path: Path) -> Iterator[Served]:
    """The node's JSON-RPC on uvicorn in a thread, recorded in devnet.json; the admin API."""
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
    state["apps"][0] |= {"rpc_url": f"http://127.0.0.1:{port}", "port": port}
    (data_dir / "devnet.json").write_text(json.dumps(state))
    fleet = DevnetFleet(data_dir, tokens.admin)
    app = create_app(fleet, tokens, nodes=fleet)
    try:
        client = TestClient(app, base_url="http://127.0.0.1")
        yield Served(client, state["apps"][0]["rpc_url"], log, node, fleet)
    finally:
        server.should_exit = True
        thread.join(10)


def get(served: Served, tokens: Tokens, path: str, **params: Any) -> Any:
    response = served.client.get(path, params=params, headers=bearer(tokens.read))
    assert response.status_code == 200, response.text
    return response.json()


def send(served: Served, raw: str) -> str:
    result: str = rpc_call(served.rpc_url, "eth_sendRawTransaction", raw)
    return result


def nonce_of(node: Sequencer) -> int:
    return get_account(node.state, SENDER)[0]


# ---- authentication on the new paths ----

SAMPLES = {"{tx_hash}": "0x" + "ab" * 32, "{number}": "0"}


def concrete(path: str) -> str:
    for name, value in SAMPLES.items():
        path = path.replace(name, value)
    return path


def test_every_new_path_needs_a_token_and_the_admin_one_to_change(
    served: Served, tokens: Tokens
) -> None:
    found = [(m, concrete(p)) for m, p in operations(served.client)]
    new = [(m, p) for m, p in found if any(part in p for part in SAMPLES.values())]
    new += [(m, p) for m, p in found if p.rsplit("/", 1)[-1] in ("mempool", "blocks", "da", "logs")]
    assert ("DELETE", "/v1/apps/alpha/mempool/" + SAMPLES["{tx_hash}"]) in new
    assert len(new) == 7, new
    for method, path in new:
        for headers in ({}, bearer("wrong"), bearer(tokens.admin + "x")):
            assert_problem(served.client.request(method, path, headers=headers), 401)
        if method != "GET":
            assert_problem(served.client.request(method, path, headers=bearer(tokens.read)), 403)


def test_without_nodes_the_api_documents_no_explorer(tmp_path: Path) -> None:
    client = TestClient(
        create_app(FakeFleet(), ensure_tokens(tmp_path)), base_url="http://127.0.0.1"
    )
    assert not [p for _, p in operations(client) if "mempool" in p or "logs" in p]


# ---- the pool ----


def test_the_pool_lists_pages_and_drops_a_transaction_and_its_later_nonces(
    served: Served, tokens: Tokens
) -> None:
    base = nonce_of(served.node)
    queued = [signed(base + 1), signed(base + 2), signed(base + 3)]
    hashes = [send(served, raw) for raw in queued]
    page = get(served, tokens, "/v1/apps/tok/mempool")
    assert [tx["hash"] for tx in page["items"]] == hashes and page["next_cursor"] is None
    first = page["items"][0]
    assert first["status"] == "queued" and first["nonce"] == base + 1
    assert first["sender"].lower() == ACCOUNT.address.lower() and first["value"] == 1
    seen, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = get(served, tokens, "/v1/apps/tok/mempool", **params)
        seen += [tx["hash"] for tx in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == hashes
    mine = get(served, tokens, "/v1/apps/tok/mempool", sender=ACCOUNT.address)
    assert len(mine["items"]) == 3
    other = get(served, tokens, "/v1/apps/tok/mempool", sender="0x" + "99" * 20)
    assert other["items"] == []

    dropped = served.client.delete(
        f"/v1/apps/tok/mempool/{hashes[1]}", headers=bearer(tokens.admin)
    )
    assert dropped.status_code == 200, dropped.text
    assert dropped.json() == {"name": "tok", "dropped": hashes[1:]}
    left = get(served, tokens, "/v1/apps/tok/mempool")["items"]
    assert [tx["hash"] for tx in left] == hashes[:1]
    again = served.client.delete(f"/v1/apps/tok/mempool/{hashes[1]}", headers=bearer(tokens.admin))
    assert "no transaction" in assert_problem(again, 404)["detail"]

    send(served, signed(base))  # fills the gap: base and base + 1 go in
    assert send(served, queued[1]) == hashes[1]  # the dropped nonce may be sent again
    deadline = time.monotonic() + 10
    while nonce_of(served.node) < base + 3:
        assert time.monotonic() < deadline, "the resent transaction was not included"
        time.sleep(0.05)


def test_a_pool_too_large_to_list_is_a_409_that_names_the_sender_filter(
    served: Served, tokens: Tokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.rpc import txpool

    monkeypatch.setattr(txpool, "MAX_LISTED", 1)
    base = nonce_of(served.node)
    for nonce in (base + 1, base + 2):
        send(served, signed(nonce))
    response = served.client.get("/v1/apps/tok/mempool", headers=bearer(tokens.read))
    assert "?sender=" in assert_problem(response, 409)["detail"]
    mine = get(served, tokens, "/v1/apps/tok/mempool", sender=ACCOUNT.address)
    assert [tx["nonce"] for tx in mine["items"]] == [base + 1, base + 2]


def test_a_drop_wakes_the_waiters_of_the_transaction_and_its_later_nonces(
    node: Sequencer,
) -> None:
    base = nonce_of(node)
    txs = [node.submit_raw(bytes.fromhex(signed(n)[2:])) for n in (base, base + 1, base + 3)]
    heard: dict[bytes, list[Receipt | RollupError]] = {}

    def hear(tx_hash: bytes) -> Callable[[Receipt | RollupError], None]:
        return heard.setdefault(tx_hash, []).append

    for tx in txs:
        node.watch(tx.hash, hear(tx.hash))
    dropped = node.drop_transaction(txs[1].hash)
    assert [tx.hash for tx in dropped] == [txs[1].hash, txs[2].hash]
    assert set(node.mempool.by_hash) == {txs[0].hash}
    assert node.mempool.ready_count == 1 and node.mempool.queued_count == 0
    (own,) = heard[txs[1].hash]
    assert isinstance(own, TxDropped) and "an operator removed it" in own.message
    (later,) = heard[txs[2].hash]
    assert isinstance(later, TxDropped) and f"(nonce {base + 1}) was dropped" in later.message
    assert node.drop_transaction(txs[1].hash) == []
    sealed = node.produce(1_800_000_000_000)
    assert sealed is not None and [t.hash for t in sealed.block.transactions] == [txs[0].hash]
    node.submit_raw(bytes.fromhex(signed(base + 1)[2:]))  # the nonce is free again
    assert node.mempool.ready_count == 1


def test_the_node_refuses_a_drop_without_the_token(served: Served) -> None:
    answer = httpx.post(
        served.rpc_url,
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "admin_dropTransaction",
            "params": ["x", "0x" + "00" * 32],
        },
    ).json()
    assert answer["error"]["message"] == "wrong admin token"


# ---- blocks and transactions ----


def wait_included(served: Served, hash_: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:
        receipt = rpc_call(served.rpc_url, "eth_getTransactionReceipt", hash_)
        if receipt is not None:
            return dict(receipt)
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_blocks_newest_first_one_block_and_a_transaction_with_its_receipt(
    served: Served, tokens: Tokens
) -> None:
    hashes = []
    for _ in range(3):
        hashes.append(send(served, signed(nonce_of(served.node), value=7)))
        wait_included(served, hashes[-1])
    head = int(rpc_call(served.rpc_url, "eth_blockNumber"), 16)
    page = get(served, tokens, "/v1/apps/tok/blocks", limit=2)
    assert [b["number"] for b in page["items"]] == [head, head - 1]
    numbers, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = get(served, tokens, "/v1/apps/tok/blocks", **params)
        numbers += [b["number"] for b in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert numbers == list(range(head, -1, -1))
    bad = served.client.get(
        "/v1/apps/tok/blocks", params={"cursor": encode_cursor("x")}, headers=bearer(tokens.read)
    )
    assert_problem(bad, 400)

    tx = get(served, tokens, f"/v1/apps/tok/transactions/{hashes[-1]}")
    assert tx["status"] == "included" and tx["value"] == 7 and tx["hash"] == hashes[-1]
    assert tx["receipt"]["succeeded"] is True and tx["receipt"]["gas_used"] == 21_000
    block = get(served, tokens, f"/v1/apps/tok/blocks/{tx['block_number']}")
    assert hashes[-1] in block["transactions"] and block["transaction_count"] >= 1
    assert block["number"] == tx["block_number"]
    missing = served.client.get("/v1/apps/tok/blocks/999999", headers=bearer(tokens.read))
    assert_problem(missing, 404)
    unknown = served.client.get(
        "/v1/apps/tok/transactions/0x" + "00" * 32, headers=bearer(tokens.read)
    )
    assert_problem(unknown, 404)
    pending_hash = send(served, signed(nonce_of(served.node) + 5))
    pending = get(served, tokens, f"/v1/apps/tok/transactions/{pending_hash}")
    assert pending["status"] == "pending" and pending["receipt"] is None
    assert pending["block_number"] is None
    nowhere = served.client.get("/v1/apps/nope/blocks", headers=bearer(tokens.read))
    assert_problem(nowhere, 404)


# ---- DA ----


def test_the_da_view_says_what_the_node_and_the_devnet_say(served: Served, tokens: Tokens) -> None:
    with served.log.open("a") as out:
        out.write("2026-01-01 00:00:01,000 WARNING da.poster: ")
        out.write("DA poster cycle failed (retry in 0.5 s): L1 down\n")
        out.write("2026-01-01 00:00:02,000 INFO services.node: fine\n")
    da = get(served, tokens, "/v1/apps/tok/da")
    assert da["name"] == "tok" and da["backend"] is None and da["batcher"] is None
    assert da["last_error"].endswith("DA poster cycle failed (retry in 0.5 s): L1 down")
    assert da["posted_block"] is None  # this node runs no poster


def test_the_poster_series_are_read_from_the_node_metrics() -> None:
    text = "\n".join(
        [
            "# TYPE rollup_da_posted_block gauge",
            'rollup_da_posted_block{app="tok"} 41.0',
            "# TYPE rollup_da_finalized_block gauge",
            'rollup_da_finalized_block{app="tok"} 40.0',
            "# TYPE rollup_da_backlog_blocks gauge",
            'rollup_da_backlog_blocks{app="tok"} 3.0',
            "# TYPE rollup_da_post_failures counter",
            'rollup_da_post_failures_total{app="tok"} 2.0',
            "",
        ]
    )
    found = parse_metrics(text)
    assert found["da_posted_block"] == 41 and found["da_finalized_block"] == 40
    assert found["da_backlog_blocks"] == 3 and found["da_post_failures"] == 2


# ---- logs ----


def test_logs_tail_and_follow(served: Served, tokens: Tokens) -> None:
    with served.log.open("a") as out:
        out.writelines(f"line {i}\n" for i in range(5))
    tail = get(served, tokens, "/v1/apps/tok/logs", lines=2)
    assert tail == {"name": "tok", "lines": ["line 3", "line 4"]}
    served.client.app.state.stream_slots = StreamSlots(max_seconds=1.5, keepalive_seconds=0.3)  # type: ignore[attr-defined]

    def later() -> None:
        time.sleep(0.5)
        with served.log.open("a") as out:
            out.write("new line\n")

    threading.Thread(target=later, daemon=True).start()
    with served.client.stream(
        "GET", "/v1/apps/tok/logs", params={"lines": 1, "follow": 1}, headers=bearer(tokens.read)
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert data == ["line 4", "new line"]
    assert served.client.app.state.stream_slots.open == 0  # type: ignore[attr-defined]


# ---- the schema ----


def test_the_explorer_answers_as_its_schema_says(served: Served, tokens: Tokens) -> None:
    """Schemathesis over the explorer's operations of an API on the served node: no 5xx, and
    every answer as the schema says."""
    app = create_app(served.fleet, tokens, ("testserver", *LOOPBACK_HOSTS), nodes=served.fleet)
    app.state.stream_slots = StreamSlots(max_seconds=0.3, keepalive_seconds=0.1)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checked = 0
    for result in schema.include(tag_regex="^(explorer|da|logs)$").get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=bearer(tokens.admin))

        check()
        checked += 1
    assert checked == 7


# ---- what Prometheus scrapes ----


def test_prometheus_finds_every_metrics_endpoint_and_the_restarts(
    served: Served, tokens: Tokens
) -> None:
    for path in ("/v1/targets", "/metrics"):
        assert_problem(served.client.get(path), 401)
    record = served.fleet.record("tok")
    groups = get(served, tokens, "/v1/targets")
    node_target = served.rpc_url.removeprefix("http://").rstrip("/")
    assert groups == [{"targets": [node_target], "labels": {"app": "tok", "job": "node"}}]
    scraped = httpx.get(f"http://{node_target}/metrics", timeout=10.0, trust_env=False)
    assert scraped.status_code == 200 and "rollup_latest_block" in scraped.text

    answer = served.client.get("/metrics", headers=bearer(tokens.read))
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}
    (restarts,) = families["rollup_process_restarts"].samples
    assert restarts.name == "rollup_process_restarts_total"
    assert (restarts.labels, restarts.value) == ({"app": "tok"}, record["restarts"])
    (stopped,) = families["rollup_process_stopped"].samples
    assert stopped.value == 0


def test_a_verifier_is_a_target_of_its_own() -> None:
    record: Any = {"name": "tok", "rpc_url": "http://127.0.0.1:8546/"}
    verifier = {"pid": 1, "port": 9545, "status_url": "http://127.0.0.1:9545/", "log": "v.log"}
    groups = scrape_targets([record | {"verifier": verifier}])
    assert [(g.targets, g.labels["job"]) for g in groups] == [
        (["127.0.0.1:8546"], "node"),
        (["127.0.0.1:9545"], "verifier"),
    ]
